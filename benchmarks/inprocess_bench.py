"""Cost per request of each WSGI->ASGI bridge over calling the WSGI app directly.

No server and no sockets: the ASGI app is awaited on one event loop with a
minimal ``receive`` (one ``http.request`` message, then ``http.disconnect``
once the response has finished) and a ``send`` that only keeps the status and
counts body bytes. The baseline calls the WSGI app in the same process with a
prebuilt environ, a no-op ``start_response``, joins the iterable and calls its
``close()``. Per configuration, ``--repeat`` timings of ``--iterations``
requests each are taken and the best (lowest) is kept, since on a shared
machine the noise only ever adds time. Each repeat times the direct call and
every bridge back to back, so the baseline and the bridges see the same
moments of the machine.

Two modes:

``sequential``
    one request at a time: the latency a bridge adds to every request
    (this is the figure the ``<= 40 us`` target is about).
``concurrent``
    ``--batch`` requests at once with ``asyncio.gather``: the CPU cost per
    request when the bridge may overlap requests, as it does under load.

Overhead = bridge us/request - direct us/request, for the same app and loop.

``--app-time`` also times the app's own work (the call, its iterable drained
to a list, ``close()``) where it runs, on the worker thread or in the direct
loop, and adds a column for it: how much of an adapter's overhead is the app
itself running slower between two event-loop turns than back to back. The app
then returns a list, so the bridges take their sized-iterable path.

The process is pinned to one core (``--cpu``, default 0, like the servers of
``http_bench.py``): every loop <-> worker hand-off then happens on that core.
Unpinned, a hand-off to an idle virtual CPU pays its wake-up latency, which on
the 2-core VM these figures come from made sequential figures 4x worse in
quiet minutes than in busy ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import bench_app
from _common import ADAPTERS, machine_info, markdown_table

Message = dict[str, Any]

BASE_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "state": {},
}


def base_environ() -> dict[str, Any]:
    """Return the PEP 3333 environ equivalent to :data:`BASE_SCOPE`."""
    import io

    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


class Exchange:
    """The ``receive``/``send`` pair for one request (ASGI HTTP spec, version 2.3).

    ``receive`` returns the (empty) request body once, then waits until the
    response is complete and reports ``http.disconnect``, as a server would
    when the client goes away after its response.
    """

    __slots__ = ("body_bytes", "done", "sent_request", "status")

    def __init__(self) -> None:
        self.sent_request = False
        self.done = asyncio.Event()
        self.status = 0
        self.body_bytes = 0

    async def receive(self) -> Message:
        """Return the next message from the client."""
        if not self.sent_request:
            self.sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Take one message from the app."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body_bytes += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.done.set()


async def one_request(asgi_app: Any) -> int:
    """Run one request through ``asgi_app`` and return the response status."""
    exchange = Exchange()
    await asgi_app(dict(BASE_SCOPE), exchange.receive, exchange.send)
    return exchange.status


def time_direct(wsgi_app: Any, iterations: int) -> float:
    """Return seconds for ``iterations`` direct WSGI calls."""
    environ = base_environ()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    start = time.perf_counter()
    for _ in range(iterations):
        result: Iterable[bytes] = wsgi_app(dict(environ), start_response)
        try:
            b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    return time.perf_counter() - start


class AppClock:
    """A WSGI app that times the wrapped app's own work wherever it runs (``--app-time``).

    Each call runs the app, drains its iterable into a list and calls its
    ``close()``, all inside the timed span, and returns the list (PEP 3333
    allows a list). :attr:`seconds` and :attr:`calls` add up until :meth:`reset`.

    :param app: the PEP 3333 application to time.
    """

    __slots__ = ("app", "calls", "seconds")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """Run the app once; return its whole body as a list of blocks."""
        start = time.perf_counter()
        result = self.app(environ, start_response)
        try:
            body = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return body

    def reset(self) -> None:
        """Start counting again from zero."""
        self.seconds = 0.0
        self.calls = 0

    def per_call(self) -> float:
        """Return the mean seconds per call since :meth:`reset` (0 before any call)."""
        return self.seconds / self.calls if self.calls else 0.0


async def time_sequential(asgi_app: Any, iterations: int) -> float:
    """Return seconds for ``iterations`` requests awaited one after another."""
    start = time.perf_counter()
    for _ in range(iterations):
        await one_request(asgi_app)
    return time.perf_counter() - start


async def time_concurrent(asgi_app: Any, iterations: int, batch: int) -> float:
    """Return seconds for ``iterations`` requests run ``batch`` at a time."""
    start = time.perf_counter()
    done = 0
    while done < iterations:
        size = min(batch, iterations - done)
        await asyncio.gather(*(one_request(asgi_app) for _ in range(size)))
        done += size
    return time.perf_counter() - start


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """Return a fresh event loop of ``kind`` (``asyncio`` or ``uvloop``)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def check(asgi_app: Any, loop: asyncio.AbstractEventLoop, label: str) -> None:
    """Run one request and fail loudly unless it answers 200 with ``Hello, World!``.

    :raise RuntimeError: when the bridge answers anything else.
    """

    async def probe() -> tuple[int, int]:
        exchange = Exchange()
        await asgi_app(dict(BASE_SCOPE), exchange.receive, exchange.send)
        return exchange.status, exchange.body_bytes

    status, size = loop.run_until_complete(probe())
    if status != 200 or size != len(bench_app.HELLO):
        raise RuntimeError(f"{label}: expected 200 and 13 bytes, got {status} and {size}")


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description="Per-request overhead of WSGI->ASGI bridges over a direct WSGI call "
        "(in process, no server).",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="50 iterations, one repeat: checks the machinery only")  # fmt: skip
    parser.add_argument("--apps", default="plain,flask", help="comma-separated: plain,flask")
    parser.add_argument(
        "--adapters",
        default=",".join(ADAPTERS),
        help="comma-separated bridges (also: floor, w2a_floor.py)",
    )
    parser.add_argument("--loops", default="uvloop,asyncio", help="comma-separated loops")
    parser.add_argument("--iterations", type=int, default=2000, help="requests per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per figure; best is kept")
    parser.add_argument("--batch", type=int, default=50, help="requests at once (concurrent)")
    parser.add_argument(
        "--app-time",
        action="store_true",
        help="also time the app's own work where it runs (worker thread or direct loop) "
        "and add a column for it, sequential requests",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=0,
        help="pin the process (loop and worker threads) to this core, as http_bench pins "
        "the servers; -1 leaves it unpinned (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat = 50, 1
    adapters = [a for a in args.adapters.split(",") if a]
    if "asgishift" in adapters:
        try:
            from asgishift.bridge import WSGIToASGI  # noqa: F401
        except ImportError as exc:
            print(f"asgishift.bridge does not import ({exc}): leaving it out", file=sys.stderr)
            adapters.remove("asgishift")

    pinned_to = "unpinned"
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity") and args.cpu < (os.cpu_count() or 1):
        # Threads started later inherit this. Unpinned, a hand-off to a thread
        # whose core sits idle pays the (virtual) CPU's wake-up latency, which
        # on this VM swung sequential figures by 4x between quiet and busy minutes.
        os.sched_setaffinity(0, {args.cpu})
        pinned_to = f"pinned to core {args.cpu}"
    info = machine_info()
    print("# In-process bridge overhead\n")
    print(", ".join(f"{k} {v}" for k, v in info.items()) + "\n")
    print(f"{args.iterations} requests per timing, best of {args.repeat}, "
          f"concurrent batch {args.batch}, {pinned_to}\n")  # fmt: skip
    rows: list[list[str]] = []
    n = args.iterations
    loop_kinds = [k for k in args.loops.split(",") if k]
    for app_name in [a for a in args.apps.split(",") if a]:
        wsgi_app = bench_app.make_flask_app() if app_name == "flask" else bench_app.plain_app
        clock = AppClock(wsgi_app) if args.app_time else None
        if clock is not None:
            wsgi_app = clock
        # One loop per kind, one bridge per (loop, adapter), all alive at once so
        # that every repeat times the direct call and each bridge back to back:
        # noise from other processes then hits the baseline and the bridges alike.
        loops = {kind: new_loop(kind) for kind in loop_kinds}
        bridges: dict[tuple[str, str], Any] = {}
        for kind, loop in loops.items():
            asyncio.set_event_loop(loop)
            for adapter in adapters:
                bridges[kind, adapter] = bench_app.wrap(wsgi_app, adapter, None)
                check(bridges[kind, adapter], loop, adapter)
        direct_times: list[float] = []
        direct_app: list[float] = []  # the app's own seconds per call, each repeat
        seq_times: dict[tuple[str, str], list[float]] = {key: [] for key in bridges}
        seq_app: dict[tuple[str, str], list[float]] = {key: [] for key in bridges}
        conc_times: dict[tuple[str, str], list[float]] = {key: [] for key in bridges}
        try:
            for _ in range(args.repeat):
                gc.collect()
                if clock is not None:
                    clock.reset()
                direct_times.append(time_direct(wsgi_app, n))
                if clock is not None:
                    direct_app.append(clock.per_call())
                for (kind, adapter), asgi_app in bridges.items():
                    loop = loops[kind]
                    asyncio.set_event_loop(loop)
                    if clock is not None:
                        clock.reset()
                    seq_times[kind, adapter].append(
                        loop.run_until_complete(time_sequential(asgi_app, n))
                    )
                    if clock is not None:
                        seq_app[kind, adapter].append(clock.per_call())
                    conc_times[kind, adapter].append(
                        loop.run_until_complete(time_concurrent(asgi_app, n, args.batch))
                    )
        finally:
            for loop in loops.values():
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()
            asyncio.set_event_loop(None)
        direct = min(direct_times) / n * 1e6
        row = [app_name, "-", "direct WSGI call", f"{direct:.1f}", "-", "-", "-"]
        if clock is not None:
            row.append(f"{min(direct_app) * 1e6:.1f}")
        rows.append(row)
        for kind, adapter in bridges:
            seq = min(seq_times[kind, adapter]) / n * 1e6
            conc = min(conc_times[kind, adapter]) / n * 1e6
            row = [app_name, kind, adapter, f"{seq:.1f}", f"{seq - direct:+.1f}",
                   f"{conc:.1f}", f"{conc - direct:+.1f}"]  # fmt: skip
            if clock is not None:
                row.append(f"{min(seq_app[kind, adapter]) * 1e6:.1f}")
            rows.append(row)
            print(f"  {app_name} {kind} {adapter}: sequential {seq:.1f} us, "
                  f"concurrent {conc:.1f} us", file=sys.stderr, flush=True)  # fmt: skip
    header = ["app", "loop", "bridge", "sequential us/req", "overhead us",
              "concurrent us/req", "overhead us (concurrent)"]  # fmt: skip
    if args.app_time:
        header.append("app's own us/req (sequential)")
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
