"""Before/after: asgishift's bridge at another git revision vs this checkout, in one process.

On a shared machine, two benchmark runs minutes apart differ by more than a
change to the bridge does. This script takes ``src/asgishift`` at ``--baseline``
(``git archive``), renames the package to ``asgishift_baseline`` in a
temporary directory, and imports it beside this checkout's ``asgishift``, so
both bridges (and a2wsgi as the yardstick) run on the same loop, pinned to the
same core, timed back to back in every repeat (every other repeat in reverse
order), as ``inprocess_bench.py`` does.

Printed per app and loop: each bridge's overhead over a direct WSGI call
(µs, best of ``--repeat``), a2wsgi's overhead divided by each asgishift's (the
"x a2wsgi" figure), and after/before of that ratio: ``1.00`` means unchanged,
``0.95`` would be the redesign costing 5% against a2wsgi.

``--clock process`` times with :func:`time.process_time` (CPU seconds of this
process, all threads) instead of the wall clock: on a machine shared with
other work, waiting for a core then does not count, only the CPU the bridges
spend (the direct call and a2wsgi are timed the same way).

``--calls`` counts function calls (Python and C, every thread) per sequential
request instead of timing: an exact figure, free of the machine's noise, for
changes too small to time (the "us" columns then hold calls).

Both bridges' worker pools live in this one process, each with its threads. For
a change to how the pool wakes or keeps its threads, that mixes the two: time
each side in a process of its own as well (``benchmarks/RESULTS.md``, "Python
3.13: the pool's threads woken one per job").

Run from the repository root: ``.venv/bin/python benchmarks/ab_bridge.py --baseline main``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bench_app
from _common import markdown_table, unpack_src
from inprocess_bench import check, new_loop, time_concurrent, time_direct, time_sequential

BASELINE = "asgishift_baseline"


def import_baseline(revision: str, into: Path) -> Any:
    """Import ``asgishift.bridge`` of git ``revision`` as ``asgishift_baseline.bridge``.

    :raise subprocess.CalledProcessError: if git cannot archive ``revision``.
    """
    src = unpack_src(revision, into) / "asgishift"
    target = into / BASELINE
    src.rename(target)
    pattern = re.compile(r"\basgishift(?=[.\s])")
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(pattern.sub(BASELINE, text), encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module(f"{BASELINE}.bridge")


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description="asgishift's bridge at a git revision vs this checkout, same process.",
    )
    parser.add_argument("--baseline", default="main", help="git revision (default: main)")
    parser.add_argument("--smoke", action="store_true", help="50 iterations, one repeat")
    parser.add_argument("--apps", default="plain,flask", help="comma-separated: plain,flask")
    parser.add_argument("--loops", default="asyncio,uvloop", help="comma-separated loops")
    parser.add_argument("--iterations", type=int, default=2000, help="requests per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings; the best is kept")
    parser.add_argument("--batch", type=int, default=50, help="requests at once (concurrent)")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to; -1: unpinned")
    parser.add_argument("--clock", choices=["wall", "process"], default="wall",
                        help="wall clock, or CPU time of the process (default: wall)")  # fmt: skip
    parser.add_argument("--calls", action="store_true",
                        help="instead of timing, count function calls per request "
                             "(all threads, sequential; exact, so free of noise)")  # fmt: skip
    return parser


class CallCounter:
    """Count profiler "call"/"c_call" events on every thread (see :func:`count_calls`)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            self.calls += 1


def count_calls(counter: CallCounter, run: Callable[[], object]) -> int:
    """Return the calls ``run`` makes on this thread plus those any worker makes meanwhile.

    Worker threads carry the counter from their start (:func:`threading.setprofile`
    before the first request); only the bridge being measured has busy workers.
    """
    before = counter.calls
    sys.setprofile(counter)
    try:
        run()
    finally:
        sys.setprofile(None)
    return counter.calls - before


