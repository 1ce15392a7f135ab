"""The audit's benchmark scripts (``benchmarks/audit/``) still run against the engine they wrap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from asgishift.audit._parse import PARALLEL_MIN_FILES

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks" / "audit"


def run_script(name: str, tree: Path, *args: str) -> list[str]:
    """Run ``benchmarks/audit/NAME`` on ``tree`` with one run; return its output lines.

    :raise AssertionError: with its stderr when it exits non-zero.
    """
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / name), "--tree", str(tree), "--runs", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_worker_timeline_reports_phases_and_workers(tmp_path: Path) -> None:
    # Enough files for the worker pool; one blocking call reached from async code.
    for i in range(PARALLEL_MIN_FILES + 8):
        (tmp_path / f"m{i}.py").write_text(f"def f{i}():\n    return {i}\n", encoding="utf-8")
    (tmp_path / "views.py").write_text(
        "import time\n\n\nasync def view():\n    time.sleep(1)\n", encoding="utf-8"
    )
    lines = run_script("worker_timeline.py", tmp_path, "--jobs", "2")
    assert lines[0].startswith("== wall ")
    assert lines[0].endswith(" 1 findings")
    phases = {line.split()[0] for line in lines[1:] if not line.lstrip().startswith("worker")}
    assert {"discover", "summarise", "link"} <= phases
    workers = [line for line in lines if line.lstrip().startswith("worker ")]
    assert 1 <= len(workers) <= 2
    assert sum(int(w.split(": ")[1].split()[0]) for w in workers) >= 2


def test_step_costs_times_every_step(tmp_path: Path) -> None:
    (tmp_path / "views.py").write_text(
        "import helpers\n\n\nasync def view():\n    helpers.slow()\n", encoding="utf-8"
    )
    (tmp_path / "helpers.py").write_text("def slow():\n    return 1\n", encoding="utf-8")
    (tmp_path / "other.py").write_text("def f():\n    return 2\n", encoding="utf-8")
    lines = run_script("step_costs.py", tmp_path)
    assert lines[0].endswith(": 3 files, 2 in the import closure")
    names = [line.split(":")[0].strip() for line in lines[1:]]
    assert names == [
        "parse all",
        "scan",
        "parse closure",
        "summarise closure",
        "check others",
        "parse others",
    ]
    assert all(line.endswith("x parse all") for line in lines[1:])


def test_parse_floor_compares_the_parsers_on_the_same_files(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (tmp_path / "broken.py").write_text("x = (1,\n", encoding="utf-8")
    lines = run_script("parse_floor.py", tmp_path, "--parsers")
    assert ": 2 files, " in lines[0]
    rows = {line.split(":")[0].strip(): line for line in lines[1:]}
    # ruff is a dependency of asgishift; tree-sitter is measured only where installed.
    assert {"ast.parse", "symtable", "ruff (the audit's syntax check)"} <= set(rows)
    assert all(line.endswith(", 1 rejected") for line in rows.values()), rows
    assert rows["ast.parse"].split(": ")[1].split(" = ")[1].startswith("1.00x ast.parse")
