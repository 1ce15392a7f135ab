"""Django with a slow sync view under many connections: does the loop keep up?

A view that blocks for ``--sleep`` seconds (``time.sleep``, standing for a
slow query or a remote call) behind ``startproject``'s MIDDLEWARE, served by
one server process pinned to core 0 with ``--threads`` threads, loaded by
``wrk -c --connections`` pinned to core 1. With 100 connections and a 0.1 s
view the ceiling is 1,000 req/s: what is lost below it is each connection's
time between one response and its next request. Variants, all started once
per server and measured in rotating order each round:

- ``ours``: ``asgishift.django_integration.get_asgi_application()`` from ``src/``;
- ``wsgitoasgi``: Django's WSGI application through ``asgishift.bridge.WSGIToASGI``;
- ``ours@REV`` (with ``--baseline REV``): our handler from git revision ``REV``.

Prints the median req/s of each variant, every round, and the median of the
per-round ratios to ``ours``.

Usage::

    .venv/bin/python benchmarks/django_slow_view.py [--servers hypercorn,uvicorn]
        [--rounds 3] [--duration 5] [--connections 100] [--threads 100]
        [--sleep 0.1] [--baseline REV] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import (
    BENCH_DIR,
    CLIENT_CORE,
    SERVER_CORE,
    SRC_DIR,
    free_port,
    machine_info,
    markdown_table,
    pinned,
    rotated,
    run_wrk,
    stop,
    unpack_src,
    wait_ready,
)

SERVERS = ("hypercorn", "uvicorn", "granian")

#: The Django project in one module: settings, the slow view and the ASGI app.
SITE = """
import os
import time

from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from djviews.settings import MIDDLEWARE

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="benchmark-only-" * 4,
    MIDDLEWARE=MIDDLEWARE,  # startproject's, as every Django benchmark here
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)
SLEEP = float(os.environ["BENCH_SLEEP"])
THREADS = int(os.environ["BENCH_THREADS"])


def slow(request):
    time.sleep(SLEEP)
    return HttpResponse(b"done")


urlpatterns = [path("", slow)]

import django

django.setup()
if os.environ["BENCH_VARIANT"] == "wsgitoasgi":
    from django.core.wsgi import get_wsgi_application

    from asgishift.bridge import WSGIToASGI

    app = WSGIToASGI(get_wsgi_application(), max_workers=THREADS)
else:
    from asgishift.django_integration import get_asgi_application

    app = get_asgi_application(max_threads=THREADS)
"""


def server_argv(server: str, port: int) -> list[str]:
    """The command serving ``slowsite:app`` on ``server`` at 127.0.0.1:``port``."""
    py, app = sys.executable, "slowsite:app"
    if server == "hypercorn":
        return [py, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--log-level", "WARNING"]
    if server == "uvicorn":
        return [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
    return [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--log-level", "warning", app]  # fmt: skip


@contextmanager
def serving(
    server: str, variant: str, src: Path, site: Path, args: argparse.Namespace
) -> Iterator[str]:
    """Start ``variant`` (importing asgishift from ``src``) on ``server``; yield its URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(src), str(BENCH_DIR)]),
        "BENCH_VARIANT": "wsgitoasgi" if variant == "wsgitoasgi" else "ours",
        "BENCH_SLEEP": str(args.sleep),
        "BENCH_THREADS": str(args.threads),
    }
    log = site / f"{server}-{variant.replace('@', '-')}.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            pinned(SERVER_CORE, server_argv(server, port)),
            cwd=site,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_ready(proc, port, log, 60.0)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


def measure_server(
    server: str, sources: dict[str, Path], site: Path, args: argparse.Namespace
) -> dict[str, list[float]]:
    """Serve every variant on ``server`` at once; return each one's req/s per round."""
    results: dict[str, list[float]] = {variant: [] for variant in sources}
    with ExitStack() as stack:
        urls = {
            variant: stack.enter_context(serving(server, variant, src, site, args))
            for variant, src in sources.items()
        }
        for url in urls.values():  # warm-up: threads started, code paths hot
            run_wrk(url, connections=args.connections, duration=1)
        for index in range(args.rounds):
            for variant in rotated(list(urls), index):
                url = urls[variant]
                result = run_wrk(url, connections=args.connections, duration=args.duration)
                if result.errors:
                    raise RuntimeError(f"{server}/{variant}: {result.errors} wrk errors")
                results[variant].append(result.rps)
    return results


def report(server: str, results: dict[str, list[float]]) -> None:
    """Print the table of one server: medians, rounds, ratios to ``ours``."""
    ours = results["ours"]
    rows = []
    for variant, rounds in results.items():
        ratios = [mine / base for mine, base in zip(rounds, ours, strict=True)]
        rows.append([
            variant,
            f"{statistics.median(rounds):.0f}",
            " ".join(f"{r:.0f}" for r in rounds),
            f"{statistics.median(ratios):.2f}x",
            f"{min(ratios):.2f}x-{max(ratios):.2f}x",
        ])  # fmt: skip
    print(f"\n### {server}\n")
    header = ["variant", "req/s (median)", "req/s per round", "vs ours (median)", "range"]
    print(markdown_table(header, rows))


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run every server, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="hypercorn,uvicorn", help=",".join(SERVERS))
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per variant")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100, help="wrk connections")
    parser.add_argument("--threads", type=int, default=100, help="threads per server process")
    parser.add_argument("--sleep", type=float, default=0.1, help="seconds the view blocks")
    parser.add_argument("--baseline", help="git revision whose handler runs as ours@REV")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the machinery")
    args = parser.parse_args(argv)
    if args.smoke:
        args.servers, args.rounds, args.duration = "hypercorn", 1, 1.0
        args.connections, args.threads, args.sleep = 10, 10, 0.01
    servers = args.servers.split(",")
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}; use some of {SERVERS}")
    print(f"machine: {machine_info()}; server core {SERVER_CORE}, wrk core {CLIENT_CORE}")
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.threads} threads, "
        f"view blocks {args.sleep:g} s, {args.rounds} rounds"
    )
    with tempfile.TemporaryDirectory(prefix="asgishift-django-slow-") as tmp:
        site = Path(tmp)
        (site / "slowsite.py").write_text(SITE)
        sources = {"ours": SRC_DIR, "wsgitoasgi": SRC_DIR}
        if args.baseline:
            sources[f"ours@{args.baseline}"] = unpack_src(args.baseline, site / "baseline")
        for server in servers:
            report(server, measure_server(server, sources, site, args))


if __name__ == "__main__":
    main()
