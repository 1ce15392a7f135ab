"""Requests per second of a Starlette app under gunicorn gthread: ASGIToWSGI vs a2wsgi.

One run, same app (``GET /`` answers ``Hello, World!`` through a Starlette
``PlainTextResponse``), three servers:

``gunicorn/asgishift``
    gunicorn, one gthread worker, ``ASGIToWSGI(starlette_app)``.
``gunicorn/asgishift-asyncio``
    the same with ``ASGIToWSGIOptions(loop="asyncio")``: the default picks
    uvloop when it is installed (as uvicorn does); a2wsgi runs asyncio's loop.
``gunicorn/a2wsgi``
    the same gunicorn, ``a2wsgi.ASGIMiddleware(starlette_app)``.
``uvicorn/native``
    uvicorn serving the Starlette app itself: the ceiling.
``gunicorn/baseline`` (with ``--baseline REV``)
    ``ASGIToWSGI`` of git revision REV (``git archive``), default loop: a
    before/after of a change in the same run.
``gunicorn/floor`` (with ``--floor``)
    the same gunicorn, ``a2w_floor.floor_adapter(starlette_app)``: the same
    loop-thread architecture with no checks, no streaming and no lifespan.
    The distance to it is what ASGIToWSGI's own rules cost.

Every server is one process pinned to core 0, wrk is pinned to core 1. All
servers are started first; each round runs wrk once against each of them in a
rotated order, so the drifts of a shared machine hit every configuration alike.
The table shows the median req/s and p99 over the rounds, and each figure as a
ratio to a2wsgi: the median over rounds of the ratio within each round. It also
shows the serving process's CPU time per request (``/proc/<pid>/stat``) and its
ratio to a2wsgi's: what one request costs in microseconds. With the server's core
saturated it is close to the inverse of req/s, so it is no steadier than req/s
(on a VM, time the host takes is still counted as the process's).

``--in-process`` measures what each adapter costs per request without any
server: the app is called directly from ``--threads`` threads (``--threads 1``:
one request at a time), each adapter in a process of its own. With ``--baseline
REV`` it also measures REV's ``ASGIToWSGI``.

This module is also the app module the servers import (``asgi_to_wsgi_bench:``
``starlette_app``, ``asgishift_app``, ``a2wsgi_app``). ``--smoke`` checks the
machinery in a few seconds and measures nothing worth reading.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    SERVER_CORE,
    child_env,
    cpu_seconds,
    free_port,
    machine_info,
    markdown_table,
    pinned,
    rotated,
    run_wrk,
    serving_pid,
    stop,
    unpack_src,
    wait_ready,
)

HELLO = "Hello, World!"


def _build_starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(HELLO)

    return Starlette(routes=[Route("/", hello)])


def __getattr__(name: str) -> Any:
    """Build the app a server asks for, only when it asks (PEP 562)."""
    if name == "starlette_app":
        return _build_starlette()
    if name == "asgishift_app":
        from asgishift.bridge import ASGIToWSGI

        return ASGIToWSGI(_build_starlette())
    if name == "asgishift_asyncio_app":
        from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions

        return ASGIToWSGI(_build_starlette(), ASGIToWSGIOptions(loop="asyncio"))
    if name == "baseline_app":
        # The server process imports asgishift from the unpacked baseline tree (--baseline).
        baseline_src = os.environ[BASELINE_ENV]
        sys.path.insert(0, baseline_src)
        import asgishift
        from asgishift.bridge import ASGIToWSGI

        if not str(asgishift.__file__).startswith(baseline_src):
            raise RuntimeError(f"asgishift came from {asgishift.__file__}, not {baseline_src}")
        return ASGIToWSGI(_build_starlette())
    if name == "floor_app":
        from a2w_floor import floor_adapter

        return floor_adapter(_build_starlette())
    if name == "a2wsgi_app":
        from a2wsgi import ASGIMiddleware

        return ASGIMiddleware(_build_starlette())
    raise AttributeError(name)


#: label -> argv template ({port}, {threads}) of each configuration.
CONFIGS: dict[str, list[str]] = {
    "gunicorn/asgishift": ["gunicorn", "asgi_to_wsgi_bench:asgishift_app"],
    "gunicorn/asgishift-asyncio": ["gunicorn", "asgi_to_wsgi_bench:asgishift_asyncio_app"],
    "gunicorn/a2wsgi": ["gunicorn", "asgi_to_wsgi_bench:a2wsgi_app"],
    "uvicorn/native": ["uvicorn", "asgi_to_wsgi_bench:starlette_app"],
}
#: Served only with ``--floor``.
FLOOR_CONFIG = ("gunicorn/floor", ["gunicorn", "asgi_to_wsgi_bench:floor_app"])
#: Served only with ``--baseline REV``: ASGIToWSGI of git revision REV.
BASELINE_CONFIG = ("gunicorn/baseline", ["gunicorn", "asgi_to_wsgi_bench:baseline_app"])
#: The environment variable that tells ``baseline_app`` where REV's ``src/`` is.
BASELINE_ENV = "ASGISHIFT_BASELINE_SRC"


def server_argv(server: str, app: str, port: int, threads: int) -> list[str]:
    """Return the argv that serves ``app`` on ``server`` (gunicorn gthread or uvicorn)."""
    py = sys.executable
    if server == "gunicorn":
        return [py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
                "--threads", str(threads), "--log-level", "warning", app]  # fmt: skip
    return [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log"]  # fmt: skip


@contextmanager
def running(threads: int) -> Iterator[tuple[dict[str, int], dict[str, int]]]:
    """Start every configuration pinned to the server core.

    Yield ``(ports, pids)``: label -> port, and label -> pid of the process that
    serves it (gunicorn's worker, uvicorn itself), whose CPU time is measured.
    """
    ports: dict[str, int] = {}
    pids: dict[str, int] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="asgishift-a2w-") as tmp:
        procs = []
        for label, (server, app) in CONFIGS.items():
            port = free_port()
            log_path = Path(tmp) / (label.replace("/", "_") + ".log")
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    pinned(SERVER_CORE, server_argv(server, app, port, threads)),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=str(BENCH_DIR),
                    env=child_env({"PYTHONUNBUFFERED": "1"}),
                    start_new_session=True,
                )
            stack.callback(stop, proc)
            procs.append((proc, port, log_path))
            ports[label] = port
        for label, (proc, port, log_path) in zip(ports, procs, strict=True):
            wait_ready(proc, port, log_path, 60.0)
            pids[label] = serving_pid(proc.pid, port)
        yield ports, pids


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench", "RAW_URI": "/", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }  # fmt: skip


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    pass


def in_process(threads: int, requests: int, repeats: int, names: list[str]) -> dict[str, float]:
    """Return µs per request of each adapter called directly from ``threads`` threads.

    No server and no sockets: what the bridge itself costs, best of ``repeats``.

    :param names: adapters, by the name of their app in this module without
        ``_app`` (``asgishift``, ``a2wsgi``, ``floor``, ``baseline``).
    """
    import threading

    adapters = {name: __getattr__(f"{name}_app") for name in names}

    def drive(app: Any) -> None:
        for _ in range(requests):
            result = app(_environ(), _start_response)
            for _chunk in result:
                pass
            if hasattr(result, "close"):
                result.close()

    best: dict[str, float] = {}
    for name, app in adapters.items():
        drive(app)  # warm up: the loop thread, lifespan
        for _ in range(repeats):
            workers = [threading.Thread(target=drive, args=(app,)) for _ in range(threads)]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            per_request = (time.perf_counter() - started) / (threads * requests) * 1e6
            best[name] = min(best.get(name, per_request), per_request)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="wrk runs per configuration")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn gthread threads")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also serve a2w_floor.py, a minimal adapter of the same architecture",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also serve ASGIToWSGI of this git revision (default loop), for a before/after",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s: machinery only")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no servers: call each adapter from --threads threads in this process "
        "(run it under `taskset -c 0`), print µs per request",
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # --in-process's child processes
    args = parser.parse_args(argv)
    if args.in_process:
        return _report_in_process(args)
    if args.smoke:
        args.rounds, args.duration = 1, 1.0
    if args.floor:
        CONFIGS.setdefault(*FLOOR_CONFIG)
    with tempfile.TemporaryDirectory(prefix="asgishift-a2w-base-") as tmp:
        if args.baseline:
            os.environ[BASELINE_ENV] = str(unpack_src(args.baseline, Path(tmp)))
            CONFIGS.setdefault(*BASELINE_CONFIG)
        return _measure(args)


def _report_in_process(args: argparse.Namespace) -> int:
    """Print ``--in-process``'s table, each adapter measured in a process of its own.

    A process of its own gives each adapter the same start: no other adapter's
    loop thread, no other adapter's objects in the CPU's caches, and for the
    baseline its own ``asgishift``.
    """
    requests = 50 if args.smoke else 2000
    repeats = 1 if args.smoke else 3
    if args.only:  # a child: one adapter, one number on stdout
        print(in_process(args.threads, requests, repeats, [args.only])[args.only])
        return 0
    names = ["asgishift", "a2wsgi"] + (["floor"] if args.floor else [])
    if args.baseline:
        names.append("baseline")
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="asgishift-a2w-base-") as tmp:
        env = dict(os.environ)
        if args.baseline:
            env[BASELINE_ENV] = str(unpack_src(args.baseline, Path(tmp)))
        for name in names:
            smoke = ["--smoke"] if args.smoke else []
            argv = [sys.executable, __file__, "--in-process", "--only", name,
                    "--threads", str(args.threads), *smoke]  # fmt: skip
            child = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            label = f"baseline {args.baseline}" if name == "baseline" else name
            best[label] = float(child.stdout.split()[-1])
    rows = [[name, f"{value:.1f}", f"{value / best['a2wsgi']:.2f}x"]
            for name, value in best.items()]  # fmt: skip
    print(markdown_table(["adapter", "µs per request", "vs a2wsgi"], rows))
    return 0


def _measure(args: argparse.Namespace) -> int:
    """Serve every configuration, run the wrk rounds, print the table; 1 if wrk saw errors."""
    labels = list(CONFIGS)
    rps: dict[str, list[float]] = {label: [] for label in labels}
    p99: dict[str, list[float]] = {label: [] for label in labels}
    ratios: dict[str, list[float]] = {label: [] for label in labels}
    cpu_us: dict[str, list[float]] = {label: [] for label in labels}
    errors: dict[str, int] = dict.fromkeys(labels, 0)
    with running(args.threads) as (ports, pids):
        for url_label in labels if not args.smoke else ():  # warm up
            run_wrk(f"http://127.0.0.1:{ports[url_label]}/", connections=10, duration=1)
        for round_no in range(args.rounds):
            order = rotated(labels, round_no)
            this_round: dict[str, float] = {}
            for label in order:
                before = cpu_seconds(pids[label])
                result = run_wrk(
                    f"http://127.0.0.1:{ports[label]}/",
                    connections=args.connections,
                    duration=args.duration,
                )
                used = cpu_seconds(pids[label]) - before
                cpu_us[label].append(used * 1e6 / max(result.requests, 1))
                rps[label].append(result.rps)
                p99[label].append(result.p99_ms)
                errors[label] += result.errors
                this_round[label] = result.rps
            for label in labels:
                ratios[label].append(this_round[label] / this_round["gunicorn/a2wsgi"])
    base = cpu_us["gunicorn/a2wsgi"]
    cpu_ratios = {
        label: [b / c if c else 0.0 for b, c in zip(base, cpu_us[label], strict=True)]
        for label in labels
    }
    rows = [
        [
            label,
            f"{statistics.median(rps[label]):.0f}",
            f"{statistics.median(p99[label]):.2f}",
            f"{statistics.median(ratios[label]):.2f}x",
            f"{statistics.median(cpu_us[label]):.1f}",
            f"{statistics.median(cpu_ratios[label]):.2f}x",
            str(errors[label]),
        ]
        for label in labels
    ]
    header = ["server/adapter", "req/s", "p99 ms", "vs a2wsgi", "CPU µs/req", "CPU vs a2wsgi"]
    print(markdown_table([*header, "errors"], rows))
    print(
        "\nvs a2wsgi: median over rounds of req/s divided by a2wsgi's in the same round. "
        "CPU µs/req: the serving process's CPU time (user + system) per request; "
        "CPU vs a2wsgi: a2wsgi's CPU per request divided by this one's, median over rounds."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine_info(),
                    "rps": rps,
                    "p99_ms": p99,
                    "ratios": ratios,
                    "cpu_us": cpu_us,
                    "cpu_ratios": cpu_ratios,
                },
                indent=2,
            )
        )
    return 0 if not any(errors.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
