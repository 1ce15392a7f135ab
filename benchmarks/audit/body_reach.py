"""How many of the function bodies the audit walks does its linker ever read?

The per-file pass (:mod:`asgishift.audit._walk_body`) walks the body of every
function of every file in the import closure of async code; the linker
(:mod:`asgishift.audit._link`) decodes a body only when it reaches the
function from async code, or when a whole-project check (``ASH402``: a
coroutine called and its result dropped) looks at the function's discarded
calls. This script answers two questions on one tree, for issue 11's idea of
walking only the bodies that can matter:

1. **Counts** (one cold, default-mode run, no cache): functions summarised,
   ``async`` ones, bodies read through :meth:`Graph.body` (reached from async
   code), functions whose discarded calls the ``ASH402`` check read through
   :meth:`Graph.discarded`, and the files holding them.
2. **Ceiling** (``--ceiling``): the cold run's CPU and wall time against the
   parse floor (:func:`parse_floor.floor`), next to the same run with the body
   walk of every non-``async`` function the linker did *not* read in step 1
   skipped (an oracle: it knows the answer of the link before walking). Its
   findings are wrong by design (nested functions, generators, ``self.x``
   members of skipped bodies are missing); it measures the most a lazy body
   walk could save, before paying for whatever decides which bodies to walk.
   Each round runs ``floor``, then ``cold`` and ``cold-oracle`` (in the other
   order every second round), in one process; the worker pool of each run is
   forked after the oracle is switched on or off.
3. **Walk cost** (``--walk-cost``, one process): CPU time of the summary walk
   (:func:`asgishift.audit._summary.summarize`) of every file of the tree
   against a bare :func:`ast.walk` visiting every node of the same trees, and
   against reading and parsing them: what any per-body look at the syntax
   (to decide which bodies may be skipped) would cost next to the walk itself;
   and of the same walk without the rule families' hooks and without keeping
   call sites and hazards (:class:`_Bare`): roughly what a walk producing only
   the facts the linker needs for every function would still cost.

Usage::

    python benchmarks/audit/body_reach.py --tree django-5.2.19
    python benchmarks/audit/body_reach.py --tree django-5.2.19 --ceiling --runs 3
    python benchmarks/audit/body_reach.py --tree django-5.2.19 --walk-cost --runs 3
    python benchmarks/audit/body_reach.py --tree django-5.2.19 --profile-walk
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from asgishift.audit import _link
from asgishift.audit._discover import SourceFile, discover
from asgishift.audit._model import AuditConfig
from asgishift.audit._scope import Hooks
from asgishift.audit._summary import summarize
from asgishift.audit._walk_body import Walker
from asgishift.audit.engine import audit_paths

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parse_floor import _timed, floor

#: Qualified names whose bodies the oracle run walks (``None``: walk every body).
_keep: frozenset[str] | None = None
_walk_stmt = Walker.stmt


def _oracle_stmt(self: Walker, node: object) -> None:
    """:meth:`Walker.stmt`, skipping the statements of bodies outside :data:`_keep`."""
    scope = self.scope
    if (
        _keep is not None
        and scope is not None
        and not scope.is_async
        and scope.qualname not in _keep
    ):
        return
    _walk_stmt(self, node)  # type: ignore[arg-type]


def record(tree: Path, jobs: int) -> tuple[dict[str, int], frozenset[str]]:
    """Run one cold audit and return its counts and the functions whose bodies were read."""
    bodies: set[str] = set()
    discarded: set[str] = set()
    graphs: list[_link.Graph] = []
    body, drop, init = _link.Graph.body, _link.Graph.discarded, _link.Graph.__init__

    def read_body(self: _link.Graph, qual: str) -> _link.Body:  # type: ignore[name-defined]
        bodies.add(qual)
        return body(self, qual)

    def read_discarded(self: _link.Graph, qual: str, names: frozenset[str]) -> list[object]:
        discarded.add(qual)
        return drop(self, qual, names)  # type: ignore[return-value]

    def keep(self: _link.Graph, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        graphs.append(self)

    _link.Graph.body, _link.Graph.discarded = read_body, read_discarded  # type: ignore[method-assign,assignment]
    _link.Graph.__init__ = keep  # type: ignore[method-assign,assignment]
    try:
        audit_paths([tree], root=tree, config=AuditConfig(cache_dir=None, jobs=jobs))
    finally:
        _link.Graph.body, _link.Graph.discarded, _link.Graph.__init__ = body, drop, init  # type: ignore[method-assign]
    graph = graphs[-1]
    either = bodies | discarded
    counts = {
        "files summarised": len(graph.summaries),
        "functions summarised": len(graph.funcs),
        "async functions": sum(1 for func, _ in graph.funcs.values() if func.is_async),
        "bodies read (reached)": len(bodies),
        "discarded calls read (ASH402)": len(discarded),
        "functions read either way": len(either),
        "files with a function read": len({graph.funcs[q][1] for q in either}),
        "files with a body reached": len({graph.funcs[q][1] for q in bodies}),
    }
    # ``qual@path`` keys (two files, one module name) walk under the plain name.
    return counts, frozenset(q.split("@", 1)[0] for q in either)


def _cold(tree: Path, jobs: int, keep: frozenset[str] | None) -> Callable[[], float]:
    def run() -> float:
        global _keep
        _keep = keep
        start = time.perf_counter()
        try:
            audit_paths([tree], root=tree, config=AuditConfig(cache_dir=None, jobs=jobs))
        finally:
            _keep = None
        return time.perf_counter() - start

    return run


class _Bare(Walker):
    """The walker with its call-site and hazard records dropped (timing only)."""

    def _append_call(self, target: object, node: ast.Call) -> None:
        return

    def hazard(self, *args: object, **kwargs: object) -> None:
        return


def _parse_all(tree: Path) -> tuple[list[SourceFile], list[tuple[ast.Module, str, bool]]]:
    """Return the tree's files and the AST, module name and package flag of each that parses."""
    files = discover([tree], tree, exclude=[], respect_gitignore=True).files
    parsed: list[tuple[ast.Module, str, bool]] = []
    for source in files:
        with open(source.abspath, "rb") as fh:
            data = fh.read()
        try:
            parsed.append((ast.parse(data), source.module, source.is_package))
        except (SyntaxError, ValueError):
            continue
    return files, parsed


