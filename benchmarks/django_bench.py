"""Django under ASGI: a sync view with one ORM query, served four ways, in the same run.

The app is ``sample_projects/django_project`` (``startproject``'s MIDDLEWARE),
copied to a temporary directory and migrated; the view is ``/count/``
(``Book.objects.count()``, JSON). Served by one process pinned to core 0,
loaded by ``wrk`` pinned to core 1:

- ``gunicorn-gthread``: ``mysite.wsgi`` under gunicorn's gthread worker (WSGI);
- ``uvicorn-stock``: Django's ``get_asgi_application()`` under uvicorn;
- ``uvicorn-wsgitoasgi``: the WSGI app through ``asgishift.bridge.WSGIToASGI``;
- ``uvicorn-ours``: ``asgishift.django_integration.get_asgi_application()``.

Every variant gets the same thread count and ``CONN_MAX_AGE=60``. For each
database (SQLite, and PostgreSQL started from Debian's binaries when found)
the four servers are started once and kept running; each is warmed up with
1 s of wrk, then each of ``--rounds`` rounds runs wrk for ``--duration``
seconds against every variant, round ``r`` starting at variant ``r mod 4``
(so each variant runs in every position and the load drifts of a shared
machine do not always hit the same one). The server's counters (CPU time,
requests served, database connections opened, read at ``STATS_PATH``) are
read around each wrk run.

It prints per variant the median req/s and server CPU per request over the
rounds (and every round's value), the share of core 0 the server used in
each run (below 1 it waited, for wrk or because other processes ran on its
core: req/s then measures the machine more than the server; CPU per request
is steadier), errors, database connections opened per
10,000 requests (counted in the server with ``connection_created``); then
each ratio (ours over stock, gunicorn gthread, WSGIToASGI; CPU per request
of the others over ours) computed within each round, as the median over the
rounds with its min-max, and as the median over only the rounds in which
both servers of the ratio used at least ``FULL_CORE`` of their core; and the
thread hops one request takes (asgiref
``sync_to_async``/``async_to_sync`` calls, counted in process with
``asgishift.django_integration.hops``).

Usage::

    .venv/bin/python benchmarks/django_bench.py [--duration 5] [--rounds 5]
        [--connections 32] [--threads 8] [--databases sqlite,postgres] [--json FILE]
        [--smoke]
    .venv/bin/python benchmarks/django_bench.py --pool RUN1.json RUN2.json ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import (
    CLIENT_CORE,
    REPO_ROOT,
    SERVER_CORE,
    SRC_DIR,
    free_port,
    machine_info,
    markdown_table,
    pinned,
    rotated,
    run_wrk,
    stop,
)

SAMPLE = REPO_ROOT / "sample_projects" / "django_project"
VARIANTS = ("gunicorn-gthread", "uvicorn-stock", "uvicorn-wsgitoasgi", "uvicorn-ours")
STATS_PATH = "/__bench_stats__"
TESTS_DIR = REPO_ROOT / "tests"


@dataclass(frozen=True)
class Ratio:
    """A ratio the report computes within each round: ``numerator / denominator`` of ``metric``.

    :param metric: ``"rps"`` (higher is better) or ``"cpu_us"`` (server CPU per
        request; put ours in the denominator so that >= 1 means ours is cheaper).
    :param target: the issue's target for the ratio, or ``None``.
    """

    label: str
    numerator: str
    denominator: str
    metric: str
    target: float | None


#: A run where the server used at least this share of core 0 had the core to itself.
FULL_CORE = 0.95

RATIOS = (
    Ratio("req/s ours / stock", "uvicorn-ours", "uvicorn-stock", "rps", 4.0),
    Ratio("req/s ours / gunicorn gthread", "uvicorn-ours", "gunicorn-gthread", "rps", 1.2),
    Ratio("req/s ours / WSGIToASGI", "uvicorn-ours", "uvicorn-wsgitoasgi", "rps", 1.0),
    Ratio("CPU/req stock / ours", "uvicorn-stock", "uvicorn-ours", "cpu_us", None),
    Ratio("CPU/req gunicorn gthread / ours", "gunicorn-gthread", "uvicorn-ours", "cpu_us", None),
    Ratio("CPU/req WSGIToASGI / ours", "uvicorn-wsgitoasgi", "uvicorn-ours", "cpu_us", None),
)

#: Written into the project copy: builds each variant's app and counts connections.
ENTRY = f"""
import json, os, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
VARIANT = os.environ["BENCH_VARIANT"]
THREADS = int(os.environ["BENCH_THREADS"])
opened = [0]
served = [0]

def _count(sender, connection, **kwargs):
    opened[0] += 1

def _stats():
    stats = {{"opened": opened[0], "served": served[0], "cpu": time.process_time()}}
    return json.dumps(stats).encode()

