"""The parse floor: how fast can any ``ast``-based auditor possibly go on a tree?

The floor is the wall time to read and :func:`ast.parse` every Python file the
audit would read, on the same number of worker processes, with the cyclic
garbage collector paused (as the audit pauses it). An auditor built on
Python's ``ast`` cannot be faster than that on a cold run, so the audit's
speed is reported as a ratio to it, measured in the same run: on a shared
machine absolute times drift, ratios taken minutes apart do not mean much.

The script measures, alternating, ``--runs`` times each:

* ``floor``: read + parse in a fresh process pool (pool start-up included,
  the audit pays it too);
* ``cold``: :func:`asgishift.audit.engine.audit_paths` with an empty cache
  directory (default mode: every file parsed);
* ``reachable``: the same with ``whole_project=False`` (``--reachable-only``);
* ``warm``: the same with the cache that the cold run filled (an unchanged
  tree: the last run's findings are reused);
* ``warm-summaries``: the same after deleting the last run's findings, so
  every cached summary is loaded and linked again (the warm path after a
  change to any file).

and prints the best wall time of each with its ratio to the best floor, and
the CPU time (this process plus its worker processes) with its ratio to the
floor's: on a loaded machine the CPU ratio is the steadier of the two. The
CPU of the run that used least is also split between the worker processes and
this process (the audit's main process).

Usage::

    python benchmarks/audit/parse_floor.py --tree django-5.2.19 --runs 5
    python benchmarks/audit/parse_floor.py --tree django-5.2.19 --floor-only
    python benchmarks/audit/parse_floor.py --tree django-5.2.19 --parsers
    python benchmarks/audit/parse_floor.py --tree src --jobs 2 --profile cold
    python benchmarks/audit/parse_floor.py --tree django-5.2.19 --runs 3 --baseline OLD
    python benchmarks/audit/parse_floor.py --tree saleor --runs 4 --inner 2 --modes cold \
        --baseline OLD

``--baseline OLD`` compares two versions of the audit on a loaded machine: it
alternates invocations of this script with ``OLD`` (a copy of an older
``src/``) first on ``PYTHONPATH`` and without it, ``--runs`` times, each
invocation measuring its own floor (``--inner`` times, alternating with the
audit), and prints the best ratio of each and the ratios of every round.
``--modes cold`` measures only the cold run (next to the floor), which makes
more rounds affordable.

Get Django's source with
``pip download "django==5.2.*" --no-deps --no-binary :all:`` and unpack it;
never commit it.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from asgishift.audit._discover import discover
from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths


def _parse_chunk(paths: list[str]) -> int:
    """Worker: read and parse each file; return how many parsed."""
    gc.disable()
    ok = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            with open(path, "rb") as fh:
                data = fh.read()
            try:
                ast.parse(data)
                ok += 1
            except (SyntaxError, ValueError):
                pass
    return ok


def floor(paths: list[str], jobs: int) -> float:
    """Return the wall time (seconds) to read and parse ``paths`` on ``jobs`` processes."""
    start = time.perf_counter()
    if jobs == 1:
        _parse_chunk(paths)
        return time.perf_counter() - start
    # Largest first, many chunks: the same scheduling the audit uses.
    ordered = sorted(paths, key=os.path.getsize, reverse=True)
    size = max(8, min(48, len(ordered) // (jobs * 4) or 1))
    chunks = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        sum(pool.map(_parse_chunk, chunks))
    return time.perf_counter() - start


def _audit_timer(tree: Path, jobs: int, cache: str | None, whole: bool) -> Callable[[], float]:
    def run() -> float:
        config = AuditConfig(cache_dir=cache, jobs=jobs, whole_project=whole)
        start = time.perf_counter()
        audit_paths([tree], root=tree, config=config)
        return time.perf_counter() - start

    return run


def _forget_run(cache: str, timer: Callable[[], float]) -> Callable[[], float]:
    """Wrap ``timer`` so the run starts without the last run's findings (``*.run``).

    The audit then loads every cached summary and links again: the warm path
    after a change to any file.
    """

    def run() -> float:
        for name in os.listdir(cache):
            if name.endswith(".run"):
                os.remove(os.path.join(cache, name))
        return timer()

    return run


def _cpu() -> tuple[float, float]:
    """Return CPU seconds (user + system) of this process, and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _timed(run: Callable[[], float], cpu: list[float], workers: list[float]) -> float:
    """Run one measurement; append its CPU seconds to ``cpu``; return its wall time.

    ``workers`` gets the part of it spent by the worker processes.
    """
    own, kids = _cpu()
    wall = run()
    own_after, kids_after = _cpu()
    cpu.append(own_after - own + kids_after - kids)
    workers.append(kids_after - kids)
    return wall


