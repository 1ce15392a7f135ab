"""Benchmark ``asgishift audit`` against ruff's ASYNC rules and flake8-async.

Runs, on the same source tree (by default Django 5.2's sdist, about 2,800
Python files):

* asgishift's engine cold (empty cache) and warm (cache filled), call chains on;
* ``ruff check --select ASYNC --no-cache``;
* ``python -m flake8_async --enable ASYNC2`` (standalone flake8-async), on a
  subset of files by default because it takes minutes on the whole tree, with
  a timeout; its full-tree time is extrapolated from the subset.

Every tool runs as a fresh process (interpreter start-up included) and the
wall time of each run is measured; the table shows the best and the median.
The machine may be shared, so run it a few times and read the best column.

Usage::

    python benchmarks/audit/bench_audit.py                      # fetches Django 5.2
    python benchmarks/audit/bench_audit.py --tree /path/to/src --runs 5
    python benchmarks/audit/bench_audit.py --flake8-async-subset 0   # whole tree
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ENGINE_SNIPPET = """
import sys
from pathlib import Path
from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths
root = Path(sys.argv[1])
cache = sys.argv[2] if sys.argv[2] != "-" else None
config = AuditConfig(
    cache_dir=cache, jobs=int(sys.argv[3]), follow_chains=True, whole_project=sys.argv[4] == "1"
)
result = audit_paths([root], root=root, config=config)
print(len(result.findings), result.files_scanned, len(result.errors))
"""


@dataclass
class Row:
    """One line of the results table."""

    tool: str
    files: int
    times: list[float]
    findings: str
    command: str

    def cells(self) -> list[str]:
        """Return the table cells: tool, files, best, median, runs, findings."""
        if not self.times:
            return [self.tool, str(self.files), "-", "-", "0", self.findings]
        best = f"{min(self.times):.2f} s"
        median = f"{statistics.median(self.times):.2f} s"
        return [self.tool, str(self.files), best, median, str(len(self.times)), self.findings]


def fetch_django(workdir: Path) -> Path:
    """Download and unpack the Django 5.2 sdist with pip; return the tree."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "django==5.2.*",
            "-d",
            str(workdir),
            "-q",
        ],
        check=True,
    )
    [archive] = sorted(workdir.glob("[Dd]jango-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    [tree] = [p for p in workdir.iterdir() if p.is_dir() and p.name.lower().startswith("django-")]
    return tree


def python_files(tree: Path) -> list[Path]:
    """Return the tree's Python files in a stable order."""
    return sorted(p for p in tree.rglob("*.py") if p.is_file())


def timed(cmd: Sequence[str], timeout: float | None = None) -> tuple[float, str, bool]:
    """Run ``cmd``; return ``(wall seconds, stdout, finished before the timeout)``."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, "", False
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout, True


def bench_asgishift(tree: Path, runs: int, jobs: int, scratch: Path) -> list[Row]:
    """Time the engine cold (fresh cache each run) and warm (cache kept).

    Also times a cold run with ``whole_project=True`` (every file parsed,
    not only the import closure of async code).
    """
    cold: list[float] = []
    warm: list[float] = []
    whole: list[float] = []
    out = ""
    for i in range(runs):
        cache = scratch / f"cache-{i}"
        cmd = [sys.executable, "-c", ENGINE_SNIPPET, str(tree), str(cache), str(jobs), "0"]
        elapsed, out, _ = timed(cmd)
        cold.append(elapsed)
        elapsed, out, _ = timed(cmd)
        warm.append(elapsed)
        shutil.rmtree(cache, ignore_errors=True)
        whole_cmd = [*cmd[:-1], "1"]
        elapsed, whole_out, _ = timed(whole_cmd)
        whole.append(elapsed)
        shutil.rmtree(cache, ignore_errors=True)
    findings, files, _ = out.split()
    whole_findings = whole_out.split()[0]
    shown = "python -c '<audit_paths(...)>' TREE CACHE_DIR JOBS WHOLE"
    return [
        Row("asgishift audit (cold)", int(files), cold, findings, shown + "  # empty cache"),
        Row("asgishift audit (warm)", int(files), warm, findings, shown + "  # cache filled"),
        Row(
            "asgishift audit (cold, whole_project)",
            int(files),
            whole,
            whole_findings,
            shown + "  # empty cache, every file parsed",
        ),
    ]


def bench_ruff(tree: Path, runs: int, nfiles: int) -> Row:
    """Time ``ruff check --select ASYNC --no-cache`` on the tree."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    cmd = [ruff, "check", "--select", "ASYNC", "--no-cache", "--output-format", "concise"]
    times: list[float] = []
    out = ""
    for _ in range(runs):
        elapsed, out, _ = timed([*cmd, str(tree)])
        times.append(elapsed)
    findings = sum(1 for line in out.splitlines() if ": ASYNC" in line)
    return Row("ruff --select ASYNC", nfiles, times, str(findings), " ".join(cmd[1:]) + " TREE")


def bench_flake8_async(files: list[Path], subset: int, timeout: float, total: int) -> Row:
    """Time flake8-async's ASYNC2xx checks on ``subset`` files (0: all)."""
    chosen = files if subset <= 0 else files[:: max(1, len(files) // subset)][:subset]
    cmd = [sys.executable, "-m", "flake8_async", "--enable", "ASYNC2"]
    elapsed, out, finished = timed([*cmd, *map(str, chosen)], timeout=timeout)
    note = ""
    if not finished:
        note = f" (timed out after {timeout:.0f} s)"
    elif len(chosen) < total:
        note = f" (~{elapsed * total / len(chosen):.0f} s extrapolated to {total} files)"
    findings = sum(1 for line in out.splitlines() if ": ASYNC" in line)
    label = f"flake8-async --enable ASYNC2{note}"
    shown = " ".join(cmd[1:]) + (" FILES(subset)" if len(chosen) < total else " FILES")
    return Row(label, len(chosen), [elapsed] if finished else [], str(findings), shown)


def render(rows: list[Row]) -> str:
    """Return the results as a Markdown table."""
    head = ["tool", "files", "best", "median", "runs", "findings"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines.append("")
    lines += [f"- `{row.tool}`: `{row.command}`" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="source tree (default: fetch Django 5.2)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (default 3)")
    parser.add_argument("--jobs", type=int, default=0, help="asgishift worker processes")
    parser.add_argument(
        "--flake8-async-subset",
        type=int,
        default=300,
        help="files given to flake8-async (default 300; 0 = the whole tree)",
    )
    parser.add_argument(
        "--flake8-async-timeout",
        type=float,
        default=300.0,
        help="seconds before flake8-async is given up (default 300)",
    )
    parser.add_argument("--skip-flake8-async", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="asgishift-bench-audit-") as tmp:
        scratch = Path(tmp)
        tree = args.tree or fetch_django(scratch / "src")
        files = python_files(tree)
        print(f"tree: {tree} ({len(files)} Python files), cpus: {os.cpu_count()}", flush=True)
        rows = bench_asgishift(tree, args.runs, args.jobs, scratch)
        rows.append(bench_ruff(tree, args.runs, len(files)))
        if not args.skip_flake8_async:
            rows.append(
                bench_flake8_async(
                    files, args.flake8_async_subset, args.flake8_async_timeout, len(files)
                )
            )
        print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
