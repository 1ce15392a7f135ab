"""Instructions per request of the WSGI->ASGI bridges, counted under valgrind (no timing).

Timings on a shared machine swing by more than the few microseconds a change
to the bridge's hot path makes. An instruction count does not: it is the same
from run to run, whatever else the machine does. This script runs sequential
requests through a bridge under ``valgrind --tool=callgrind`` twice, with
``--small`` and ``--large`` requests after the same warm-up, and divides the
difference in instructions by the difference in requests, so start-up and
imports cancel out. The same is done for a direct call of the WSGI app, and
each bridge's overhead is its count minus the direct call's.

Bridges: ``asgishift`` (this checkout's ``src/``), ``baseline`` (``src/`` of
git ``--baseline``, unpacked with ``git archive``) and ``a2wsgi``. Apps:
``plain`` and ``flask`` of ``bench_app.py``. Instructions are user-space only
(the kernel's share of a thread switch is not counted), and valgrind runs one
thread at a time, so this measures work, not contention.

``--floor-parts`` counts, instead, the floor adapter of ``w2a_floor.py`` (the
least an adapter of the bridge's architecture does), the floor with each
part of the bridge put back on its own (``w2a_floor.PARTS``), the floor with
all of them, and the bridge: what each part costs, and what the bridge's
remaining rules cost beyond them.

``--direction asgi-to-wsgi`` counts the other direction the same way:
``ASGIToWSGI`` (and ``a2wsgi.ASGIMiddleware``) serving the Starlette hello app
of ``asgi_to_wsgi_bench.py`` to sequential calls from one thread, against the
app called directly on a loop.

Run from the repository root::

    .venv/bin/python benchmarks/instructions.py --baseline 88b5c01
    .venv/bin/python benchmarks/instructions.py --direction asgi-to-wsgi --loops asyncio,uvloop
    .venv/bin/python benchmarks/instructions.py --floor-parts --apps plain

Needs ``valgrind`` (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _common import unpack_src

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

# Runs in the child under valgrind: argv = bridge, app, loop, requests.
CHILD = """
import asyncio, sys
bridge_name, app_name, loop_name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, {bench!r})
import bench_app
from inprocess_bench import new_loop, one_request, time_direct
wsgi = bench_app.make_flask_app() if app_name == "flask" else bench_app.plain_app
if bridge_name == "direct":
    time_direct(wsgi, {warmup} + count)
else:
    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    if bridge_name.startswith("floor"):
        app = bench_app.wrap(wsgi, bridge_name, None)
    else:
        if bridge_name == "a2wsgi":
            from a2wsgi import WSGIMiddleware as Bridge
        else:
            from asgishift.bridge import WSGIToASGI as Bridge
        app = Bridge(wsgi)
    async def run(n):
        for _ in range(n):
            await one_request(app)
    loop.run_until_complete(run({warmup} + count))
    loop.close()
"""

# The ASGI->WSGI direction (--direction asgi-to-wsgi): the Starlette hello app of
# asgi_to_wsgi_bench.py, called directly on a loop or through an adapter from this thread.
A2W_CHILD = """
import asyncio, sys
bridge_name, loop_name, count = sys.argv[1], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, {bench!r})
from asgi_to_wsgi_bench import _build_starlette, _environ, _start_response
asgi = _build_starlette()
total = {warmup} + count
if bridge_name == "direct":
    SCOPE = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}}
    REQUEST = {{"type": "http.request", "body": b"", "more_body": False}}
    async def receive():
        return REQUEST
    async def send(message):
        pass
    async def run():
        for _ in range(total):
            await asgi(dict(SCOPE), receive, send)
    asyncio.run(run())