def timed(clock: str, work: Callable[[], float]) -> float:
    """Run ``work`` (which returns its own wall-clock seconds); return wall or CPU seconds."""
    if clock == "wall":
        return work()
    start = time.process_time()
    work()
    return time.process_time() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Print the before/after table; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat = 50, 1
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity") and args.cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {args.cpu})
    from asgishift.bridge import WSGIToASGI

    rows: list[list[str]] = []
    n = args.iterations
    counter = CallCounter()
    if args.calls:
        threading.setprofile(counter)  # before any bridge starts a worker thread
    with tempfile.TemporaryDirectory(prefix="asgishift-ab-") as tmp:
        baseline = import_baseline(args.baseline, Path(tmp))
        for app_name in [a for a in args.apps.split(",") if a]:
            wsgi_app = bench_app.make_flask_app() if app_name == "flask" else bench_app.plain_app
            for kind in [k for k in args.loops.split(",") if k]:
                loop = new_loop(kind)
                asyncio.set_event_loop(loop)
                bridges = {
                    "before": baseline.WSGIToASGI(wsgi_app),
                    "after": WSGIToASGI(wsgi_app),
                    "a2wsgi": bench_app.wrap(wsgi_app, "a2wsgi", None),
                }
                for label, asgi_app in bridges.items():
                    check(asgi_app, loop, label)
                if args.calls:
                    per = {}
                    for label, app in bridges.items():
                        run = functools.partial(time_sequential, app, n)
                        total = count_calls(
                            counter, lambda c=run, lp=loop: lp.run_until_complete(c())
                        )
                        per[label] = total / n
                    rows.append([app_name, kind, "calls/request", f"{per['before']:.1f}",
                                 f"{per['after']:.1f}", f"{per['a2wsgi']:.1f}", "-", "-",
                                 f"{per['after'] / per['before']:.2f}"])  # fmt: skip
                    loop.close()
                    asyncio.set_event_loop(None)
                    continue
                direct: list[float] = []
                seq: dict[str, list[float]] = {label: [] for label in bridges}
                conc: dict[str, list[float]] = {label: [] for label in bridges}
                clock = args.clock
                for turn in range(args.repeat):
                    gc.collect()
                    direct.append(timed(clock, functools.partial(time_direct, wsgi_app, n)))
                    # Every other repeat in reverse order, so that no bridge
                    # always runs right after another one.
                    order = list(bridges.items())
                    for label, app in order if turn % 2 == 0 else order[::-1]:
                        one = functools.partial(time_sequential, app, n)
                        many = functools.partial(time_concurrent, app, n, args.batch)
                        seq[label].append(
                            timed(clock, lambda c=one, lp=loop: lp.run_until_complete(c()))
                        )
                        conc[label].append(
                            timed(clock, lambda c=many, lp=loop: lp.run_until_complete(c()))
                        )
                loop.close()
                asyncio.set_event_loop(None)
                base = min(direct) / n * 1e6
                for mode, times in (("sequential", seq), ("concurrent", conc)):
                    over = {label: min(t) / n * 1e6 - base for label, t in times.items()}
                    vs_before = over["a2wsgi"] / over["before"]
                    vs_after = over["a2wsgi"] / over["after"]
                    rows.append([app_name, kind, mode, f"{over['before']:+.1f}",
                                 f"{over['after']:+.1f}", f"{over['a2wsgi']:+.1f}",
                                 f"{vs_before:.2f}x", f"{vs_after:.2f}x",
                                 f"{vs_after / vs_before:.2f}"])  # fmt: skip
    what = (
        "function calls per request" if args.calls else f"best of {args.repeat}, {args.clock} clock"
    )
    print(f"# before = {args.baseline}, after = this checkout; {n} requests per timing, "
          f"{what}\n")  # fmt: skip
    header = ["app", "loop", "mode", "before us", "after us", "a2wsgi us",
              "before x a2wsgi", "after x a2wsgi", "after/before"]  # fmt: skip
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
