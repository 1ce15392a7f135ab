"""Async Flask views: stock Flask, a2wsgi, Quart and asgishift's Flask extension, same run.

Every contender serves the same two async views:

* ``GET /``: ``await asyncio.sleep(0)`` then a small JSON body (throughput,
  ``wrk -t1 -c50``);
* ``GET /sleep``: ``await asyncio.sleep(0.1)`` then JSON (concurrency: the
  wall time for 1,000 requests sent at once, each on its own connection).

Contenders, one server process each pinned to core 0 (the load generator and
the 1,000-request client run on core 1), 32 threads wherever threads exist:

* ``gunicorn-gthread/flask``: stock Flask under gunicorn's gthread worker (the
  reference: every ratio is relative to it);
* ``uvicorn/a2wsgi-flask``: stock Flask through ``a2wsgi.WSGIMiddleware``;
* ``uvicorn/bridge-flask``: stock Flask through ``asgishift.bridge.WSGIToASGI``
  (no extension; ``max_queue`` raised to 1,000 so the burst queues instead of
  getting 503s);
* ``uvicorn/quart``: the same views written for Quart;
* ``uvicorn/flask+asgishift``: Flask with ``asgishift.flask_integration.ASGI``.

Throughput rounds are interleaved (each round runs every contender once) and
the table shows medians; ratios are per round, then the median.

Run: ``python benchmarks/flask_bench.py [--rounds 3] [--duration 5]``.
The servers import this file as ``flask_bench:<contender>`` (module
``__getattr__`` builds the app on first access).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _common import (  # noqa: E402
    CLIENT_CORE,
    SERVER_CORE,
    WrkResult,
    child_env,
    free_port,
    machine_info,
    pinned,
    run_wrk,
    stop,
    wait_ready,
)

#: Threads for every thread-based contender (gunicorn --threads, a2wsgi workers,
#: the bridge's and the extension's max_workers).
THREADS = 32
#: Requests sent at once in the concurrency figure.
CONCURRENT = 1000

REFERENCE = "gunicorn-gthread/flask"
#: label -> (server, attribute of this module served)
CONTENDERS: dict[str, tuple[str, str]] = {
    REFERENCE: ("gunicorn", "stock_flask"),
    "uvicorn/a2wsgi-flask": ("uvicorn", "a2wsgi_flask"),
    "uvicorn/bridge-flask": ("uvicorn", "bridge_flask"),
    "uvicorn/quart": ("uvicorn", "quart_app"),
    "uvicorn/flask+asgishift": ("uvicorn", "extension_flask"),
}


# --- the apps ----------------------------------------------------------------
def _flask_app(**config: Any) -> Any:
    from flask import Flask, jsonify

    app = Flask("flask_bench")
    app.config.update(config)

    @app.get("/")
    async def hello() -> Any:
        await asyncio.sleep(0)
        return jsonify(hello="world")

    @app.get("/sleep")
    async def sleep() -> Any:
        await asyncio.sleep(0.1)
        return jsonify(slept=0.1)

    return app


def _quart_app() -> Any:
    from quart import Quart, jsonify

    app = Quart("flask_bench")

    @app.get("/")
    async def hello() -> Any:
        await asyncio.sleep(0)
        return jsonify(hello="world")

    @app.get("/sleep")
    async def sleep() -> Any:
        await asyncio.sleep(0.1)
        return jsonify(slept=0.1)

    return app


def _build(name: str) -> Any:
    if name == "stock_flask":
        return _flask_app()
    if name == "a2wsgi_flask":
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(_flask_app(), workers=THREADS)
    if name == "bridge_flask":
        from asgishift.bridge import WSGIToASGI

        return WSGIToASGI(_flask_app(), max_workers=THREADS, max_queue=CONCURRENT)
    if name == "quart_app":
        return _quart_app()
    if name == "extension_flask":
        from asgishift.flask_integration import ASGI

        return ASGI(_flask_app(ASGISHIFT_MAX_WORKERS=THREADS)).asgi_app
    raise AttributeError(name)


def __getattr__(name: str) -> Any:
    """Build a contender's app when a server imports ``flask_bench:<name>``."""
    if name.startswith("_") or name not in {attr for _, attr in CONTENDERS.values()}:
        raise AttributeError(name)
    app = _build(name)
    globals()[name] = app
    return app


