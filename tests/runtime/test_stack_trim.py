"""Runtime reports show the application's frames; library frames fold into one line."""

from __future__ import annotations

import asyncio
import os
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest
from test_pytest_plugin import PLUGIN

import asgishift
from asgishift.runtime import BlockingDetector, LoopLag
from asgishift.runtime._stack import StackFrame, capture, format_stack, is_library


def _frame(filename: str, name: str, line: str = "") -> StackFrame:
    return StackFrame(filename, 7, name, line)


APP = _frame("/srv/shop/views.py", "checkout", "charge(order)")
APP2 = _frame("/srv/shop/payments.py", "charge", "time.sleep(1)")
LIB = _frame(asyncio.__file__, "run", "return runner.run(main)")
SITE = _frame("/opt/venv/lib/python3.12/site-packages/starlette/routing.py", "handle")
OURS = _frame(str(Path(asgishift.__file__).parent / "bridge" / "_app.py"), "__call__")


def test_library_files_are_told_from_application_files() -> None:
    assert is_library(asyncio.__file__)
    assert is_library(pytest.__file__)
    assert is_library(asgishift.__file__)
    assert is_library("<frozen importlib._bootstrap>")
    assert is_library("/opt/venv/lib/python3.12/dist-packages/django/db/models/query.py")
    assert not is_library(__file__)
    assert not is_library("/srv/shop/views.py")
    assert not is_library("<string>")


def test_runs_of_library_frames_fold_into_one_line() -> None:
    frames = (LIB, SITE, OURS, APP, SITE, APP2)
    assert format_stack(frames) == (
        "  … 3 library frames …\n"
        '  File "/srv/shop/views.py", line 7, in checkout\n'
        "    charge(order)\n"
        "  … 1 library frame …\n"
        '  File "/srv/shop/payments.py", line 7, in charge\n'
        "    time.sleep(1)\n"
    )
    full = format_stack(frames, full=True)
    assert full.count('  File "') == 6
    assert "…" not in full


def test_a_stack_without_application_frames_is_printed_whole() -> None:
    assert format_stack((LIB, SITE)) == format_stack((LIB, SITE), full=True)
    assert "site-packages/starlette/routing.py" in format_stack((LIB, SITE))


def _view() -> None:
    time.sleep(0.001)


async def _handler() -> None:
    _view()


def test_detector_report_is_trimmed_unless_full_stack() -> None:
    with BlockingDetector(log=False) as detector:
        asyncio.run(_handler())
    (event,) = detector.events
    trimmed = event.format()
    assert "library frames folded" in trimmed
    assert "in _view" in trimmed
    assert "in _handler" in trimmed
    assert "library frames …" in trimmed
    assert "base_events.py" not in trimmed
    full = event.format(full_stack=True)
    assert "base_events.py" in full
    assert "…" not in full
    assert event.stack in full


def test_loop_lag_report_is_trimmed_too() -> None:
    def hog() -> None:
        pass

    import sys

    frames = (*capture(sys._getframe(), 50), _frame(asyncio.__file__, "_run_once"))
    lag = LoopLag(150.0, 100.0, format_stack(frames, full=True), "MainThread", 1, 0.0, frames)
    trimmed = lag.format()
    assert trimmed.startswith("event loop held for at least 150.0 ms")
    assert "(most recent call last; library frames folded):" in trimmed
    assert "test_loop_lag_report_is_trimmed_too" in trimmed
    assert "in _run_once" not in trimmed
    assert "in _run_once" in lag.format(full_stack=True)
    hog()


BLOCKING_TEST = """
import asyncio
import time


def test_sleeps_on_the_loop():
    async def handler():
        time.sleep(0.01)

    asyncio.run(handler())
"""


def test_pytest_failure_shows_the_trimmed_stack_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_trimmed_stack=BLOCKING_TEST)
    result = pytester.runpytest_subprocess(*PLUGIN, "--asgishift-detect-blocking")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "library frames folded" in output
    assert "in handler" in output
    assert "base_events.py" not in output

    result = pytester.runpytest_subprocess(
        *PLUGIN, "--asgishift-detect-blocking", "--asgishift-full-stack"
    )
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "base_events.py" in output
    assert "library frames folded" not in output


def test_a_console_script_is_a_library_frame() -> None:
    # The outermost frame under `asgishift serve` or `uvicorn`: counted as the
    # application, it kept a stack of library calls from being printed whole.
    script = os.path.join(sysconfig.get_paths()["scripts"], "asgishift")
    assert is_library(script)
    frames = (
        StackFrame(script, 6, "<module>", "sys.exit(main())"),
        StackFrame(tempfile.__file__, 10, "TemporaryFile", "fd = _os.open(...)"),
    )
    assert "library frames" not in format_stack(frames)  # all library: printed whole
