"""Break asgishift's per-request cost into its parts, in process (no server).

Times, in microseconds per request (best of ``--repeat``), one after another
on one event loop:

``environ``
    building the PEP 3333 environ from the ASGI scope (``build_environ``).
``crossing``
    one round trip through the bridge's worker pool with a job that does
    nothing but post back to the loop: ``WorkerPool.submit`` on the loop, the
    worker wakes, ``loop.call_soon_threadsafe`` back, the loop wakes. This is
    the floor any thread-pool bridge pays per request.
``crossing (ThreadPoolExecutor)``
    the same round trip through ``loop.run_in_executor`` and the stdlib pool,
    for comparison.
``request (plain)`` / ``request (flask)``
    a whole request through ``WSGIToASGI`` with the minimal receive/send of
    ``inprocess_bench.py``.
``direct (plain)`` / ``direct (flask)``
    the WSGI app called directly.
``flask + plain request, interleaved``
    on the loop thread, each direct Flask call followed by one plain request
    through the bridge: what Flask costs when other work runs between its
    calls, as a server's own work always does, with no thread hop for Flask.
``interleave penalty`` / ``flask's extra through the bridge``
    that figure minus ``direct (flask)`` and ``request (plain)``, and
    ``request (flask)`` minus the same two. Both are timed in alternation
    (each repeat times the four figures back to back, best of each kept). When
    the two are alike, what Flask pays through the bridge beyond a plain app
    is the price of sharing the core's caches with any other work between
    its calls, not of the bridge's thread hop.

The remainder ``request - direct - crossing - environ`` is the bridge's own
Python work on both sides (the ``_Request`` object, start_response, the two
messages). ``--cprofile`` additionally prints the top functions of the loop
thread for the flask request (worker threads are not seen by cProfile; use
``py-spy record --threads --format raw`` for them).

This script reads the bridge's private modules (``asgishift.bridge._environ``,
``asgishift.bridge._pool``); it is a tool for the bridge's authors.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import cProfile
import functools
import io
import pstats
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import bench_app
from _common import markdown_table
from inprocess_bench import BASE_SCOPE, new_loop, one_request, time_direct
from inprocess_bench import base_environ as direct_environ


def _return(value: Callable[[], object]) -> Callable[[], object]:
    """A pool job that does nothing and hands back ``value`` as its follow-up."""
    return value


def best(repeat: int, run: Callable[[], float]) -> float:
    """Return the lowest of ``repeat`` timings."""
    return min(run() for _ in range(repeat))


def per_call(loop: asyncio.AbstractEventLoop, make: Callable[[], Coroutine[Any, Any, None]],
             n: int, repeat: int) -> float:  # fmt: skip
    """Return microseconds per iteration of the coroutine from ``make``, best of ``repeat``."""

    def run() -> float:
        start = time.perf_counter()
        loop.run_until_complete(make())
        return time.perf_counter() - start

    return best(repeat, run) / n * 1e6


def interleave_rows(loop: asyncio.AbstractEventLoop, n: int, repeat: int) -> list[list[str]]:
    """Time Flask with other work between its calls; return the table rows (µs per request).

    See the module documentation (``flask + plain request, interleaved``).
    """
    from asgishift.bridge import WSGIToASGI

    flask_app = bench_app.make_flask_app()
    environ = direct_environ()
    plain = WSGIToASGI(bench_app.plain_app)
    flask = WSGIToASGI(flask_app)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    def flask_call() -> None:
        result = flask_app(dict(environ), start_response)
        try:
            b"".join(result)
        finally:
            result.close()  # type: ignore[attr-defined]

    async def plain_requests() -> None:
        for _ in range(n):
            await one_request(plain)

    async def interleaved() -> None:
        for _ in range(n):
            flask_call()
            await one_request(plain)

    async def flask_requests() -> None:
        for _ in range(n):
            await one_request(flask)

    times: dict[str, list[float]] = {"direct": [], "plain": [], "both": [], "flask": []}
    for _ in range(repeat):
        times["direct"].append(time_direct(flask_app, n))
        for key, make in (("plain", plain_requests), ("both", interleaved),
                          ("flask", flask_requests)):  # fmt: skip
            start = time.perf_counter()
            loop.run_until_complete(make())
            times[key].append(time.perf_counter() - start)
    plain.shutdown(5)
    flask.shutdown(5)
    us = {key: min(values) / n * 1e6 for key, values in times.items()}
    return [
        ["flask + plain request, interleaved", f"{us['both']:.1f}"],
        ["interleave penalty", f"{us['both'] - us['direct'] - us['plain']:.1f}"],
        ["flask's extra through the bridge", f"{us['flask'] - us['direct'] - us['plain']:.1f}"],
    ]


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description="Break asgishift's per-request cost into environ, crossing and the rest.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks it runs")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--iterations", type=int, default=5000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings; the best is kept")
    parser.add_argument("--cprofile", action="store_true",
                        help="also cProfile the loop thread during flask requests")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the breakdown table; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat = 50, 1
    from asgishift.bridge import WSGIToASGI
    from asgishift.bridge._environ import base_environ, build_environ
    from asgishift.bridge._files import ErrorStream, FileWrapper
    from asgishift.bridge._pool import WorkerPool

    n, repeat = args.iterations, args.repeat
    loop = new_loop(args.loop)
    asyncio.set_event_loop(loop)
    rows: list[list[str]] = []

    base = base_environ(ErrorStream(), FileWrapper)

    def environ_run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            build_environ(BASE_SCOPE, base)
        return time.perf_counter() - start

    environ_us = best(repeat, environ_run) / n * 1e6
    rows.append(["environ", f"{environ_us:.1f}"])

    pool = WorkerPool(40, 200)

    async def crossings() -> None:
        running = asyncio.get_running_loop()
        for _ in range(n):
            fut: asyncio.Future[None] = running.create_future()
            # As the bridge does: the job returns its post to the loop as the
            # follow-up the worker runs once it counts itself free.
            wake = functools.partial(running.call_soon_threadsafe, fut.set_result, None)
            pool.submit(functools.partial(_return, wake))
            await fut

    crossing_us = per_call(loop, crossings, n, repeat)
    rows.append(["crossing (asgishift WorkerPool)", f"{crossing_us:.1f}"])
    pool.stop_threads()

    executor = concurrent.futures.ThreadPoolExecutor(40)

    async def executor_crossings() -> None:
        running = asyncio.get_running_loop()
        for _ in range(n):
            await running.run_in_executor(executor, int)

    rows.append(["crossing (ThreadPoolExecutor)",
                 f"{per_call(loop, executor_crossings, n, repeat):.1f}"])  # fmt: skip
    executor.shutdown()

    for name, wsgi_app in (("plain", bench_app.plain_app), ("flask", bench_app.make_flask_app())):
        direct = best(repeat, functools.partial(time_direct, wsgi_app, n)) / n * 1e6
        asgi_app = WSGIToASGI(wsgi_app)

        async def requests(app: Any = asgi_app) -> None:
            for _ in range(n):
                await one_request(app)

        request_us = per_call(loop, requests, n, repeat)
        rest = request_us - direct - crossing_us - environ_us
        rows.append([f"direct ({name})", f"{direct:.1f}"])
        rows.append([f"request ({name})", f"{request_us:.1f}"])
        rows.append([f"rest of the bridge ({name})", f"{rest:.1f}"])
        if args.cprofile and name == "flask":
            profiler = cProfile.Profile()
            profiler.enable()
            loop.run_until_complete(requests())
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
            print(out.getvalue(), file=sys.stderr)
        asgi_app.shutdown(5)
    rows.extend(interleave_rows(loop, n, repeat))
    loop.close()
    print(f"# asgishift cost breakdown ({args.loop}, best of {repeat} x {n} calls)\n")
    print(markdown_table(["part", "us per request"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
