"""Repository-wide checks: lint, formatting, types, docs, and import hygiene.

These run the real tools the project is held to, so a regression in any of them fails the
suite rather than a separate CI step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_ruff_check() -> None:
    result = _run("ruff", "check", "src", "tests", "benchmarks", "sample_projects", "docs")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(
        "ruff", "format", "--check", "src", "tests", "benchmarks", "sample_projects", "docs"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    result = _run("sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "bridge.html").is_file()


def test_no_hollow_tests() -> None:
    tool = ROOT.parent / "shared" / "tools" / "hollow_tests.py"
    if not tool.is_file():
        pytest.skip(f"{tool} is not beside this checkout")
    result = subprocess.run(
        [sys.executable, str(tool), "tests"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "", result.stdout


def test_import_asgishift_imports_neither_django_nor_flask() -> None:
    code = (
        "import sys, asgishift, asgishift.bridge, asgishift.cli, asgishift.serve;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'flask'});"
        "print(','.join(bad))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_package_ships_py_typed() -> None:
    assert (ROOT / "src" / "asgishift" / "py.typed").is_file()
