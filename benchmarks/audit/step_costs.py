"""What each step of the workers' share of a cold audit costs, against ``ast.parse``.

In one process, with the cyclic garbage collector paused (as the workers
pause it), over every file of a tree, this times (CPU seconds, best of
``--runs``):

* ``parse all``: :func:`ast.parse` of every file, the floor's work
  (``benchmarks/audit/parse_floor.py``);
* ``scan``: the text scan of every file for the import closure
  (:func:`~asgishift.audit._closure.file_facts`) and its digest;
* ``parse closure`` and ``summarise closure``: :func:`ast.parse` of the files
  of the import closure of async code, then their summary (the AST walk and
  :func:`~asgishift.audit._records.to_plain`) from those trees;
* ``check others``: the syntax check of every other file
  (:func:`~asgishift.audit._parse.parse_file` without a summary, through
  :mod:`symtable`), and ``parse others``, :func:`ast.parse` of the same files.

and prints each with its ratio to ``parse all``. Files are read once, before
any timing.

Usage::

    python benchmarks/audit/step_costs.py --tree django-5.2.19 --runs 3
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from asgishift.audit._cache import digest
from asgishift.audit._closure import file_facts, import_closure
from asgishift.audit._discover import SourceFile, discover
from asgishift.audit._parse import parse_file
from asgishift.audit._records import to_plain
from asgishift.audit._summary import summarize


def _parse_each(sources: list[SourceFile], data: dict[str, bytes]) -> list[ast.Module]:
    trees: list[ast.Module] = []
    for source in sources:
        with contextlib.suppress(SyntaxError, ValueError):
            trees.append(ast.parse(data[source.rel]))
    return trees


def _best(runs: int, step: Callable[[], object]) -> float:
    """Return the least CPU seconds ``step`` took over ``runs`` calls."""
    times: list[float] = []
    for _ in range(runs):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Time the steps on one tree and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="source tree")
    parser.add_argument("--runs", type=int, default=3, help="runs of each step (best is kept)")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    if not tree.is_dir():
        parser.error(f"--tree {args.tree}: no such directory")
    files = discover([tree], tree).files
    data = {source.rel: Path(source.abspath).read_bytes() for source in files}
    facts = {source.rel: file_facts(source, data[source.rel]) for source in files}
    closure = import_closure(files, facts, data)
    inside = [source for source in files if source.rel in closure]
    others = [source for source in files if source.rel not in closure]
    trees = [(source, tree_) for source in inside for tree_ in _parse_each([source], data)]

    def scan() -> None:
        for source in files:
            file_facts(source, data[source.rel])
            digest(source, data[source.rel])

    def summarise() -> None:
        for source, module in trees:
            to_plain(summarize(module, source.module, source.is_package))

    def check() -> None:
        for source in others:
            parse_file(source, data[source.rel], summarise=False)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("parse all", lambda: _parse_each(files, data)),
        ("scan", scan),
        ("parse closure", lambda: _parse_each(inside, data)),
        ("summarise closure", summarise),
        ("check others", check),
        ("parse others", lambda: _parse_each(others, data)),
    ]
    print(f"{tree.name}: {len(files)} files, {len(inside)} in the import closure")
    gc.disable()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        costs = {name: _best(args.runs, step) for name, step in steps}
    gc.enable()
    for name, cost in costs.items():
        print(f"{name:>18}: {cost:.3f} s CPU = {cost / costs['parse all']:.2f}x parse all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
