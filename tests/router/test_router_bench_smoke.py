"""benchmarks/router_bench.py still runs (``--smoke``); it checks the output, not the speed."""

from __future__ import annotations

import re
import subprocess
import sys

from live import REPO_ROOT


def test_router_bench_smoke_prints_every_row_and_the_overhead() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "router_bench.py"),
            "--smoke",
            "--cpu",
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT / "benchmarks",
    )
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\| (mount[^|]*|fallback|direct)\s*\| (\d+\.\d\d) ", result.stdout, re.M)
    assert [name.strip() for name, _ in rows] == [
        "direct",
        "mount",
        "mount, root_path in path",
        "mount, root_path not in path",
        "fallback",
    ]
    assert re.search(r"router overhead: at most [+-]\d+\.\d\d us/request", result.stdout)