def profile_walk(tree: Path) -> None:
    """cProfile the summary walk of every file (parsed first); print the top by own time."""
    import cProfile
    import pstats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = _parse_all(tree)[1]
        profiler = cProfile.Profile()
        profiler.enable()
        for module_tree, module, is_package in parsed:
            summarize(module_tree, module, is_package)
        profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def walk_cost(tree: Path, runs: int) -> None:
    """Print, per round, the CPU seconds of summarising, ``ast.walk`` and read + parse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files, parsed = _parse_all(tree)
        gc.disable()
        try:
            for run in range(runs):
                start = time.process_time()
                for module_tree, module, is_package in parsed:
                    summarize(module_tree, module, is_package)
                walk = time.process_time() - start
                start = time.process_time()
                for module_tree, module, is_package in parsed:
                    _Bare(module, is_package, Hooks()).run(module_tree)
                bare = time.process_time() - start
                start = time.process_time()
                nodes = sum(1 for module_tree, _, _ in parsed for _ in ast.walk(module_tree))
                visit = time.process_time() - start
                start = time.process_time()
                for source in files:
                    with (
                        open(source.abspath, "rb") as fh,
                        contextlib.suppress(SyntaxError, ValueError),
                    ):
                        ast.parse(fh.read())
                parse = time.process_time() - start
                print(
                    f"round {run + 1}: {len(parsed)} files, {nodes} nodes: summarize {walk:.2f} s, "
                    f"without hooks and records {bare:.2f} s, ast.walk {visit:.2f} s, "
                    f"read + parse {parse:.2f} s CPU"
                )
        finally:
            gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the counts, and with ``--ceiling`` the per-round ratios to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="source tree to audit")
    parser.add_argument("--jobs", type=int, default=0, help="processes (0: one per CPU)")
    parser.add_argument("--ceiling", action="store_true", help="also time the oracle run")
    parser.add_argument("--walk-cost", action="store_true", help="time the walk, not the audit")
    parser.add_argument("--profile-walk", action="store_true", help="cProfile the walk instead")
    parser.add_argument("--runs", type=int, default=3, help="rounds of --ceiling / --walk-cost")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    jobs = args.jobs or os.cpu_count() or 1
    if args.profile_walk:
        profile_walk(tree)
        return 0
    if args.walk_cost:
        walk_cost(tree, args.runs)
        return 0
    counts, keep = record(tree, jobs)
    for name, value in counts.items():
        print(f"{name:>30}: {value}")
    if not args.ceiling:
        return 0
    Walker.stmt = _oracle_stmt  # type: ignore[method-assign,assignment]
    paths = [f.abspath for f in discover([tree], tree, exclude=[], respect_gitignore=True).files]
    names = ("floor", "cold", "cold-oracle")
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for run in range(args.runs):
        walls["floor"].append(_timed(lambda: floor(paths, jobs), cpus["floor"]))
        # Odd rounds run the oracle first: neither run always follows the floor.
        for name in names[1:] if run % 2 == 0 else names[:0:-1]:
            timer = _cold(tree, jobs, keep if name == "cold-oracle" else None)
            walls[name].append(_timed(timer, cpus[name]))
    print(f"{tree.name}: {len(paths)} files, {jobs} processes; ratio to the round's floor")
    for name in names[1:]:
        each = "  ".join(
            f"{w / fw:.2f}/{c / fc:.2f}"
            for w, c, fw, fc in zip(
                walls[name], cpus[name], walls["floor"], cpus["floor"], strict=True
            )
        )
        print(f"{name:>12} (wall/CPU): {each}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
