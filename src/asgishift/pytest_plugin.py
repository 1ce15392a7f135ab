"""pytest plugin: fail tests that block an event loop.

Options (registered in the ``asgishift`` group of ``pytest --help``):

* ``--asgishift-detect-blocking``: install a
  :class:`~asgishift.runtime.BlockingDetector` for the session and fail every
  test during which a catalogued blocking call (``ASH1xx``) ran on an
  event-loop thread; the failure shows the rule code, the message and the
  stack of each call. A blocking call during setup or teardown (an async
  fixture) makes that phase error.
* ``--asgishift-loop-lag-ms=MS``: watch every asyncio loop while it runs
  (:class:`~asgishift.runtime.EveryLoopLagMonitor`) and fail every test during
  which a callback held the loop longer than ``MS`` milliseconds, with the
  loop thread's stack.
* ``--asgishift-full-stack``: print every frame of those stacks. By default each
  run of library frames (standard library, installed packages, asgishift) is
  folded into one line (``… 7 library frames …``) so the test's and the
  application's frames stand out.

Tests that request the :func:`blocking_detector` fixture, or carry the
``asgishift_allow_blocking`` marker, are not failed by either option: they
check the events themselves, or block on purpose.

Registering the plugin (the ``pytest11`` entry point) imports only pytest:
nothing is imported from :mod:`asgishift.runtime` and nothing is patched
unless an option is given or the fixture is used.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from asgishift.runtime import BlockingDetector, EveryLoopLagMonitor

_GUARD_NAME = "asgishift-runtime-guard"
_ALLOW_MARK = "asgishift_allow_blocking"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--asgishift-*`` options: detect-blocking, loop-lag-ms, full-stack."""
    group = parser.getgroup("asgishift", "asgishift: event-loop blocking checks")
    group.addoption(
        "--asgishift-detect-blocking",
        action="store_true",
        default=False,
        help="fail tests that make a blocking call (time.sleep, open, requests.get, ...) "
        "on an event-loop thread; the failure names the ASH rule and shows the stack",
    )
    group.addoption(
        "--asgishift-loop-lag-ms",
        type=float,
        default=None,
        metavar="MS",
        help="fail tests during which a callback held an asyncio loop longer than MS "
        "milliseconds; the failure shows the loop thread's stack",
    )
    group.addoption(
        "--asgishift-full-stack",
        action="store_true",
        default=False,
        help="show every frame of the stacks in those failures; by default runs of "
        "standard-library, installed-package and asgishift frames are folded into one line",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; install the session guard when an option asks for it.

    :raise pytest.UsageError: when ``--asgishift-loop-lag-ms`` is not positive and finite.
    """
    config.addinivalue_line(
        "markers",
        f"{_ALLOW_MARK}: the test blocks the event loop on purpose; "
        "--asgishift-detect-blocking and --asgishift-loop-lag-ms do not fail it",
    )
    detect = bool(config.getoption("asgishift_detect_blocking"))
    lag_ms: float | None = config.getoption("asgishift_loop_lag_ms")
    # Positive and finite: this flag only turns the lag monitor on (unlike serve's
    # --loop-lag-ms, whose 0 keeps blocking-call reports with the monitor off).
    if lag_ms is not None and not 0 < lag_ms < math.inf:
        raise pytest.UsageError(
            f"--asgishift-loop-lag-ms must be positive and finite (milliseconds), got {lag_ms:g}"
        )
    full_stack = bool(config.getoption("asgishift_full_stack"))
    if detect or lag_ms is not None:
        config.pluginmanager.register(_Guard(detect, lag_ms, full_stack), _GUARD_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Uninstall the session guard, if any."""
    guard = config.pluginmanager.get_plugin(_GUARD_NAME)
    if isinstance(guard, _Guard):
        guard.close()
        config.pluginmanager.unregister(guard, _GUARD_NAME)


@pytest.fixture
def blocking_detector() -> Iterator[BlockingDetector]:
    """Yield an installed :class:`~asgishift.runtime.BlockingDetector`.

    The test asserts on ``blocking_detector.events`` (a list of
    :class:`~asgishift.runtime.BlockingCall`); the detector is uninstalled
    after the test, and ``--asgishift-detect-blocking`` does not fail a test
    that uses it.
    """
    from asgishift.runtime import BlockingDetector

    with BlockingDetector() as detector:
        yield detector


class _Guard:
    """The session-wide detector and lag monitor, checked around each test phase."""

    def __init__(self, detect: bool, lag_ms: float | None, full_stack: bool) -> None:
        from asgishift.runtime import BlockingDetector, EveryLoopLagMonitor

        self.full_stack = full_stack
        # The failure report carries everything: no WARNING logs on top of it.
        self.detector: BlockingDetector | None = (
            BlockingDetector(log=False).install() if detect else None
        )
        self.lag_monitor: EveryLoopLagMonitor | None = (
            EveryLoopLagMonitor(lag_ms, log=False).install() if lag_ms is not None else None
        )

    def close(self) -> None:
        if self.detector is not None:
            self.detector.uninstall()
        if self.lag_monitor is not None:
            self.lag_monitor.uninstall()

    def _marks(self) -> tuple[int, int]:
        return (
            len(self.detector.events) if self.detector is not None else 0,
            len(self.lag_monitor.events) if self.lag_monitor is not None else 0,
        )

    def _report(self, item: pytest.Item, marks: tuple[int, int]) -> str:
        """Describe what happened since ``marks``; empty when nothing did."""
        if "blocking_detector" in getattr(item, "fixturenames", ()):
            return ""
        if item.get_closest_marker(_ALLOW_MARK) is not None:
            return ""
        blocks = self.detector.events[marks[0] :] if self.detector is not None else []
        lags = self.lag_monitor.events[marks[1] :] if self.lag_monitor is not None else []
        parts = []
        if blocks:
            parts.append(
                f"{len(blocks)} blocking call(s) on an event-loop thread "
                f"(--asgishift-detect-blocking):\n\n"
                + "\n".join(e.format(full_stack=self.full_stack) for e in blocks)
            )
        if lags:
            parts.append(
                f"{len(lags)} event-loop lag(s) over the threshold "
                f"(--asgishift-loop-lag-ms):\n\n"
                + "\n".join(e.format(full_stack=self.full_stack) for e in lags)
            )
        if parts:
            parts.append(
                f"Fix the call (the message names the async alternative), or mark the test "
                f"@pytest.mark.{_ALLOW_MARK} if it blocks on purpose."
            )
        return "\n".join(parts)

    def _phase(self, item: pytest.Item, when: str) -> Generator[None, object, object]:
        marks = self._marks()
        try:
            result = yield
        except BaseException:
            # The phase failed anyway: keep its error, add ours as a section.
            report = self._report(item, marks)
            if report:
                item.add_report_section(when, "asgishift", report)
            raise
        report = self._report(item, marks)
        if report:
            pytest.fail(report, pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        """Fail the setup phase (an error) when a fixture blocked the loop."""
        return (yield from self._phase(item, "setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Fail the test when it blocked the loop."""
        return (yield from self._phase(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        """Fail the teardown phase (an error) when a fixture blocked the loop."""
        return (yield from self._phase(item, "teardown"))