def _compare_libcst(paths: list[str]) -> int:
    """Print the CPU time of ast.parse and libcst.parse_module on ``paths`` (one process).

    libcst parses syntax newer than the running Python (PEP 695 on 3.11); this
    says what parsing everything with it would cost.
    """
    import libcst

    sources = [Path(path).read_text(encoding="utf-8", errors="replace") for path in paths]
    gc.disable()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.process_time()
        for source in sources:
            with contextlib.suppress(SyntaxError):
                ast.parse(source)
        plain = time.process_time() - start
        start = time.process_time()
        for source in sources:
            with contextlib.suppress(libcst.ParserSyntaxError):
                libcst.parse_module(source)
        cst = time.process_time() - start
    gc.enable()
    print(
        f"{len(sources)} files: ast.parse {plain:.3f} s CPU, libcst.parse_module "
        f"{cst:.3f} s CPU = {cst / plain:.1f}x"
    )
    return 0


def _compare_parsers(paths: list[str]) -> int:
    """Print the CPU time of each parser that can check a file's syntax, on ``paths``.

    One process, each parser over every file, best of three: :func:`ast.parse`
    (the floor's work), :mod:`symtable` (CPython's parser without Python AST
    objects), ruff's parser the way the audit runs it
    (``asgishift.audit._syntax.SyntaxCheck``: one thread, its CPU counted as
    this process's finished children's), and tree-sitter's Python grammar
    when ``tree_sitter`` and ``tree_sitter_python`` are installed.
    """
    import symtable

    from asgishift.audit._syntax import SyntaxCheck, ruff_binary

    sources = [(Path(path).read_bytes(), path) for path in paths]

    def cpython(check: Callable[[bytes, str], object]) -> Callable[[], int]:
        def run() -> int:
            rejected = 0
            for data, path in sources:
                try:
                    check(data, path)
                except (SyntaxError, ValueError):
                    rejected += 1
            return rejected

        return run

    parsers: dict[str, Callable[[], int]] = {
        "ast.parse": cpython(lambda data, path: ast.parse(data, path)),
        "symtable": cpython(lambda data, path: symtable.symtable(data, path, "exec")),  # type: ignore[arg-type]
    }
    binary = ruff_binary()
    if binary is not None:

        def ruff() -> int:
            rejected = SyntaxCheck(binary, paths).rejected()
            return -1 if rejected is None else len(rejected)

        parsers["ruff (the audit's syntax check)"] = ruff
    try:
        import tree_sitter
        import tree_sitter_python
    except ImportError:
        pass
    else:
        grammar = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))

        def tree_sitter_check() -> int:
            return sum(grammar.parse(data).root_node.has_error for data, _ in sources)

        parsers["tree-sitter-python"] = tree_sitter_check
    gc.disable()
    results: dict[str, tuple[float, int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            for name, run in parsers.items():
                before = sum(_cpu())
                rejected = run()
                spent = sum(_cpu()) - before
                best = results.get(name)
                if best is None or spent < best[0]:
                    results[name] = (spent, rejected)
    gc.enable()
    base = results["ast.parse"][0]
    for name, (spent, rejected) in results.items():
        print(f"{name:>32}: {spent:.3f} s CPU = {spent / base:.2f}x ast.parse, {rejected} rejected")
    return 0


_LINE_RE = re.compile(
    r"^\s*([\w-]+): best [\d.]+ s = ([\d.]+)x floor .*CPU [\d.]+ s = ([\d.]+)x floor CPU"
)


#: The measurements besides the floor, in the order each round runs them.
MODES = ("cold", "warm", "warm-summaries", "reachable")


def _compare(
    tree: Path, runs: int, jobs: int, baseline: Path, inner: int, modes: Sequence[str]
) -> int:
    """Alternate old (``baseline`` on ``PYTHONPATH``) and new code; print the best ratios."""
    best: dict[tuple[str, str], tuple[float, float]] = {}
    rounds: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in range(runs):
        for label in ("before", "after"):
            env = dict(os.environ)
            if label == "before":
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(baseline.resolve()), env.get("PYTHONPATH")) if p
                )
            command = [sys.executable, __file__, "--tree", str(tree), "--runs", str(inner)]
            command += ["--jobs", str(jobs), "--modes", ",".join(modes)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            print(f"-- {label}, round {run + 1}\n{out.stdout.rstrip()}", flush=True)
            for line in out.stdout.splitlines():
                match = _LINE_RE.match(line)
                if match:
                    name, wall, cpu = match.group(1), float(match.group(2)), float(match.group(3))
                    rounds.setdefault((label, name), []).append((wall, cpu))
                    old_wall, old_cpu = best.get((label, name), (wall, cpu))
                    best[label, name] = (min(wall, old_wall), min(cpu, old_cpu))
    print("ratios to the floor of each round (wall / CPU):")
    for name in modes:
        for label in ("before", "after"):
            each = "  ".join(f"{w:.2f}/{c:.2f}" for w, c in rounds.get((label, name), []))
            print(f"{name:>14} {label:>6}: {each}")
    print("best ratios to the floor (wall / CPU):")
    for name in modes:
        cells = {label: best.get((label, name)) for label in ("before", "after")}
        shown = "   ".join(
            f"{label} {c[0]:.2f}x / {c[1]:.2f}x" if c else f"{label} -"
            for label, c in cells.items()
        )
        print(f"{name:>14}: {shown}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the floor and the audit on one tree; print best times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="source tree to audit")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--jobs", type=int, default=0, help="processes (0: one per CPU)")
    parser.add_argument("--floor-only", action="store_true", help="measure the floor only")
    parser.add_argument(
        "--libcst",
        type=int,
        metavar="N",
        help="instead, compare libcst.parse_module with ast.parse (CPU time) on N files",
    )
    parser.add_argument(
        "--parsers",
        action="store_true",
        help="instead, compare the CPU time of the parsers that can check syntax (ast.parse, "
        "symtable, ruff, tree-sitter when installed) on every file",
    )
    parser.add_argument(
        "--profile", choices=("cold", "warm", "reachable"), help="cProfile one audit run instead"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="OLD",
        help="instead, alternate runs of the code in OLD (a copy of src/) and of this checkout",
    )
    parser.add_argument(
        "--inner", type=int, default=1, help="with --baseline: runs within each invocation"
    )
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated measurements besides the floor (default: {','.join(MODES)})",
    )
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    if not tree.is_dir():
        parser.error(f"--tree {args.tree}: no such directory (fetch it first, see --help)")
    jobs = args.jobs or os.cpu_count() or 1
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown --modes: {', '.join(sorted(unknown))}")
    if "cold" not in modes and {"warm", "warm-summaries"} & set(modes):
        parser.error("--modes: warm runs reuse the cache the cold run fills; add cold")
    if args.baseline:
        return _compare(tree, args.runs, jobs, args.baseline, args.inner, modes)
    found = discover([tree], tree, exclude=[], respect_gitignore=True)
    paths = [f.abspath for f in found.files]
    print(f"{tree.name}: {len(paths)} files, {jobs} processes")
    if args.libcst:
        return _compare_libcst(paths[: args.libcst])
    if args.parsers:
        return _compare_parsers(paths)
    cache_root = tempfile.mkdtemp(prefix="asgishift-floor-")
    try:
        if args.profile:
            import cProfile
            import pstats

            cache = os.path.join(cache_root, "p")
            if args.profile == "warm":
                _audit_timer(tree, jobs, cache, True)()
            timer = _audit_timer(
                tree, jobs, None if args.profile != "warm" else cache, args.profile != "reachable"
            )
            profiler = cProfile.Profile()
            profiler.runcall(timer)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            return 0
        names = ("floor", "cold", "reachable", "warm", "warm-summaries")
        times: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        workers: dict[str, list[float]] = {name: [] for name in names}
        for run in range(args.runs):
            times["floor"].append(
                _timed(lambda: floor(paths, jobs), cpu["floor"], workers["floor"])
            )
            if args.floor_only:
                continue
            cache = os.path.join(cache_root, str(run))
            for name, timer in (
                ("cold", _audit_timer(tree, jobs, cache, True)),
                ("warm", _audit_timer(tree, jobs, cache, True)),
                ("warm-summaries", _forget_run(cache, _audit_timer(tree, jobs, cache, True))),
                ("reachable", _audit_timer(tree, jobs, None, False)),
            ):
                if name in modes:
                    times[name].append(_timed(timer, cpu[name], workers[name]))
        best_floor = min(times["floor"])
        best_floor_cpu = min(cpu["floor"])
        for name, values in times.items():
            if not values:
                continue
            best = min(values)
            shown = ", ".join(f"{v:.3f}" for v in values)
            used = min(cpu[name])
            # The run of least CPU, split between this process and the workers.
            least = cpu[name].index(used)
            print(
                f"{name:>10}: best {best:.3f} s = {best / best_floor:.2f}x floor  ({shown}); "
                f"CPU {used:.2f} s = {used / best_floor_cpu:.2f}x floor CPU (workers "
                f"{workers[name][least]:.2f} s, this process {used - workers[name][least]:.2f} s)"
            )
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
