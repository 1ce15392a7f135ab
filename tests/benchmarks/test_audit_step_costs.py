"""``benchmarks/audit/step_costs.py`` still runs against the engine's steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "audit" / "step_costs.py"


def test_step_costs_times_every_step(tmp_path: Path) -> None:
    (tmp_path / "views.py").write_text(
        "import helpers\n\n\nasync def view():\n    helpers.slow()\n", encoding="utf-8"
    )
    (tmp_path / "helpers.py").write_text("def slow():\n    return 1\n", encoding="utf-8")
    (tmp_path / "other.py").write_text("def f():\n    return 2\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tree", str(tmp_path), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
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
