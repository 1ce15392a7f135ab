"""The pytest plugin, run in a fresh pytest process per case with pytester."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest


def _plugin_args() -> tuple[str, ...]:
    """``-p asgishift.pytest_plugin``, unless the ``pytest11`` entry point loads it already.

    Loading the module a second time under another name is a pluggy error.
    """
    if any(ep.value == "asgishift.pytest_plugin" for ep in entry_points(group="pytest11")):
        return ()
    return ("-p", "asgishift.pytest_plugin")


PLUGIN = _plugin_args()

BLOCKING_TESTS = """
import asyncio
import time


def test_sleeps_on_the_loop():
    async def handler():
        time.sleep(0.01)
        return "done"

    assert asyncio.run(handler()) == "done"


def test_sleeps_in_a_worker_thread():
    async def handler():
        await asyncio.to_thread(time.sleep, 0.01)
        return "done"

    assert asyncio.run(handler()) == "done"


def test_sleeps_without_a_loop():
    time.sleep(0.01)
    assert True is not False
"""


@pytest.fixture
def blocking_tests(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_blocking=BLOCKING_TESTS)
    return pytester


def test_flag_fails_only_the_test_that_blocks_the_loop(blocking_tests: pytest.Pytester) -> None:
    result = blocking_tests.runpytest_subprocess(*PLUGIN, "--asgishift-detect-blocking")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_sleeps_on_the_loop _*",
            "1 blocking call(s) on an event-loop thread (--asgishift-detect-blocking):",
            "ASH101 blocking call time.sleep() on the event-loop thread 'MainThread'*",
            "*FAILED test_blocking.py::test_sleeps_on_the_loop*",
        ]
    )
    output = result.stdout.str()
    assert "in handler" in output
    assert "time.sleep(0.01)" in output
    assert "test_sleeps_in_a_worker_thread FAILED" not in output


def test_without_the_flag_the_same_tests_pass(blocking_tests: pytest.Pytester) -> None:
    result = blocking_tests.runpytest_subprocess(*PLUGIN)
    result.assert_outcomes(passed=3)
    assert "ASH101" not in result.stdout.str()


def test_registering_the_plugin_patches_and_imports_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_clean="""
        import builtins
        import sys
        import time


        def test_nothing_patched():
            assert type(time.sleep).__name__ == "builtin_function_or_method"
            assert type(builtins.open).__name__ == "builtin_function_or_method"
            assert "asgishift.runtime" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN)
    result.assert_outcomes(passed=1)


def test_fixture_exposes_events_and_exempts_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture="""
        import asyncio
        import time


        def test_checks_its_own_events(blocking_detector):
            async def handler():
                time.sleep(0.001)

            asyncio.run(handler())
            assert [(e.code, e.call) for e in blocking_detector.events] == [
                ("ASH101", "time.sleep")
            ]
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "--asgishift-detect-blocking")
    result.assert_outcomes(passed=1)


def test_allow_marker_exempts_the_test(blocking_tests: pytest.Pytester) -> None:
    pytester = blocking_tests
    pytester.makeconftest(
        """
        import pytest


        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.asgishift_allow_blocking)
        """
    )
    result = pytester.runpytest_subprocess(
        *PLUGIN, "--asgishift-detect-blocking", "--strict-markers"
    )
    result.assert_outcomes(passed=3)


def test_blocking_in_an_async_fixture_errors_the_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_setup="""
        import asyncio
        import time

        import pytest


        @pytest.fixture
        def warmed_cache():
            async def warm():
                with open(__file__) as source:
                    return source.readline()

            return asyncio.run(warm())


        def test_uses_cache(warmed_cache):
            assert warmed_cache
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "--asgishift-detect-blocking")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ASH105 blocking call builtins.open()*"])


def test_loop_lag_flag_fails_a_test_that_hogs_the_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_lag="""
        import asyncio
        import time


        def spin_until_caught(guard):
            # CPU-bound work holding the loop, until the watchdog has seen it
            # (bounded by a deadline so a broken monitor fails instead of hanging).
            deadline = time.monotonic() + 30
            while guard.lag_monitor.stalls_seen == 0 and time.monotonic() < deadline:
                pass


        def test_hogs_the_loop(request):
            guard = request.config.pluginmanager.get_plugin("asgishift-runtime-guard")

            async def handler():
                spin_until_caught(guard)

            asyncio.run(handler())


        def test_awaits_politely():
            async def handler():
                await asyncio.sleep(0)
                return 1

            assert asyncio.run(handler()) == 1
        """
    )
    # A threshold far above anything the polite test could take on a busy machine.
    result = pytester.runpytest_subprocess(*PLUGIN, "--asgishift-loop-lag-ms=200")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_hogs_the_loop _*",
            "1 event-loop lag(s) over the threshold (--asgishift-loop-lag-ms):",
            "event loop held for at least * ms (threshold 200 ms) on thread 'MainThread'",
            "*FAILED test_lag.py::test_hogs_the_loop*",
        ]
    )
    assert "in spin_until_caught" in result.stdout.str()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("0", id="zero"),
        pytest.param("-5", id="negative"),
        pytest.param("nan", id="nan"),
        pytest.param("inf", id="infinite"),
    ],
)
def test_loop_lag_flag_rejects_a_non_positive_threshold(
    pytester: pytest.Pytester, value: str
) -> None:
    pytester.makepyfile(test_empty="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess(*PLUGIN, f"--asgishift-loop-lag-ms={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--asgishift-loop-lag-ms must be positive and finite*"])


def test_a_test_failing_anyway_keeps_its_error_and_gets_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_both="""
        import asyncio
        import time


        def test_blocks_then_fails():
            async def handler():
                time.sleep(0)
                return 41

            assert asyncio.run(handler()) == 42
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "--asgishift-detect-blocking")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*assert 41 == 42*",
            "*- Captured asgishift call -*",
            "1 blocking call(s) on an event-loop thread (--asgishift-detect-blocking):",
            "ASH101 blocking call time.sleep()*",
        ]
    )
