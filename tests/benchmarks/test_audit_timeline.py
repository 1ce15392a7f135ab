"""``benchmarks/audit/worker_timeline.py`` still runs against the engine it wraps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from asgishift.audit._parse import PARALLEL_MIN_FILES

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "audit" / "worker_timeline.py"


def test_worker_timeline_reports_phases_and_workers(tmp_path: Path) -> None:
    # Enough files for the worker pool; one blocking call reached from async code.
    for i in range(PARALLEL_MIN_FILES + 8):
        (tmp_path / f"m{i}.py").write_text(f"def f{i}():\n    return {i}\n", encoding="utf-8")
    (tmp_path / "views.py").write_text(
        "import time\n\n\nasync def view():\n    time.sleep(1)\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tree", str(tmp_path), "--runs", "1", "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("== wall ")
    assert lines[0].endswith(" 1 findings")
    phases = {line.split()[0] for line in lines[1:] if not line.lstrip().startswith("worker")}
    assert {"discover", "summarise", "link"} <= phases
    workers = [line for line in lines if line.lstrip().startswith("worker ")]
    assert 1 <= len(workers) <= 2
    assert sum(int(w.split(": ")[1].split()[0]) for w in workers) >= 2
