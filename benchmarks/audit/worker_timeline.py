"""When do the audit's worker processes wait? A timeline of cold audit runs.

For each cold run (no cache) of :func:`asgishift.audit.engine.audit_paths` on
``--tree`` the script prints, in seconds from the start of the run:

* the main process's phases (discovery, run key, summarising, the end of the
  import closure, linking): start, end, wall time and the main
  process's CPU time;
* per worker process: batches run, when the first started and the last ended,
  busy wall time and CPU time inside batches, and every wait of more than
  ``--gap`` seconds between two of its batches, with what the next batch held
  (``{step: files}``; 0 scan, 1 parse, 2 summarise).

The workers' clocks are :func:`time.perf_counter`, the same monotonic clock
as the main process's. The script wraps the engine's functions in place, so it
measures the code on ``PYTHONPATH``; the wrappers add a few microseconds per
batch.

Usage::

    python benchmarks/audit/worker_timeline.py --tree benchmarks/_work/trees/django-5.2.19 --runs 2
"""

from __future__ import annotations

import argparse
import itertools
import marshal
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asgishift.audit import _parse, engine
from asgishift.audit._model import AuditConfig

#: (name, start, wall, main CPU) of each wrapped phase of the current run.
_PHASES: list[tuple[str, float, float, float]] = []
#: (pid, start, end, CPU, steps) of each worker batch of the current run.
_BATCHES: list[tuple[int, float, float, float, dict[int, int]]] = []
_T0 = [0.0]


def _wrap(owner: Any, name: str) -> None:
    """Replace ``owner.name`` by a wrapper recording its start, wall and CPU time."""
    inner: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        cpu = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            wall = time.perf_counter() - start
            _PHASES.append((name, start - _T0[0], wall, time.process_time() - cpu))

    setattr(owner, name, timed)


def _timed_batch(packed: Any) -> bytes:
    """Worker entry point around the engine's: its result plus when and how long it ran.

    ``packed`` is a marshalled list of task tuples (step last), or, in older
    engines, a list of ``Task`` objects.
    """
    start = time.perf_counter()
    cpu = time.process_time()
    out = _REAL_BATCH(packed)
    steps: dict[int, int] = {}
    tasks = marshal.loads(packed) if isinstance(packed, bytes) else packed
    for task in tasks:
        step = int(task.step) if hasattr(task, "step") else task[-1]
        steps[step] = steps.get(step, 0) + 1
    stamp = (os.getpid(), start, time.perf_counter(), time.process_time() - cpu, steps)
    return marshal.dumps((b"timeline", stamp, out))


def _loads(data: bytes) -> Any:
    """Main-process side of :func:`_timed_batch`: record the stamp, return the result."""
    value = marshal.loads(data)
    if isinstance(value, tuple) and len(value) == 3 and value[0] == b"timeline":
        pid, start, end, cpu, steps = value[1]
        _BATCHES.append((pid, start - _T0[0], end - _T0[0], cpu, steps))
        return marshal.loads(value[2])
    return value


_REAL_BATCH = _parse._run_batch


class _Marshal:
    """Stands in for :mod:`marshal` inside ``_parse`` (only ``loads`` differs)."""

    dumps = staticmethod(marshal.dumps)
    loads = staticmethod(_loads)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    """Run cold audits of ``--tree`` and print the timeline of each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="source tree to audit")
    parser.add_argument("--runs", type=int, default=2, help="cold runs")
    parser.add_argument("--jobs", type=int, default=0, help="processes (0: one per CPU)")
    parser.add_argument("--gap", type=float, default=0.02, help="report waits longer than this")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    jobs = args.jobs or os.cpu_count() or 1
    # Names of this engine and of older ones (before the scheduling moved out).
    for name in ("discover", "run_key", "_run_key", "summarise", "_summarise", "link"):
        if hasattr(engine, name):
            _wrap(engine, name)
    if hasattr(engine, "import_closure"):
        _wrap(engine, "import_closure")
    closure = getattr(sys.modules.get("asgishift.audit._closure"), "Closure", None)
    if closure is not None:
        _wrap(closure, "finish")  # the end of the import closure
    _parse._run_batch = _timed_batch  # type: ignore[assignment]
    _parse.marshal = _Marshal  # type: ignore[assignment]
    for _ in range(args.runs):
        _PHASES.clear()
        _BATCHES.clear()
        _T0[0] = time.perf_counter()
        cpu = time.process_time()
        kids = _children_cpu()
        result = engine.audit_paths(
            [tree], root=tree, config=AuditConfig(cache_dir=None, jobs=jobs)
        )
        wall = time.perf_counter() - _T0[0]
        print(
            f"== wall {wall:.3f} s, main CPU {time.process_time() - cpu:.3f} s, workers' CPU "
            f"{_children_cpu() - kids:.3f} s, {len(result.findings)} findings"
        )
        for name, start, took, used in sorted(_PHASES, key=lambda p: p[1]):
            print(
                f"  {name:10} start {start:6.3f} end {start + took:6.3f} wall {took:6.3f} "
                f"main CPU {used:6.3f}"
            )
        for pid in sorted({b[0] for b in _BATCHES}):
            mine = sorted(b for b in _BATCHES if b[0] == pid)
            busy = sum(b[2] - b[1] for b in mine)
            used = sum(b[3] for b in mine)
            print(
                f"  worker {pid}: {len(mine)} batches, first {mine[0][1]:.3f}, last end "
                f"{mine[-1][2]:.3f}, busy {busy:.3f}, CPU {used:.3f}"
            )
            for before, after in itertools.pairwise(mine):
                if after[1] - before[2] > args.gap:
                    print(
                        f"     waits {before[2]:.3f} -> {after[1]:.3f} "
                        f"({after[1] - before[2]:.3f} s), then {after[4]}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
