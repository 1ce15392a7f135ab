"""LoopLagMonitor and EveryLoopLagMonitor: a callback hogging the loop is caught with its stack."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from asgishift.runtime import EveryLoopLagMonitor, LoopLagMonitor

WATCHDOG_NAME = "asgishift-loop-lag"


def hog_the_loop(monitor: LoopLagMonitor | EveryLoopLagMonitor) -> None:
    """Busy-wait on the CPU, holding the loop, until the monitor has caught the hold.

    The deadline only stops a broken monitor from hanging the test.
    """
    deadline = time.monotonic() + 30
    while monitor.stalls_seen == 0 and time.monotonic() < deadline:
        pass


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WATCHDOG_NAME]


def test_reports_a_callback_that_holds_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    monitor = LoopLagMonitor(threshold_ms=20)

    async def main() -> None:
        monitor.start()
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(hog_the_loop, monitor)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="asgishift.runtime"):
        asyncio.run(main())
        monitor.stop()
    assert len(monitor.events) == 1
    lag = monitor.events[0]
    assert lag.lag_ms >= lag.threshold_ms == 20
    assert lag.thread_id == threading.get_ident()
    assert lag.thread_name == threading.current_thread().name
    assert "in hog_the_loop" in lag.stack.splitlines()[-2]
    [record] = [r for r in caplog.records if r.name == "asgishift.runtime"]
    assert record.levelno == logging.WARNING
    assert "event loop held for at least" in record.getMessage()
    assert "in hog_the_loop" in record.getMessage()


def test_stop_joins_the_watchdog_and_is_idempotent() -> None:
    monitor = LoopLagMonitor(threshold_ms=50)
    assert not monitor.running

    async def main() -> None:
        with monitor:
            assert monitor.running
            assert monitor.start() is monitor  # second start: no second thread
            assert len(watchdogs()) == 1
            await asyncio.sleep(0)

    asyncio.run(main())
    assert not monitor.running
    assert watchdogs() == []
    monitor.stop()
    assert monitor.events == []


def test_a_loop_that_keeps_answering_is_not_reported() -> None:
    # A threshold no scheduler hiccup reaches: the loop only awaits.
    monitor = LoopLagMonitor(threshold_ms=10_000, interval_ms=1)

    async def main() -> None:
        monitor.start()
        for _ in range(20):
            await asyncio.sleep(0.001)
        monitor.stop()

    asyncio.run(main())
    assert monitor.events == []
    assert monitor.stalls_seen == 0


def test_monitor_started_from_another_thread() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="loop-runner")
    runner.start()
    reported = threading.Event()
    monitor = LoopLagMonitor(threshold_ms=20, on_lag=lambda lag: reported.set())
    try:
        monitor.start(loop)
        loop.call_soon_threadsafe(hog_the_loop, monitor)
        assert reported.wait(timeout=30)
    finally:
        monitor.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(timeout=30)
        loop.close()
    assert len(monitor.events) == 1
    assert monitor.events[0].thread_name == "loop-runner"
    assert "in hog_the_loop" in monitor.events[0].stack


@pytest.mark.parametrize(
    ("threshold_ms", "interval_ms"),
    [
        pytest.param(0, None, id="zero-threshold"),
        pytest.param(-1, None, id="negative-threshold"),
        pytest.param(10, 0, id="zero-interval"),
    ],
)
def test_rejects_non_positive_times(threshold_ms: float, interval_ms: float | None) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        LoopLagMonitor(threshold_ms, interval_ms=interval_ms)


def test_start_without_a_loop_outside_a_coroutine_raises() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        LoopLagMonitor(50).start()


def test_every_loop_monitor_watches_asyncio_run_and_restores_run_forever() -> None:
    original = asyncio.BaseEventLoop.run_forever

    async def handler(monitor: EveryLoopLagMonitor) -> None:
        hog_the_loop(monitor)

    with EveryLoopLagMonitor(threshold_ms=20, log=False) as monitor:
        assert asyncio.BaseEventLoop.run_forever is not original
        asyncio.run(handler(monitor))
        assert watchdogs() == []  # stopped when the run ended
    assert asyncio.BaseEventLoop.run_forever is original
    assert len(monitor.events) == 1
    assert "in handler" in monitor.events[0].stack
    assert monitor.stalls_seen == 1


def test_stopping_on_the_loop_thread_does_not_wait_out_a_pending_heartbeat() -> None:
    # The loop is busy when stop() runs on it (a lifespan shutdown): the heartbeat the
    # watchdog waits on cannot be answered before stop() returns. The watchdog must not
    # sit out its threshold (20 s here) while stop() joins it, nor report a lag after.
    monitor = LoopLagMonitor(threshold_ms=20_000, interval_ms=5)

    async def main() -> float:
        monitor.start()
        await asyncio.sleep(0.02)  # a few heartbeats answered
        busy_until = time.perf_counter() + 0.05
        while time.perf_counter() < busy_until:
            pass  # hold the loop: the next heartbeat waits
        started = time.perf_counter()
        monitor.stop()
        return time.perf_counter() - started

    waited = asyncio.run(main())
    assert waited < 2, waited  # stop() joins for at most 5 s; the threshold is 20 s
    assert watchdogs() == []
    assert monitor.events == []
