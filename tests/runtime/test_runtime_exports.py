"""The public surface of asgishift.runtime: __all__ is sorted, complete and re-homed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asgishift.runtime as runtime

SRC = Path(__file__).resolve().parents[2] / "src"


def test_all_is_sorted_and_names_every_public_attribute() -> None:
    # "@py_builtins" and friends: pytest rewrites asserts in every module of a distribution
    # that registers a pytest11 entry point, and asgishift does.
    public = {name for name in vars(runtime) if not name.startswith(("_", "@"))}
    public -= {"annotations"}  # from __future__
    assert runtime.__all__ == sorted(runtime.__all__)
    assert set(runtime.__all__) == public


def test_public_objects_say_they_live_in_asgishift_runtime() -> None:
    assert {getattr(runtime, name).__module__ for name in runtime.__all__} == {"asgishift.runtime"}


def test_importing_the_package_patches_nothing_and_stays_light() -> None:
    code = (
        "import sys, time, builtins, asgishift.runtime;"
        "assert type(time.sleep).__name__ == 'builtin_function_or_method';"
        "assert type(builtins.open).__name__ == 'builtin_function_or_method';"
        "heavy = {'asyncio', 'socket', 'requests', 'httpx', 'urllib3', 'sqlite3'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
