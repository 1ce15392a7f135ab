"""Cost per request of HybridRouter over calling the target ASGI app directly.

No server and no sockets: each ASGI app is awaited on one event loop with a
``receive`` that returns one ``http.request`` and a ``send`` that drops what
it gets. The target is a minimal ASGI app (response start and body), so the
difference is the router's own work: matching the prefix, building the
mounted app's scope and one extra ``await``.

Rows, timed back to back in every repeat so they share the machine's noise:

``direct``
    the target app called with the server's scope (the baseline);
``mount``
    the router with three mounts, the request under one of them;
``mount, root_path in path``
    the same with ``root_path="/app"`` included in ``path`` (uvicorn, granian);
``mount, root_path not in path``
    the same with ``path`` left without it (hypercorn, daphne), which makes
    the router rebuild ``path`` and ``raw_path``;
``fallback``
    a path under no mount, passed to the fallback unchanged.

Overhead = row us/request - direct us/request. The best of ``--repeat``
timings of ``--iterations`` requests is kept (noise only adds time). The
process is pinned to one core (``--cpu``, default 0). Target (issue 7, §6):
the router adds at most 5 us per request.

Run: ``.venv/bin/python benchmarks/router_bench.py`` (about 10 s);
``--smoke`` runs a few hundred requests to check the script works.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import machine_info, markdown_table

from asgishift.bridge import HybridRouter

Message = dict[str, Any]
TARGET_US = 5.0

_START: Message = {"type": "http.response.start", "status": 200, "headers": []}
_BODY: Message = {"type": "http.response.body", "body": b"hello"}
_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


async def target(scope: Any, receive: Any, send: Any) -> None:
    """A minimal ASGI app: read the request, send a 5-byte response."""
    await receive()
    await send(_START)
    await send(_BODY)


async def other(scope: Any, receive: Any, send: Any) -> None:
    """Another mounted app (never called: it only makes the prefix table longer)."""
    raise AssertionError("routed to the wrong app")


async def _receive() -> Message:
    return _REQUEST


async def _send(message: Message) -> None:
    return None


def _scope(path: str, root_path: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def rows() -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    """Return ``(name, app, scope)`` for each row of the table (see the module docstring)."""
    router = HybridRouter(other, {"/admin": other, "/api": target, "/static": other})
    fallback = HybridRouter(target, {"/admin": other, "/api": other, "/static": other})
    return [
        ("direct", target, _scope("/api/items/42")),
        ("mount", router, _scope("/api/items/42")),
        ("mount, root_path in path", router, _scope("/app/api/items/42", "/app")),
        ("mount, root_path not in path", router, _scope("/api/items/42", "/app")),
        ("fallback", fallback, _scope("/notes/42")),
    ]


async def _time(app: Callable[..., Any], scope: dict[str, Any], iterations: int) -> float:
    """Return microseconds per request for ``iterations`` sequential requests."""
    start = time.perf_counter()
    for _ in range(iterations):
        await app(scope, _receive, _send)
    return (time.perf_counter() - start) / iterations * 1e6


async def measure(iterations: int, repeat: int) -> dict[str, float]:
    """Return the best microseconds per request of each row over ``repeat`` rounds."""
    table = rows()
    best = {name: float("inf") for name, _, _ in table}
    for _name, app, scope in table:  # warm up
        await _time(app, scope, min(iterations, 1000))
    for _ in range(repeat):
        for name, app, scope in table:
            gc.collect()
            best[name] = min(best[name], await _time(app, scope, iterations))
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; return 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: no pinning)")
    parser.add_argument("--smoke", action="store_true", help="a few hundred requests")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat = 200, 2
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    info = machine_info()
    print(f"# router_bench: python {info['python']}, {info['cpu']}, pinned to cpu {args.cpu}")
    print(f"# {args.repeat} repeats x {args.iterations} sequential requests, best kept\n")
    best = asyncio.run(measure(args.iterations, args.repeat))
    direct = best["direct"]
    table = []
    worst = 0.0
    for name, us in best.items():
        overhead = us - direct
        if name != "direct":
            worst = max(worst, overhead)
        table.append([name, f"{us:.2f}", "" if name == "direct" else f"{overhead:+.2f}"])
    print(markdown_table(["path taken", "us/request", "overhead us"], table))
    verdict = "met" if worst <= TARGET_US else "MISSED"
    print(
        f"\nrouter overhead: at most {worst:+.2f} us/request (target <= {TARGET_US} us): {verdict}"
    )
    return 0 if worst <= TARGET_US or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
