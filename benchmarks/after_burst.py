"""Sequential requests right after a burst: does the bridge's pool rotate over cold threads?

A burst of concurrent requests makes ``WSGIToASGI``'s pool start many threads.
If the requests that follow one at a time were then handed to those threads in
turn, each would meet a stack and frames gone from the CPU's caches, and pay
for it on every request. This script times, in one process on one loop, the
same sequential requests (µs over a direct WSGI call, best of ``--repeat``)
through four adapters, each timing right after a burst of ``--burst``
requests ``--batch`` at a time, except the one named ``fresh``:

``asgishift``
    the bridge with its default pool;
``one-worker``
    the bridge with ``max_workers=1``, which cannot rotate;
``fresh``
    the bridge with its default pool that never sees a burst;
``floor``
    ``w2a_floor.py``'s adapter (one thread, no rules).

When the pool keeps its last thread hot (``bridge/_pool.py``), ``asgishift``
measures what ``one-worker`` and ``fresh`` do.

Run from the repository root::

    flock /tmp/bench.lock taskset -c 0 .venv/bin/python benchmarks/after_burst.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence
from typing import Any

import bench_app
from _common import markdown_table
from inprocess_bench import check, new_loop, time_concurrent, time_direct, time_sequential

ADAPTERS = ("asgishift", "one-worker", "fresh", "floor")


def make_adapter(name: str, wsgi_app: Any) -> Any:
    """Return the ASGI app called ``name`` in :data:`ADAPTERS` around ``wsgi_app``."""
    if name == "one-worker":
        return bench_app.wrap(wsgi_app, "asgishift", 1)
    return bench_app.wrap(wsgi_app, "floor" if name == "floor" else "asgishift", None)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description="Sequential requests right after a burst, through the bridge's pool "
        "and through adapters that cannot rotate (see the module docstring)."
    )
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks it runs")
    parser.add_argument("--apps", default="flask,plain", help="comma-separated: flask,plain")
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    parser.add_argument("--iterations", type=int, default=2000, help="sequential requests")
    parser.add_argument("--repeat", type=int, default=7, help="timings; the best is kept")
    parser.add_argument("--burst", type=int, default=500, help="requests in each burst")
    parser.add_argument("--batch", type=int, default=50, help="requests at once in a burst")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print one table row per app and adapter."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat, args.burst = 50, 1, 100
    n = args.iterations
    print(
        f"# {n} sequential requests per timing, best of {args.repeat}, each after a burst "
        f"of {args.burst} ({args.batch} at once), {args.loop} loop\n"
    )
    rows: list[list[str]] = []
    for app_name in [a for a in args.apps.split(",") if a]:
        wsgi_app = bench_app.make_flask_app() if app_name == "flask" else bench_app.plain_app
        loop = new_loop(args.loop)
        asyncio.set_event_loop(loop)
        adapters = {name: make_adapter(name, wsgi_app) for name in ADAPTERS}
        for name, adapter in adapters.items():
            check(adapter, loop, name)
        times: dict[str, list[float]] = {name: [] for name in ADAPTERS}
        direct: list[float] = []
        try:
            for _ in range(args.repeat):
                gc.collect()
                direct.append(time_direct(wsgi_app, n) / n * 1e6)
                for name, adapter in adapters.items():
                    if name != "fresh":
                        loop.run_until_complete(time_concurrent(adapter, args.burst, args.batch))
                    seconds = loop.run_until_complete(time_sequential(adapter, n))
                    times[name].append(seconds / n * 1e6)
        finally:
            loop.close()
            asyncio.set_event_loop(None)
        best = min(direct)
        rows.append([app_name, "direct WSGI call", f"{best:.1f}", "-"])
        for name in ADAPTERS:
            rows.append(
                [app_name, name, f"{min(times[name]):.1f}", f"{min(times[name]) - best:+.1f}"]
            )
            print(f"  {app_name} {name}: {min(times[name]):.1f} us", file=sys.stderr, flush=True)
    print(markdown_table(["app", "adapter", "sequential us/req", "overhead us"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
