"""An async ListView-style page three ways, same run: asgishift's view vs hand-written async.

The page lists 20 rows with one query and a template (``benchmarks/djviews``):

``ours``
    asgishift's ``AsyncListView`` (query, context and template in one hop).
``hand``
    The same page as a Django-6-style async function view: ``[r async for r
    in qs]`` and ``await sync_to_async(render)(...)``.
``sync``
    Django's ``ListView`` under gunicorn's gthread worker (8 threads), the
    WSGI twin.

The async views run under uvicorn behind Django's stock ``get_asgi_application()``
and behind asgishift's bounded handler (``max_threads=8``), so the table
separates the view's share from the handler's. Every server is one process
pinned to core 0 (wrk on core 1); PostgreSQL, when used, is not pinned.
``CONN_MAX_AGE=60`` everywhere; startproject's middleware. Each round runs
``wrk -t1 -cN`` once per configuration in a rotated order; the table shows
medians over rounds and each configuration's ratio to ``hand`` under the
stock handler in the same round.

``python benchmarks/django_views_bench.py --db both --connections 100 --rounds 3``;
``--smoke`` checks the machinery in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _common import (
    BENCH_DIR,
    REPO_ROOT,
    SERVER_CORE,
    child_env,
    free_port,
    machine_info,
    markdown_table,
    pinned,
    rotated,
    run_wrk,
    stop,
    wait_ready,
)

ROWS = 20


@dataclass(frozen=True)
class Config:
    """One way of serving the page: a server process and a path on it."""

    label: str
    server: str  # key into the servers started
    path: str


SERVERS = {
    "uvicorn+asgishift": ["-m", "uvicorn", "djviews.asgi:ours"],
    "uvicorn+stock": ["-m", "uvicorn", "djviews.asgi:stock"],
    "gunicorn": [
        "-m",
        "gunicorn",
        "-w",
        "1",
        "-k",
        "gthread",
        "--threads",
        "8",
        "djviews.wsgi:application",
    ],
}
CONFIGS = [
    Config("ours, asgishift handler", "uvicorn+asgishift", "/ours/"),
    Config("hand-written, asgishift handler", "uvicorn+asgishift", "/hand/"),
    Config("ours, stock handler", "uvicorn+stock", "/ours/"),
    Config("hand-written, stock handler", "uvicorn+stock", "/hand/"),
    Config("sync ListView, gunicorn gthread", "gunicorn", "/sync/"),
]
BASELINE = "hand-written, stock handler"


def argv_for(server: str, port: int) -> list[str]:
    """Return the command line of one benchmark server on 127.0.0.1:``port``."""
    args = [sys.executable, *SERVERS[server]]
    if server == "gunicorn":
        return [*args, "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    return [*args, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--no-access-log"]  # fmt: skip


def prepare_database(env: dict[str, str]) -> None:
    """Create the tables and the 20 rows (``migrate --run-syncdb`` in a subprocess)."""
    script = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('migrate', run_syncdb=True, verbosity=0); from djviews.models import Row; "
        f"Row.objects.all().delete(); Row.objects.bulk_create([Row(title=f'row {{n}}', "
        f"number=n * 7) for n in range({ROWS})])"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=BENCH_DIR, check=True)


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[dict[str, str]]:
    """Yield the ``BENCH_*`` environment of a ready database of ``kind``."""
    env = {"DJANGO_SETTINGS_MODULE": "djviews.settings", "BENCH_THREADS": "8"}
    if kind == "sqlite":
        env |= {"BENCH_DB": "sqlite", "BENCH_SQLITE_PATH": str(tmp / "bench.sqlite3")}
        yield env
        return
    # A throwaway PostgreSQL server, started as the test suite starts it.
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from django_support.plugin import postgres_bin_dir, start_postgres

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
    with start_postgres(bin_dir) as server:
        server.create_database("bench")
        yield env | {"BENCH_DB": "postgres", "BENCH_PG_PORT": str(server.port)}


HOPS_CHILD = """
import asyncio, json, django
django.setup()
import djviews.asgi as entry
from asgishift.django_integration.hops import count_hops

async def get(app, path):
    sent, first = [], [True]
    async def receive():
        if first[0]:
            first[0] = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent[0]

async def main():
    out = {}
    for handler in ("ours", "stock"):
        app = getattr(entry, handler)
        for path in ("/ours/", "/hand/"):
            await get(app, path)
            with count_hops() as hops:
                for _ in range(10):
                    await get(app, path)
            out[f"{path.strip('/')}/{handler}"] = [hops.to_thread / 10, hops.to_loop / 10]
    print(json.dumps(out))

asyncio.run(main())
"""


def count_hops_per_request(env: dict[str, str]) -> dict[str, list[float]]:
    """Thread hops per request of each async view under each handler (in process, 10 requests).

    :return: ``{"ours/ours": [to_thread, to_loop], ...}`` keyed ``view/handler``.
    """
    result = subprocess.run(
        [sys.executable, "-c", HOPS_CHILD], env=env, cwd=BENCH_DIR, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    parsed: dict[str, list[float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def measure(kind: str, connections: int, duration: float, rounds: int) -> list[list[str]]:
    """Run every configuration ``rounds`` times on database ``kind``; return table rows."""
    with tempfile.TemporaryDirectory(prefix="asgishift-djviews-") as tmp_name:
        tmp = Path(tmp_name)
        with database(kind, tmp) as bench_env:
            env = child_env({"PYTHONUNBUFFERED": "1", **bench_env})
            prepare_database(env)
            hops = count_hops_per_request(env)
            print(f"{kind}: hops per request (to thread, to loop): {hops}", flush=True)
            procs = {}
            try:
                for name in SERVERS:
                    port = free_port()
                    log = tmp / f"{name}.log"
                    with log.open("wb") as out:
                        proc = subprocess.Popen(
                            pinned(SERVER_CORE, argv_for(name, port)), stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=BENCH_DIR,
                            env=env, start_new_session=True,
                        )  # fmt: skip
                    procs[name] = (proc, port, log)
                for proc, port, log in procs.values():
                    wait_ready(proc, port, log, 60.0)
                rps: dict[str, list[float]] = {c.label: [] for c in CONFIGS}
                ratios: dict[str, list[float]] = {c.label: [] for c in CONFIGS}
                for round_no in range(rounds):
                    order = rotated(CONFIGS, round_no)
                    got = {}
                    for config in order:
                        url = f"http://127.0.0.1:{procs[config.server][1]}{config.path}"
                        run_wrk(url, connections=connections, duration=1)  # warm-up
                        result = run_wrk(url, connections=connections, duration=duration)
                        if result.errors:
                            print(f"  {config.label}: {result.errors} errors", file=sys.stderr)
                        got[config.label] = result.rps
                    for label, value in got.items():
                        rps[label].append(value)
                        ratios[label].append(value / got[BASELINE])
            finally:
                for proc, _, _ in procs.values():
                    stop(proc)
    rows = []
    for label, values in rps.items():
        median_rps = f"{statistics.median(values):.0f}"
        ratio = f"{statistics.median(ratios[label]):.2f}x"
        rows.append([kind, str(connections), label, median_rps, ratio])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[100], help="wrk connections (clients)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s on SQLite")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if args.smoke:
        kinds, args.rounds, args.duration, args.connections = ["sqlite"], 1, 1.0, [10]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    rows = []
    for kind in kinds:
        for connections in args.connections:
            rows += measure(kind, connections, args.duration, args.rounds)
    print(" ".join(f"{k}={v}" for k, v in machine_info().items()))
    header = ["database", "clients", "configuration", "req/s", f"vs {BASELINE}"]
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
