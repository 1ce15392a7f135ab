"""``benchmarks/django_slow_view.py --smoke`` still runs and prints its table."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| (ours|wsgitoasgi|ours@HEAD) +\| (\d+) +\| [\d ]+\| (\d+\.\d\dx) +\|")


@pytest.mark.live
@pytest.mark.timeout(300)
def test_smoke_prints_each_variant_with_its_ratio_to_ours() -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not on PATH (.ci/run installs it: apt-get install wrk)")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "django_slow_view.py"), "--smoke",
         "--baseline", "HEAD"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {m.group(1): m for line in result.stdout.splitlines() if (m := ROW.match(line))}
    assert set(rows) == {"ours", "wsgitoasgi", "ours@HEAD"}, result.stdout
    assert rows["ours"].group(3) == "1.00x", result.stdout
    assert all(int(m.group(2)) > 0 for m in rows.values()), result.stdout
