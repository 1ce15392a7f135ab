"""ThreadHop, the bounded handler's loop → thread hop: asgiref's semantics, one wake-up."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from asgishift.bridge._inbox import Inbox, Wakeable
from asgishift.django_integration._executors import ExecutorPool, ThreadHop, _Hop
from asgishift.django_integration.hops import count_hops

color: contextvars.ContextVar[str] = contextvars.ContextVar("color")


@pytest.fixture
def pool() -> Iterator[ExecutorPool]:
    pool = ExecutorPool(2)
    yield pool
    pool.shutdown()


def test_result_thread_and_exception(pool: ExecutorPool) -> None:
    hop = ThreadHop()

    def fail() -> None:
        raise KeyError("boom")

    async def main() -> tuple[str, str, str]:
        executor = await pool.acquire()
        try:
            first = await hop(executor, lambda: threading.current_thread().name)
            second = await hop(executor, lambda: threading.current_thread().name)
            with pytest.raises(KeyError, match="boom"):
                await hop(executor, fail)
            return first, second, threading.current_thread().name
        finally:
            pool.release(executor)

    first, second, loop_thread = asyncio.run(main())
    assert first == second
    assert first.startswith("asgishift-django-")
    assert loop_thread != first


def test_async_to_sync_inside_runs_on_the_loop_and_comes_back(pool: ExecutorPool) -> None:
    hop = ThreadHop()
    seen: dict[str, object] = {}

    def sync_part() -> str:
        seen["worker"] = threading.get_ident()
        return async_to_sync(async_part)()

    async def async_part() -> str:
        seen["loop"] = asyncio.get_running_loop()
        return await sync_to_async(lambda: str(threading.get_ident()), thread_sensitive=True)()

    async def main() -> tuple[asyncio.AbstractEventLoop, str]:
        executor = await pool.acquire()
        try:
            return asyncio.get_running_loop(), await hop(executor, sync_part)
        finally:
            pool.release(executor)

    loop, inner_thread = asyncio.run(main())
    assert seen["loop"] is loop  # not a new loop in another thread
    assert inner_thread == str(seen["worker"])  # thread-sensitive call came back


def test_context_goes_in_and_changes_come_back(pool: ExecutorPool) -> None:
    hop = ThreadHop()

    def paint() -> str:
        before = color.get()
        color.set("blue")
        return before

    async def main() -> tuple[str, str]:
        color.set("red")
        executor = await pool.acquire()
        try:
            inside = await hop(executor, paint)
        finally:
            pool.release(executor)
        return inside, color.get()

    assert asyncio.run(main()) == ("red", "blue")


def test_cancelled_caller_waits_for_the_thread(pool: ExecutorPool) -> None:
    hop = ThreadHop()
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)
        finished.set()

    async def main() -> bool:
        executor = await pool.acquire()
        task = asyncio.ensure_future(hop(executor, slow))
        deadline = asyncio.get_running_loop().time() + 10
        while not started.is_set():
            assert asyncio.get_running_loop().time() < deadline, "slow() never started"
            await asyncio.sleep(0.001)
        task.cancel()
        for _ in range(20):  # let the loop run; the task must still wait for slow()
            await asyncio.sleep(0)
        waited = not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        pool.release(executor)
        return waited

    assert asyncio.run(main()) is True
    assert finished.is_set()


def test_counted_as_one_hop_to_a_thread(pool: ExecutorPool) -> None:
    hop = ThreadHop()

    async def main() -> int:
        executor = await pool.acquire()
        try:
            return await hop(executor, int, "7")
        finally:
            pool.release(executor)

    with count_hops() as hops:
        assert asyncio.run(main()) == 7
    assert (hops.to_thread, hops.to_loop) == (1, 0)


def test_a_hop_reports_when_its_function_started_so_long_views_are_spaced() -> None:
    """The outcome goes through ``Inbox.post_finished`` with the time ``func`` began."""
    recorded: list[tuple[tuple[Any, ...], float]] = []

    class RecordingInbox(Inbox):
        def post_finished(self, target: Wakeable, item: tuple[Any, ...], started: float) -> None:
            recorded.append((item, started))
            super().post_finished(target, item, started)

    async def main() -> tuple[float, float, int]:
        loop = asyncio.get_running_loop()
        began: list[float] = []

        def view() -> int:
            began.append(time.monotonic())
            return 42

        hop = _Hop(loop, RecordingInbox(loop), view, ())
        before = time.monotonic()
        worker = threading.Thread(target=hop)
        worker.start()
        result = await asyncio.wait_for(hop.future, 30)
        worker.join(30)
        return before, began[0], result

    before, began, result = asyncio.run(main())
    assert result == 42
    [(item, started)] = recorded
    assert item == (42, None)
    assert before <= started <= began