else:
    if bridge_name == "a2wsgi":
        from a2wsgi import ASGIMiddleware
        app = ASGIMiddleware(asgi)
    else:
        from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions
        app = ASGIToWSGI(asgi, ASGIToWSGIOptions(loop=loop_name))
    for _ in range(total):
        result = app(_environ(), _start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
"""

WARMUP = 50
COLLECTED = re.compile(r"Collected : (\d+)")


def count_instructions(
    bridge: str, app: str, loop: str, requests: int, src: Path | None, child: str = CHILD
) -> int:
    """Return the instructions valgrind counted for one child run.

    :param src: the directory put first on ``sys.path`` (a ``src/`` holding
        ``asgishift``), or ``None`` for bridges that do not need it.
    :param child: the child's code: :data:`CHILD` (WSGI->ASGI) or :data:`A2W_CHILD`.
    :raise RuntimeError: if valgrind printed no instruction total.
    """
    env = dict(os.environ, PYTHONHASHSEED="0")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    code = child.format(bench=str(BENCH_DIR), warmup=WARMUP)
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            code,
            bridge,
            app,
            loop,
            str(requests),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    match = COLLECTED.search(result.stderr)
    if result.returncode != 0 or match is None:
        raise RuntimeError(
            f"valgrind run of {bridge}/{app}/{loop} failed (exit {result.returncode}):\n"
            + result.stderr[-2000:]
        )
    return int(match.group(1))


def per_request(
    bridge: str,
    app: str,
    loop: str,
    small: int,
    large: int,
    src: Path | None,
    runs: int,
    child: str = CHILD,
) -> float:
    """Return instructions per request: the difference of two runs over their request counts.

    Each count is the least of ``runs`` runs. The counts are not quite exact: where
    valgrind switches threads decides how many extra loop passes and garbage
    collections a run makes (about 7 million instructions between two runs of
    the same 100 requests); the least of a few runs is the run without them.
    """
    low = min(count_instructions(bridge, app, loop, small, src, child) for _ in range(runs))
    high = min(count_instructions(bridge, app, loop, large, src, child) for _ in range(runs))
    return (high - low) / (large - small)


def floor_parts(apps: list[str], loops: list[str], small: int, large: int, runs: int) -> int:
    """Print instructions per request of the floor, the floor plus each bridge part, and the bridge.

    Overheads are over the direct call; the last column is each row minus the floor.
    """
    from w2a_floor import PARTS

    here = REPO_ROOT / "src"
    adapters = ["floor", *(f"floor+{part}" for part in PARTS), "floor+" + "+".join(PARTS)]
    adapters.append("asgishift")
    print(f"# instructions per request under valgrind ({large} - {small} sequential requests)")
    print()
    print("| app | loop | adapter | overhead over the direct call | minus the floor's |")
    print("|---|---|---|---|---|")
    for app in apps:
        direct = per_request("direct", app, "asyncio", small, large, here, runs)
        for loop in loops:
            floor = 0.0
            for adapter in adapters:
                overhead = per_request(adapter, app, loop, small, large, here, runs) - direct
                if adapter == "floor":
                    floor = overhead
                cells = [app, loop, adapter, f"{overhead:+,.0f}", f"{overhead - floor:+,.0f}"]
                print("| " + " | ".join(cells) + " |", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks it runs")
    parser.add_argument("--baseline", help="git revision to compare with (optional)")
    parser.add_argument(
        "--direction",
        choices=["wsgi-to-asgi", "asgi-to-wsgi"],
        default="wsgi-to-asgi",
        help="WSGIToASGI vs a2wsgi's WSGIMiddleware (default), or ASGIToWSGI vs a2wsgi's "
        "ASGIMiddleware on the Starlette app of asgi_to_wsgi_bench.py (--apps is ignored)",
    )
    parser.add_argument(
        "--floor-parts",
        action="store_true",
        help="count the floor adapter (w2a_floor.py), the floor with each part of the bridge "
        "put back, with all of them, and the bridge, instead of the bridges",
    )
    parser.add_argument("--apps", default="plain,flask", help="comma-separated: plain,flask")
    parser.add_argument("--loops", default="asyncio", help="comma-separated: asyncio,uvloop")
    parser.add_argument("--small", type=int, default=100, help="requests of the short run")
    parser.add_argument("--large", type=int, default=1100, help="requests of the long run")
    parser.add_argument("--runs", type=int, default=3, help="runs of each count; the least is kept")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print a table of instructions per request and the ratios to a2wsgi."""
    args = build_parser().parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    small, large = (2, 12) if args.smoke else (args.small, args.large)
    runs = 1 if args.smoke else args.runs
    child = CHILD
    if args.direction == "asgi-to-wsgi":
        child, args.apps = A2W_CHILD, "starlette"
    here = REPO_ROOT / "src"
    if args.floor_parts:
        return floor_parts(args.apps.split(","), args.loops.split(","), small, large, runs)
    with tempfile.TemporaryDirectory(prefix="asgishift-ir-") as tmp:
        bridges: list[tuple[str, Path | None]] = [("asgishift", here)]
        if args.baseline:
            bridges.insert(0, (f"asgishift@{args.baseline}", unpack_src(args.baseline, Path(tmp))))
        bridges.append(("a2wsgi", here))
        print(f"# instructions per request under valgrind ({large} - {small} sequential requests)")
        print()
        header = ["app", "loop", "direct", *(f"{name} overhead" for name, _ in bridges)]
        header += [f"a2wsgi / {name}" for name, _ in bridges[:-1]]
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for app in args.apps.split(","):
            direct = per_request("direct", app, "asyncio", small, large, here, runs, child)
            for loop in args.loops.split(","):
                overheads = []
                for name, src in bridges:
                    kind = "a2wsgi" if name == "a2wsgi" else "asgishift"
                    count = per_request(kind, app, loop, small, large, src, runs, child)
                    overheads.append(count - direct)
                ratios = [overheads[-1] / value for value in overheads[:-1]]
                cells = [app, loop, f"{direct:,.0f}", *(f"{v:+,.0f}" for v in overheads)]
                cells += [f"{ratio:.2f}x" for ratio in ratios]
                print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
