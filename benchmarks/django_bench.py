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
it prints requests per second, ratios, database connections opened per
10,000 requests (counted in the server with ``connection_created``), and the
thread hops one request takes (asgiref ``sync_to_async``/``async_to_sync``
calls, counted in process with ``asgishift.django_integration.hops``).

Usage::

    .venv/bin/python benchmarks/django_bench.py [--duration 5] [--connections 32]
        [--threads 8] [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
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
    run_wrk,
    stop,
)

SAMPLE = REPO_ROOT / "sample_projects" / "django_project"
VARIANTS = ("gunicorn-gthread", "uvicorn-stock", "uvicorn-wsgitoasgi", "uvicorn-ours")
STATS_PATH = "/__bench_stats__"
INITDB = ("-U", "postgres", "--auth=trust", "--no-sync")

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


def postgres_bin_dir() -> Path | None:
    """Return Debian's newest PostgreSQL ``bin`` directory, or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres() -> Iterator[int]:
    """Run a throwaway PostgreSQL on 127.0.0.1 (as ``postgres`` when root); yield its port."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    root = Path(tempfile.mkdtemp(prefix="asgishift-bench-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    data = root / "data"
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), *INITDB],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=300"
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-o",
                options,
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                str(bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-qc",
                "CREATE DATABASE sample",
            ],
            check=True,
            capture_output=True,
        )
        yield port
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


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
    import time

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


def measure(
    project: Path, variant: str, db_env: dict[str, str], args: argparse.Namespace
) -> dict[str, float]:
    """Serve ``variant``, warm it up, run wrk, and read the server's counters."""
    port = free_port()
    env = project_env(
        project, db_env, {"BENCH_VARIANT": variant, "BENCH_THREADS": str(args.threads)}
    )
    log = project / f"{variant}.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            pinned(SERVER_CORE, server_argv(variant, port, args.threads)),
            cwd=project,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/count/", proc, log)
        run_wrk(url + "/count/", connections=args.connections, duration=1)  # warm-up
        before = json.loads(fetch(url + STATS_PATH))
        result = run_wrk(url + "/count/", connections=args.connections, duration=args.duration)
        after = json.loads(fetch(url + STATS_PATH))
    finally:
        stop(proc)
    served = after["served"] - before["served"]
    opened = after["opened"] - before["opened"]
    cpu = after["cpu"] - before["cpu"]  # server process CPU seconds (all its threads)
    return {
        "cpu_us": cpu * 1e6 / served if served else float("nan"),
        "rps": result.rps,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
        "served": served,
        "opened_per_10k": opened * 10_000 / served if served else float("nan"),
        "opened": opened,
        "opened_total": after["opened"],
    }


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


def run_database(name: str, db_env: dict[str, str], args: argparse.Namespace) -> None:
    """Benchmark every variant on one database and print the tables."""
    with tempfile.TemporaryDirectory(prefix="asgishift-django-bench-") as tmp:
        project = Path(tmp) / "django_project"
        shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
        (project / "bench_entry.py").write_text(ENTRY)
        env = project_env(project, db_env, {})
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=project, env=env, check=True)
        seed = "from shelf.models import Book; Book.objects.create(title='first book')"
        subprocess.run([py, "manage.py", "shell", "-c", seed], cwd=project, env=env, check=True)
        hops = count_hops(project, db_env)
        results = {variant: measure(project, variant, db_env, args) for variant in VARIANTS}
    base = results["gunicorn-gthread"]["rps"]
    stock = results["uvicorn-stock"]["rps"]
    bridge = results["uvicorn-wsgitoasgi"]["rps"]
    rows = []
    for variant, r in results.items():
        rows.append([
            variant,
            f"{r['rps']:.0f}",
            f"{r['rps'] / base:.2f}x",
            f"{r['p99_ms']:.1f}",
            f"{r['cpu_us']:.0f}",
            str(int(r["errors"])),
            f"{r['opened_per_10k']:.0f} ({int(r['opened'])} in {int(r['served'])})",
            str(int(r["opened_total"])),
        ])  # fmt: skip
    print(f"\n### {name}\n")
    print(markdown_table(
        ["variant", "req/s", "vs gunicorn", "p99 ms", "server CPU µs/req", "errors",
         "DB conns / 10k req", "DB conns since start"], rows
    ))  # fmt: skip
    ours = results["uvicorn-ours"]["rps"]
    cpu = {variant: r["cpu_us"] for variant, r in results.items()}
    print(
        "\nServer CPU per request, ours vs (lower is better; steadier than req/s on a busy "
        f"machine): gunicorn gthread {cpu['gunicorn-gthread'] / cpu['uvicorn-ours']:.2f}x, "
        f"WSGIToASGI {cpu['uvicorn-wsgitoasgi'] / cpu['uvicorn-ours']:.2f}x as much CPU as ours"
    )
    print(
        f"\nours / stock ASGI = {ours / stock:.2f}x (target >= 4); "
        f"ours / gunicorn gthread = {ours / base:.2f}x (target >= 1.2); "
        f"ours / WSGIToASGI = {ours / bridge:.2f}x (target >= 1)"
    )
    print(
        "\nThread hops per request (in process): " + ", ".join(f"{k}: {v}" for k, v in hops.items())
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run the benchmark on each database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=8, help="threads per server process")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite,postgres")
    args = parser.parse_args(argv)
    print(f"machine: {machine_info()}; server core {SERVER_CORE}, wrk core {CLIENT_CORE}")
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.threads} threads")
    databases = args.databases.split(",")
    if "sqlite" in databases:
        run_database("SQLite", {}, args)
    if "postgres" in databases:
        if postgres_bin_dir() is None:
            print("\nPostgreSQL: skipped (no /usr/lib/postgresql/*/bin)")
        else:
            with postgres() as port:
                run_database("PostgreSQL", {"SAMPLE_DB_PORT": str(port)}, args)


if __name__ == "__main__":
    main()