if VARIANT == "gunicorn-gthread":
    from django.core.wsgi import get_wsgi_application
    from django.db.backends.signals import connection_created
    connection_created.connect(_count)
    _django = get_wsgi_application()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "{STATS_PATH}":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [_stats()]
        served[0] += 1
        return _django(environ, start_response)
else:
    if VARIANT == "uvicorn-stock":
        from django.core.asgi import get_asgi_application
        _django = get_asgi_application()
    elif VARIANT == "uvicorn-wsgitoasgi":
        from django.core.wsgi import get_wsgi_application
        from asgishift.bridge import WSGIToASGI
        _django = WSGIToASGI(get_wsgi_application(), max_workers=THREADS)
    else:
        from asgishift.django_integration import get_asgi_application
        _django = get_asgi_application(max_threads=THREADS)
    from django.db.backends.signals import connection_created
    connection_created.connect(_count)

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "{STATS_PATH}":
            await send({{"type": "http.response.start", "status": 200, "headers": []}})
            await send({{"type": "http.response.body", "body": _stats()}})
            return
        if scope["type"] == "http":
            served[0] += 1
        await _django(scope, receive, send)
"""

#: Run in the project copy: one request per ASGI app in process, hops counted.
HOPS = """
import asyncio, json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
import django
django.setup()
from django.core.asgi import get_asgi_application as stock
from asgishift.django_integration import get_asgi_application as ours
from asgishift.django_integration.hops import count_hops

async def one(app, path):
    sent = []
    pending = [{"type": "http.request", "body": b"", "more_body": False}]
    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # no disconnect; Django cancels this listener
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent

result = {}
for name, app in (("uvicorn-stock", stock()), ("uvicorn-ours", ours(max_threads=2))):
    for path in ("/count/", "/async-count/"):
        asyncio.run(one(app, path))
        with count_hops() as hops:
            asyncio.run(one(app, path))
        result[f"{name} {path}"] = hops.total
