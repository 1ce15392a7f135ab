"""``Waiter``: a future-like slot whose task resumes in the loop pass that fills it."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from asgishift.bridge._server_io import first_of
from asgishift.bridge._waiter import Waiter, waiter_factory

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def run(coro: Any) -> Any:
    """Run ``coro`` on a fresh asyncio selector loop (the loop the waiter is for)."""
    loop = asyncio.SelectorEventLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_a_waiting_task_resumes_inside_the_callback_that_fills_the_waiter() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop)
        events: list[str] = []

        async def wait() -> None:
            events.append(f"got {await waiter}")

        task = loop.create_task(wait())
        await asyncio.sleep(0)  # the task now waits on the waiter

        def fill() -> None:
            waiter.set_result("item")
            events.append("callback returns")

        loop.call_soon(fill)
        await task
        return events

    # An asyncio.Future would give the other order: its task resumes one pass later.
    assert run(main()) == ["got item", "callback returns"]


def test_an_asyncio_future_resumes_one_pass_later_the_order_the_waiter_saves() -> None:
    """The control for the test above: the same steps with ``loop.create_future()``."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        events: list[str] = []

        async def wait() -> None:
            events.append(f"got {await future}")

        task = loop.create_task(wait())
        await asyncio.sleep(0)

        def fill() -> None:
            future.set_result("item")
            events.append("callback returns")

        loop.call_soon(fill)
        await task
        return events

    assert run(main()) == ["callback returns", "got item"]


def test_filling_from_inside_a_task_schedules_the_waiting_task() -> None:
    """A task cannot step while another runs: set_result() falls back to call_soon."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop)
        events: list[str] = []

        async def wait() -> None:
            events.append(f"got {await waiter}")

        task = loop.create_task(wait())
        await asyncio.sleep(0)
        waiter.set_result("item")
        events.append("setter goes on")
        await task
        return events

    assert run(main()) == ["setter goes on", "got item"]


def test_the_waiting_task_keeps_its_own_context() -> None:
    async def main() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop)

        async def wait() -> str:
            request_id.set("task's")
            await waiter
            return request_id.get()

        task = loop.create_task(wait())
        await asyncio.sleep(0)
        request_id.set("caller's")
        context = contextvars.copy_context()
        loop.call_soon(waiter.set_result, None, context=context)
        return await task, request_id.get()

    assert run(main()) == ("task's", "caller's")


def test_cancelling_the_waiting_task_cancels_the_waiter() -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop)
        task = loop.create_task(_await(waiter))
        await asyncio.sleep(0)
        task.cancel("client gone")
        with pytest.raises(asyncio.CancelledError):
            await task
        return waiter.cancelled(), waiter.done()

    assert run(main()) == (True, True)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def test_a_filled_waiter_cannot_be_cancelled_or_filled_again() -> None:
    async def main() -> None:
        waiter = Waiter(asyncio.get_running_loop())
        with pytest.raises(asyncio.InvalidStateError):
            waiter.result()
        waiter.set_result(1)
        assert waiter.cancel() is False
        with pytest.raises(asyncio.InvalidStateError):
            waiter.set_result(2)
        assert (waiter.result(), waiter.exception(), await waiter) == (1, None, 1)

    run(main())


def test_a_failing_callback_is_reported_and_the_next_one_still_runs() -> None:
    async def main() -> tuple[list[Any], list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        waiter = Waiter(loop)
        seen: list[Any] = []

        def broken(_: Waiter) -> None:
            raise ValueError("broken callback")

        waiter.add_done_callback(broken)
        waiter.add_done_callback(lambda w: seen.append(w.result()))
        loop.call_soon(waiter.set_result, "item")
        await asyncio.sleep(0)
        return seen, reported

    seen, reported = run(main())
    assert seen == ["item"]
    assert [type(context["exception"]) for context in reported] == [ValueError]


def test_removed_callbacks_are_not_called() -> None:
    async def main() -> tuple[int, list[str]]:
        waiter = Waiter(asyncio.get_running_loop())
        seen: list[str] = []

        def record(_: Waiter) -> None:
            seen.append("called")

        waiter.add_done_callback(record)
        waiter.add_done_callback(record)
        removed = waiter.remove_done_callback(record)
        waiter.set_result(None)
        await asyncio.sleep(0)
        return removed, seen

    assert run(main()) == (2, [])


@pytest.mark.parametrize("first", ["work", "deadline"])
def test_first_of_races_work_against_a_waiter(first: str) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        deadline = Waiter(loop)
        release = asyncio.Event()

        async def work() -> str:
            await release.wait()
            return "done"

        if first == "work":
            release.set()
        else:
            loop.call_soon(deadline.set_result, ("timeout",))
        try:
            return await first_of(work(), deadline)
        except TimeoutError as exc:
            return exc

    result = run(main())
    if first == "work":
        assert result == "done"
    else:
        assert isinstance(result, TimeoutError)


def test_a_task_waits_on_it_through_asyncio_wait() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop)
        loop.call_soon(waiter.set_result, "x")
        slots: list[Any] = [waiter]
        done, _ = await asyncio.wait(slots, timeout=5)
        return bool(done == {waiter})

    assert run(main()) is True


def test_the_factory_gives_waiters_on_asyncio_and_native_futures_on_uvloop() -> None:
    loop = asyncio.SelectorEventLoop()
    try:
        assert isinstance(waiter_factory(loop)(), Waiter)
    finally:
        loop.close()
    uvloop = pytest.importorskip("uvloop")
    other = uvloop.new_event_loop()
    try:
        assert isinstance(waiter_factory(other)(), asyncio.Future)
    finally:
        other.close()
