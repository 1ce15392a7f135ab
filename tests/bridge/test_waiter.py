"""``InlineFuture``: the awaiting task resumes inside ``set_result`` when that is safe.

Everything else must behave as ``asyncio.Future`` does: results, exceptions,
cancellation (of the future and of the task), ``asyncio.wait``, contextvars.
Each test runs on asyncio's loop and on uvloop, the two loops the bridge is
benchmarked on.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from asgishift.bridge._waiter import InlineFuture

T = TypeVar("T")

LOOPS = [pytest.param("asyncio", id="asyncio"), pytest.param("uvloop", id="uvloop")]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def run_on(kind: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh loop of ``kind`` and close the loop."""
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def started(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro`` as a task and let it run up to its first ``await``."""
    task = asyncio.get_running_loop().create_task(coro)
    for _ in range(3):
        await asyncio.sleep(0)
    return task


@pytest.mark.parametrize(
    ("inline", "expected"),
    [
        pytest.param(True, ["resumed with item", "set_result returned"], id="InlineFuture"),
        # The control: the order checked above is InlineFuture's doing.
        pytest.param(False, ["set_result returned", "resumed with item"], id="asyncio.Future"),
    ],
)
@pytest.mark.parametrize("kind", LOOPS)
def test_set_result_from_a_loop_callback_resumes_the_task_before_it_returns(
    kind: str, inline: bool, expected: list[str]
) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = InlineFuture(loop) if inline else loop.create_future()
        events: list[str] = []

        async def waiter() -> None:
            events.append(f"resumed with {await future}")

        task = await started(waiter())

        def deliver() -> None:
            future.set_result("item")
            events.append("set_result returned")

        loop.call_soon(deliver)
        await task
        return events

    assert run_on(kind, main) == expected


@pytest.mark.parametrize("kind", LOOPS)
def test_set_result_from_inside_a_task_schedules_the_wake_up(kind: str) -> None:
    # A task cannot start while another runs: inline would raise RuntimeError.
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        future: InlineFuture[str] = InlineFuture(loop)
        events: list[str] = []

        async def waiter() -> None:
            events.append(f"resumed with {await future}")

        task = await started(waiter())
        future.set_result("item")
        events.append("set_result returned")
        await task
        return events

    assert run_on(kind, main) == ["set_result returned", "resumed with item"]


@pytest.mark.parametrize("kind", LOOPS)
def test_set_exception_from_a_loop_callback_raises_in_the_task(kind: str) -> None:
    async def main() -> tuple[str, list[str]]:
        loop = asyncio.get_running_loop()
        future: InlineFuture[str] = InlineFuture(loop)
        events: list[str] = []

        async def waiter() -> str:
            try:
                await future
            except ConnectionResetError as exc:
                events.append("raised in the task")
                return str(exc)
            return "no exception"

        task = await started(waiter())

        def deliver() -> None:
            future.set_exception(ConnectionResetError("client left"))
            events.append("set_exception returned")

        loop.call_soon(deliver)
        return await task, events

    message, events = run_on(kind, main)
    assert message == "client left"
    assert events == ["raised in the task", "set_exception returned"]


@pytest.mark.parametrize("kind", LOOPS)
def test_cancelling_the_future_cancels_the_awaiting_task(kind: str) -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        future: InlineFuture[str] = InlineFuture(loop)
        task = await started(_await(future))
        assert future.cancel("stop") is True
        assert future.cancel() is False  # already done
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled(), future.cancelled()

    assert run_on(kind, main) == (True, True)


@pytest.mark.parametrize("kind", LOOPS)
def test_cancelling_the_task_while_it_waits_leaves_the_future_cancelled(kind: str) -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        future: InlineFuture[str] = InlineFuture(loop)
        task = await started(_await(future))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled(), future.cancelled()

    assert run_on(kind, main) == (True, True)


@pytest.mark.parametrize("kind", LOOPS)
def test_asyncio_wait_sees_it_complete(kind: str) -> None:
    async def main() -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        future: InlineFuture[str] = InlineFuture(loop)
        never = loop.create_future()
        loop.call_soon(future.set_result, "first")
        done, pending = await asyncio.wait((future, never), return_when=asyncio.FIRST_COMPLETED)
        never.cancel()
        return done == {future} and pending == {never}, future.result()

    assert run_on(kind, main) == (True, "first")


@pytest.mark.parametrize("kind", LOOPS)
def test_the_task_resumes_in_its_own_contextvars_context(kind: str) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        future: InlineFuture[None] = InlineFuture(loop)

        async def waiter() -> str:
            request_id.set("request-7")
            await future
            return request_id.get()

        task = await started(waiter())
        request_id.set("the loop's")
        loop.call_soon(future.set_result, None)
        return await task

    assert run_on(kind, main) == "request-7"


@pytest.mark.parametrize("kind", LOOPS)
def test_a_removed_callback_is_not_called(kind: str) -> None:
    async def main() -> tuple[int, int, list[str]]:
        loop = asyncio.get_running_loop()
        future: InlineFuture[str] = InlineFuture(loop)
        called: list[str] = []

        def inline(_: Any) -> None:
            called.append("inline")

        def scheduled(_: Any) -> None:
            called.append("scheduled")

        future.add_done_callback(inline, context=contextvars.copy_context())
        future.add_done_callback(scheduled)
        removed = future.remove_done_callback(inline), future.remove_done_callback(scheduled)
        loop.call_soon(future.set_result, "x")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return removed[0], removed[1], called

    assert run_on(kind, main) == (1, 1, [])


@pytest.mark.parametrize("kind", LOOPS)
def test_an_interrupt_in_one_wake_up_still_runs_the_others(kind: str) -> None:
    # set_result from a plain callback (the inline path): the interrupt comes
    # out of set_result, and the wake-up after it runs in the next iteration.
    outcome, called = run_on(kind, _from_callback(main_interrupt))
    assert outcome == "KeyboardInterrupt"
    assert called == ["interrupted", "second"]


def main_interrupt(loop: asyncio.AbstractEventLoop) -> tuple[InlineFuture[str], list[str]]:
    """A future with two kept wake-ups, the first of which raises ``KeyboardInterrupt``."""
    future: InlineFuture[str] = InlineFuture(loop)
    called: list[str] = []

    def interrupted(_: Any) -> None:
        called.append("interrupted")
        raise KeyboardInterrupt

    def second(_: Any) -> None:
        called.append("second")

    future.add_done_callback(interrupted, context=contextvars.copy_context())
    future.add_done_callback(second, context=contextvars.copy_context())
    return future, called


def _from_callback(
    make: Callable[[asyncio.AbstractEventLoop], tuple[InlineFuture[str], list[str]]],
) -> Callable[[], Coroutine[Any, Any, tuple[str, list[str]]]]:
    """Return a ``main`` that sets the future's result from a plain loop callback."""

    async def main() -> tuple[str, list[str]]:
        loop = asyncio.get_running_loop()
        future, called = make(loop)
        outcomes: list[str] = []

        def deliver() -> None:
            try:
                future.set_result("x")
            except KeyboardInterrupt:
                outcomes.append("KeyboardInterrupt")
                return
            outcomes.append("returned")

        loop.call_soon(deliver)
        for _ in range(3):
            await asyncio.sleep(0)
        return outcomes[0], called

    return main


async def _await(future: asyncio.Future[T]) -> T:
    return await future


@pytest.mark.parametrize("kind", LOOPS)
def test_waiter_factory_gives_inline_futures_on_asyncios_loop_only(kind: str) -> None:
    # uvloop's iterations are Cython: a plain future costs less there than the
    # Python-level overrides of InlineFuture save (benchmarks/RESULTS.md).
    from asgishift.bridge._waiter import waiter_factory

    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        waiter = waiter_factory(loop)()
        waiter.set_result(1)
        return isinstance(waiter, InlineFuture), waiter.get_loop() is loop

    inline, own_loop = run_on(kind, main)
    assert own_loop
    assert inline is (kind == "asyncio")
