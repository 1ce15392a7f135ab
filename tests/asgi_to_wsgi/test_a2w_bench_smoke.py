"""``benchmarks/asgi_to_wsgi_bench.py --smoke --floor --baseline HEAD`` still runs: servers
start, wrk output parses, every configuration gets a row and a ratio to a2wsgi. Nothing here
looks at speed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> dict[str, list[str]]:
    """Run ``benchmarks/asgi_to_wsgi_bench.py`` with ``args``; return its table's rows by label."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "asgi_to_wsgi_bench.py"), *args],
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    return {
        cells[0]: cells[1:]
        for line in lines[1:]  # the first is the header
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }


@pytest.mark.live
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_benchmark_smoke() -> None:
    rows = run_bench("--smoke", "--floor", "--baseline", "HEAD")
    assert set(rows) == {
        "gunicorn/asgishift",
        "gunicorn/asgishift-asyncio",
        "gunicorn/a2wsgi",
        "uvicorn/native",
        "gunicorn/floor",
        "gunicorn/baseline",
    }
    for label, (rps, p99, ratio, cpu, cpu_ratio, errors) in rows.items():
        assert float(rps) > 0, label
        assert float(p99) > 0, label
        assert re.fullmatch(r"\d+\.\d\dx", ratio), label
        assert float(cpu) > 0, label
        assert re.fullmatch(r"\d+\.\d\dx", cpu_ratio), label
        assert errors == "0", label
    assert rows["gunicorn/a2wsgi"][2] == "1.00x"
    assert rows["gunicorn/a2wsgi"][4] == "1.00x"


def test_in_process_smoke_with_a_baseline() -> None:
    rows = run_bench("--in-process", "--smoke", "--floor", "--threads", "2", "--baseline", "HEAD")
    assert set(rows) == {"asgishift", "a2wsgi", "floor", "baseline HEAD"}
    for label, (micros, ratio) in rows.items():
        assert float(micros) > 0, label
        assert re.fullmatch(r"\d+\.\d\dx", ratio), label
    assert rows["a2wsgi"][1] == "1.00x"
