"""Compare the audit's summary walk of two source trees by work done, not by time.

On a shared machine the wall and CPU times of the walk scatter by a third from
round to round, more than most changes to the walker; two counts do not:

* ``--calls OLD``: the Python function calls of the summary walk of every
  parseable file of the tree (cProfile), per function, for the ``src/`` copy
  in ``OLD`` and for this checkout, and the functions whose counts differ most;
* ``--walk-only``: parse the files under ``--under`` and walk them ``--reps``
  times, nothing else, so that an instruction counter run around it measures
  the walk: the difference between ``--reps 1`` and ``--reps 0`` is one walk::

    PYTHONHASHSEED=0 PYTHONPATH=SRC valgrind --tool=callgrind \\
        --callgrind-out-file=/dev/null python benchmarks/audit/walk_ab.py \\
        --tree django-5.2.19 --walk-only --under django/db --reps 1

Usage::

    python benchmarks/audit/walk_ab.py --tree django-5.2.19 --calls /tmp/old/src
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SRC = _HERE.parent.parent / "src"


def _parsed(tree: Path, under: str) -> list[tuple[ast.Module, str, bool]]:
    """Return the AST, module name and package flag of each parseable file under ``under``."""
    from asgishift.audit._discover import discover

    files = discover([tree], tree, exclude=[], respect_gitignore=True).files
    out: list[tuple[ast.Module, str, bool]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in files:
            if not source.rel.startswith(under):
                continue
            with open(source.abspath, "rb") as fh:
                data = fh.read()
            try:
                out.append((ast.parse(data), source.module, source.is_package))
            except (SyntaxError, ValueError):
                continue
    return out


def walk_only(tree: Path, under: str, reps: int) -> None:
    """Parse the files under ``under`` and summarise them ``reps`` times."""
    from asgishift.audit._summary import summarize

    parsed = _parsed(tree, under)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(reps):
            for module_tree, module, is_package in parsed:
                summarize(module_tree, module, is_package)
    print(f"{len(parsed)} files walked {reps} times")


def count_calls(tree: Path) -> None:
    """Print, as JSON, the number of calls of each function during one walk of every file."""
    from asgishift.audit._summary import summarize

    parsed = _parsed(tree, "")
    profiler = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profiler.enable()
        for module_tree, module, is_package in parsed:
            summarize(module_tree, module, is_package)
        profiler.disable()
    counts: dict[str, int] = {}
    for entry in profiler.getstats():
        code = entry.code
        if isinstance(code, str):
            name = re.sub(r" at 0x[0-9a-f]+", "", code)
        else:
            path = code.co_filename
            name = f"{path.rpartition('/src/')[2] or path}:{code.co_name}"
        counts[name] = counts.get(name, 0) + entry.callcount
    print(json.dumps(counts))


def _counts_of(tree: Path, src: Path) -> dict[str, int]:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, __file__, "--tree", str(tree), "--count"]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    counts: dict[str, int] = json.loads(out)
    return counts


def compare_calls(tree: Path, old: Path, new: Path, top: int) -> None:
    """Print total calls of ``old`` and ``new`` (``src/`` copies) and the largest differences."""
    before = _counts_of(tree, old)
    after = _counts_of(tree, new)
    print(f"calls: before {sum(before.values()):,}  after {sum(after.values()):,}")
    names = sorted(set(before) | set(after), key=lambda n: -abs(after.get(n, 0) - before.get(n, 0)))
    for name in names[:top]:
        b, a = before.get(name, 0), after.get(name, 0)
        print(f"{b:>10,} {a:>10,} {a - b:>+10,}  {name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", required=True, help="source tree to walk")
    parser.add_argument("--calls", metavar="OLD", help="compare call counts with src/ copy OLD")
    parser.add_argument("--new", default=str(_SRC), help="with --calls: the other src/ copy")
    parser.add_argument("--top", type=int, default=25, help="rows of --calls")
    parser.add_argument("--walk-only", action="store_true", help="only parse and walk")
    parser.add_argument("--under", default="", help="with --walk-only: relative path prefix")
    parser.add_argument("--reps", type=int, default=1, help="with --walk-only: walks")
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tree = Path(args.tree).resolve()
    if args.count:
        count_calls(tree)
    elif args.walk_only:
        walk_only(tree, args.under, args.reps)
    elif args.calls:
        compare_calls(tree, Path(args.calls).resolve(), Path(args.new).resolve(), args.top)
    else:
        parser.error("give --calls OLD or --walk-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