print(json.dumps(result))
"""


@contextlib.contextmanager
def postgres() -> Iterator[int | None]:
    """Run a throwaway PostgreSQL on 127.0.0.1 with a ``sample`` database; yield its port
    (``None`` when PostgreSQL's binaries are not found).

    Started as the test suite starts it (``tests/django_support/plugin.py``),
    but with PostgreSQL's durability defaults and room for 300 connections.
    """
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from django_support.plugin import postgres_bin_dir, start_postgres

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        yield None
        return
    with start_postgres(bin_dir, durable=True, max_connections=300) as server:
        server.create_database("sample")
        yield server.port


def project_env(project: Path, db_env: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """Environment for processes of the project copy."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(SRC_DIR)])
    env.update({"SAMPLE_DEBUG": "0", "SAMPLE_CONN_MAX_AGE": "60", **db_env, **extra})
    return env


def server_argv(variant: str, port: int, threads: int) -> list[str]:
    """The command serving ``bench_entry:app`` for ``variant``."""
    py = sys.executable
    if variant == "gunicorn-gthread":
        return [py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
                "--threads", str(threads), "--log-level", "warning", "bench_entry:app"]  # fmt: skip
    return [py, "-m", "uvicorn", "bench_entry:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--lifespan", "off"]  # fmt: skip


def fetch(url: str) -> bytes:
    """GET ``url`` and return the body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers (the server's startup includes Django's setup)."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            fetch(url)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Sample:
    """One wrk run against one variant, with the server's counters read around it.

    :param rps: wrk's requests per second.
    :param p99_ms: wrk's 99th-percentile latency, milliseconds.
    :param errors: wrk's non-2xx/3xx responses plus socket errors.
    :param served: requests the server's app counted during the run.
    :param opened: database connections the server opened during the run.
    :param opened_total: database connections the server opened since it started.
    :param cpu_s: CPU seconds the serving process used during the run (all threads).
    :param position: where in its round the run came (0 = first).
    :param wall_s: wall-clock seconds between the two counter reads (NaN in
        ``--json`` files written before it was recorded).
    """

    rps: float
    p99_ms: float
    errors: int
    served: int
    opened: int
    opened_total: int
    cpu_s: float
    position: int
    wall_s: float = float("nan")

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per served request (NaN when none was served)."""
        return self.cpu_s * 1e6 / self.served if self.served else float("nan")

    @property
    def core_share(self) -> float:
        """Fraction of one core the server used during the run (1.0: it had core 0 to itself).

        Below 1 the server waited: for wrk, for the database, or because other
        processes ran on its core; req/s then measures the machine, not the server.
        """
        return self.cpu_s / self.wall_s


@contextlib.contextmanager
def serving(
    project: Path, db_env: dict[str, str], args: argparse.Namespace
) -> Iterator[dict[str, str]]:
    """Start every variant's server on the server core; yield ``{variant: base URL}``.

    All of them run for the whole database block; an idle server costs nothing,
    and a server that keeps running keeps its database connections and warm
    caches from one round to the next.

    :raise RuntimeError: when a server exits or does not answer (with its log).
    """
    procs: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = {}
    try:
        for variant in VARIANTS:
            port = free_port()
            extra = {"BENCH_VARIANT": variant, "BENCH_THREADS": str(args.threads)}
            log = project / f"{variant}.log"
            with log.open("wb") as log_file:
                proc = subprocess.Popen(
                    pinned(SERVER_CORE, server_argv(variant, port, args.threads)),
                    cwd=project,
                    env=project_env(project, db_env, extra),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            procs[variant] = (proc, f"http://127.0.0.1:{port}", log)
        for proc, url, log in procs.values():
            wait_ready(url + "/count/", proc, log)
        yield {variant: url for variant, (_, url, _) in procs.items()}
    finally:
        for proc, _, _ in procs.values():
            stop(proc)


def measure(url: str, args: argparse.Namespace, position: int) -> Sample:
    """Run wrk once against ``url/count/`` and read the server's counters around it."""
    before = json.loads(fetch(url + STATS_PATH))
    started = time.monotonic()
    result = run_wrk(url + "/count/", connections=args.connections, duration=args.duration)
    after = json.loads(fetch(url + STATS_PATH))
    wall = time.monotonic() - started
    return Sample(
        rps=result.rps,
        p99_ms=result.p99_ms,
        errors=result.errors,
        served=after["served"] - before["served"],
        opened=after["opened"] - before["opened"],
        opened_total=after["opened"],
        cpu_s=after["cpu"] - before["cpu"],
        wall_s=wall,
        position=position,
    )


def run_rounds(urls: dict[str, str], args: argparse.Namespace) -> dict[str, list[Sample]]:
    """Warm every variant up, then measure each once per round in a rotated order.

    :return: ``{variant: [sample of round 0, round 1, ...]}``.
    """
    for variant in VARIANTS:
        run_wrk(urls[variant] + "/count/", connections=args.connections, duration=1)
    samples: dict[str, list[Sample]] = {variant: [] for variant in VARIANTS}
    for round_no in range(args.rounds):
        for position, variant in enumerate(rotated(VARIANTS, round_no)):
            samples[variant].append(measure(urls[variant], args, position))
    return samples


def count_hops(project: Path, db_env: dict[str, str]) -> dict[str, int]:
    """Thread hops per request, counted in process (see :data:`HOPS`)."""
    out = subprocess.run(
        [sys.executable, "-c", HOPS],
        cwd=project,
        env=project_env(project, db_env, {}),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"hop count failed:\n{out.stderr}")
    return {k: int(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def per_round(samples: dict[str, list[Sample]], ratio: Ratio) -> list[float]:
    """Return ``ratio`` computed within each round (its two runs are seconds apart)."""
    top, bottom = samples[ratio.numerator], samples[ratio.denominator]
    return [
        getattr(a, ratio.metric) / getattr(b, ratio.metric)
        for a, b in zip(top, bottom, strict=True)
    ]


def full_core_rounds(samples: dict[str, list[Sample]], ratio: Ratio) -> list[bool]:
    """Per round: whether both servers of ``ratio`` used at least :data:`FULL_CORE` of core 0.

    Chosen by a measure independent of the ratio: in such a round neither
    server waited for a core (or for a starved wrk), so req/s compares the
    servers rather than what the rest of the machine did during their windows.
    """
    top, bottom = samples[ratio.numerator], samples[ratio.denominator]
    return [min(a.core_share, b.core_share) >= FULL_CORE for a, b in zip(top, bottom, strict=True)]


def now() -> str:
    """UTC wall-clock time and the 1/5/15-minute load averages, for the record."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average {load}"


def report(name: str, samples: dict[str, list[Sample]], hops: dict[str, int] | None) -> None:
    """Print one database's tables: medians per variant, then the per-round ratios."""
    rows = []
    for variant, runs in samples.items():
        served = sum(run.served for run in runs)
        opened = sum(run.opened for run in runs)
        rows.append([
            variant,
            f"{statistics.median(run.rps for run in runs):.0f}",
            " ".join(f"{run.rps:.0f}" for run in runs),
            f"{statistics.median(run.p99_ms for run in runs):.1f}",
            f"{statistics.median(run.cpu_us for run in runs):.0f}",
            " ".join(f"{run.cpu_us:.0f}" for run in runs),
            " ".join(f"{run.core_share:.2f}" for run in runs),
            str(sum(run.errors for run in runs)),
            f"{opened * 10_000 / served if served else float('nan'):.0f} ({opened} in {served})",
            str(runs[-1].opened_total),
        ])  # fmt: skip
    print(f"\n### {name}\n")
    print(markdown_table(
        ["variant", "req/s (median)", "req/s per round", "p99 ms (median)",
         "server CPU µs/req (median)", "CPU µs/req per round", "core share per round", "errors",
         "DB conns / 10k req", "DB conns since start"], rows
    ))  # fmt: skip
    rows = []
    for ratio in RATIOS:
        values = per_round(samples, ratio)
        met = "" if ratio.target is None else sum(value >= ratio.target for value in values)
        full = [v for v, ok in zip(values, full_core_rounds(samples, ratio), strict=True) if ok]
        full_median = f"{statistics.median(full):.2f}x" if full else "n/a"
        rows.append([
            ratio.label,
            "" if ratio.target is None else f">= {ratio.target:g}",
            f"{statistics.median(values):.2f}x",
            f"{min(values):.2f}x-{max(values):.2f}x",
            " ".join(f"{value:.2f}" for value in values),
            "" if ratio.target is None else f"{met} of {len(values)}",
            f"{full_median} ({len(full)} of {len(values)})",
        ])  # fmt: skip
    print("\nRatios within each round (CPU ratios >= 1: ours is cheaper):\n")
    print(markdown_table(
        ["ratio", "target", "median of rounds", "min-max", "per round", "rounds meeting it",
         f"median of full-core rounds (both >= {FULL_CORE:g} core)"], rows,
    ))  # fmt: skip
    if hops is not None:
        hops_text = ", ".join(f"{k}: {v}" for k, v in hops.items())
        print(f"\nThread hops per request (in process): {hops_text}")


def pool(paths: list[Path]) -> None:
    """Print the tables over the rounds of several ``--json`` files, per database.

    Rounds stay paired (a ratio is still computed within each round); the
    files' rounds are concatenated in the order given.

    :raise OSError, ValueError, TypeError: for a missing or malformed file.
    """
    pooled: dict[str, dict[str, list[Sample]]] = {}
    for path in paths:
        for db, by_variant in json.loads(path.read_text()).items():
            for variant, runs in by_variant.items():
                target = pooled.setdefault(db, {}).setdefault(variant, [])
                target.extend(Sample(**run) for run in runs)
    print(f"{len(paths)} files: {', '.join(str(path) for path in paths)}")
    for db, samples in pooled.items():
        report(db, samples, None)


def run_database(
    name: str, db_env: dict[str, str], args: argparse.Namespace
) -> dict[str, list[Sample]]:
    """Benchmark every variant on one database, print the tables, return the samples."""
    with tempfile.TemporaryDirectory(prefix="asgishift-django-bench-") as tmp:
        project = Path(tmp) / "django_project"
        shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
        (project / "bench_entry.py").write_text(ENTRY)
        env = project_env(project, db_env, {})
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=project, env=env, check=True)
        seed = "from shelf.models import Book; Book.objects.create(title='first book')"
        subprocess.run(
            [py, "manage.py", "shell", "-v", "0", "-c", seed], cwd=project, env=env, check=True
        )
        hops = count_hops(project, db_env)
        with serving(project, db_env, args) as urls:
            started = now()
            samples = run_rounds(urls, args)
            ended = now()
    print(f"\n{name}: measured from {started} to {ended}")
    report(name, samples, hops)
    return samples


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run the benchmark on each database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="wrk runs per variant")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=8, help="threads per server process")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--json", type=Path, help="also write every round's samples here")
    parser.add_argument("--smoke", action="store_true", help="SQLite, 1 s runs: machinery only")
    parser.add_argument(
        "--pool", type=Path, nargs="+", metavar="JSON", help="measure nothing: print the "
        "tables over the rounds of these --json files together"
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.pool:
        pool(args.pool)
        return
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.smoke:
        args.duration, args.connections, args.databases = 1.0, 8, "sqlite"
    print(f"machine: {machine_info()}; server core {SERVER_CORE}, wrk core {CLIENT_CORE}")
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.threads} threads, "
          f"{args.rounds} rounds; round r starts at variant r mod {len(VARIANTS)} of "
          f"{', '.join(VARIANTS)}")  # fmt: skip
    databases = args.databases.split(",")
    results: dict[str, dict[str, list[Sample]]] = {}
    if "sqlite" in databases:
        results["SQLite"] = run_database("SQLite", {}, args)
    if "postgres" in databases:
        with postgres() as port:
            if port is None:
                print("\nPostgreSQL: skipped (no initdb under /usr/lib/postgresql/*/bin)")
            else:
                results["PostgreSQL"] = run_database(
                    "PostgreSQL", {"SAMPLE_DB_PORT": str(port)}, args
                )
    if args.json:
        raw = {db: {v: [asdict(run) for run in runs] for v, runs in by_variant.items()}
               for db, by_variant in results.items()}  # fmt: skip
        args.json.write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