# --- servers -------------------------------------------------------------------
def _argv(server: str, attr: str, port: int) -> list[str]:
    py = sys.executable
    target = f"flask_bench:{attr}"
    if server == "gunicorn":
        return [py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
                "--threads", str(THREADS), "--backlog", "2048", "--log-level", "warning",
                target]  # fmt: skip
    return [py, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--backlog", "2048"]  # fmt: skip


class Running:
    """The contenders' server processes, started together and stopped together."""

    def __init__(self, labels: Sequence[str], tmp: str) -> None:
        self.urls: dict[str, str] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        for label in labels:
            server, attr = CONTENDERS[label]
            port = free_port()
            log_path = Path(tmp) / (label.replace("/", "_") + ".log")
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    pinned(SERVER_CORE, _argv(server, attr, port)),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=str(BENCH_DIR),
                    env=child_env({"PYTHONUNBUFFERED": "1"}),
                    start_new_session=True,
                )
            self._procs.append(proc)
            wait_ready(proc, port, log_path, 60.0)
            self.urls[label] = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for proc in self._procs:
            stop(proc)


# --- the 1,000-at-once client ---------------------------------------------------
async def _one(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0


async def _burst(port: int, count: int) -> tuple[float, int]:
    started = time.perf_counter()
    statuses = await asyncio.gather(
        *(_one(port, "/sleep") for _ in range(count)), return_exceptions=True
    )
    elapsed = time.perf_counter() - started
    ok = sum(1 for status in statuses if status == 200)
    return elapsed, ok


def concurrency_figure(url: str, count: int = CONCURRENT) -> tuple[float, int]:
    """Return (seconds until all ``count`` requests to /sleep answered, how many got 200)."""
    port = int(url.rsplit(":", 1)[1])
    return asyncio.run(_burst(port, count))


def _load_average() -> str:
    """Return the 1-minute load average (other work on the machine skews every figure)."""
    try:
        return Path("/proc/loadavg").read_text().split(" ", 1)[0]
    except OSError:
        return "unknown"


# --- main ------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma-separated labels (the reference is always included)",
    )
    args = parser.parse_args(argv)
    labels = [REFERENCE] + [
        label for label in args.contenders.split(",") if label and label != REFERENCE
    ]
    for label in labels:
        if label not in CONTENDERS:
            parser.error(f"unknown contender {label!r}; use some of {', '.join(CONTENDERS)}")
    if hasattr(os, "sched_setaffinity") and int(CLIENT_CORE) < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    info = machine_info()
    for dist in ("quart", "asgishift"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = "not installed"
    info["loadavg"] = _load_average()
    print("# flask_bench: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    with tempfile.TemporaryDirectory(prefix="asgishift-flask-bench-") as tmp:
        running = Running(labels, tmp)
        try:
            results: dict[str, list[WrkResult]] = {label: [] for label in labels}
            for _ in range(args.rounds):
                for label in labels:
                    url = running.urls[label] + "/"
                    run_wrk(url, connections=args.connections, duration=1)  # warm-up
                    results[label].append(
                        run_wrk(url, connections=args.connections, duration=args.duration)
                    )
            bursts = {label: concurrency_figure(running.urls[label]) for label in labels}
            end_load = _load_average()
        finally:
            running.close()
    print()
    print(
        f"## async view (sleep(0) + JSON): wrk -t1 -c{args.connections} "
        f"-d{args.duration:g}s, {args.rounds} interleaved rounds, medians; "
        f"{CONCURRENT} x GET /sleep (0.1 s) at once"
    )
    print()
    print("| contender | req/s | vs gunicorn gthread | p99 ms | errors | "
          f"{CONCURRENT} x 0.1 s: wall s | 200s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    ref = results[REFERENCE]
    for label in labels:
        runs = results[label]
        ratio = statistics.median(r.rps / base.rps for r, base in zip(runs, ref, strict=True))
        wall, ok = bursts[label]
        print(
            f"| {label} | {statistics.median(r.rps for r in runs):.0f} | {ratio:.2f}x | "
            f"{statistics.median(r.p99_ms for r in runs):.1f} | "
            f"{sum(r.errors for r in runs)} | {wall:.2f} | {ok} |"
        )
    print()
    print(f"load average (1 min) at start {info['loadavg']}, at end {end_load}")
    if "uvicorn/quart" in results and "uvicorn/flask+asgishift" in results:
        ours = results["uvicorn/flask+asgishift"]
        quart = results["uvicorn/quart"]
        vs_quart = statistics.median(a.rps / b.rps for a, b in zip(ours, quart, strict=True))
        print()
        print(f"flask+asgishift vs quart (median of per-round ratios): {vs_quart:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
