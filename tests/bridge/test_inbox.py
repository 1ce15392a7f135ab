"""``Inbox``: worker->loop items coalesced into one wake-up per batch, none lost."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Callable, Coroutine, Iterable
from time import monotonic
from typing import Any, TypeVar
from wsgiref.validate import validator

import pytest
from bridge_harness import DEADLINE, FakeServer, make_scope

from asgishift.bridge import WSGIToASGI
from asgishift.bridge import _wsgi_to_asgi as wsgi_to_asgi
from asgishift.bridge._inbox import SPACED_AFTER, Inbox, Wakeable

T = TypeVar("T")


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without ``add_reader``, as Windows' proactor loop is: the inbox falls back."""

    refusal: type[Exception] = NotImplementedError  # what add_reader raises

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:  # type: ignore[override]
        raise self.refusal


class RefusingReaderLoop(NoReaderLoop):
    """A loop of another library whose ``add_reader`` refuses with some other error."""

    refusal = RuntimeError


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """Return a fresh loop of ``kind``.

    ``asyncio`` (asyncio's selector loop) and ``uvloop`` get the inbox's pipe;
    ``no-reader`` (:class:`NoReaderLoop`) gets ``call_soon_threadsafe``.
    """
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    if kind == "no-reader":
        return NoReaderLoop()
    return asyncio.SelectorEventLoop()


def run_on(kind: str, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh loop of ``kind``, then close the loop."""
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


LOOPS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param("uvloop", id="uvloop"),
    pytest.param("no-reader", id="no-reader"),
]
#: The loops on which the inbox wakes the loop through its own pipe.
PIPE_LOOPS = [pytest.param("asyncio", id="asyncio"), pytest.param("uvloop", id="uvloop")]


class Recorder:
    """Stand-in for a ``Request``: records what the inbox delivers to it."""

    def __init__(self, name: str, sink: list[tuple[str, tuple[Any, ...]]], expected: int) -> None:
        self.name = name
        self.sink = sink
        self.expected = expected
        self.all_in = asyncio.Event()

    def wake(self, item: tuple[Any, ...]) -> None:
        self.sink.append((self.name, item))
        if len(self.sink) == self.expected:
            self.all_in.set()


@pytest.mark.parametrize("kind", LOOPS)
@pytest.mark.parametrize("how", ["post", "post_spaced", "mixed"])
@pytest.mark.parametrize(
    ("threads", "per_thread"),
    [pytest.param(1, 50, id="one-thread"), pytest.param(16, 200, id="16-threads")],
)
def test_every_item_from_many_threads_is_delivered_exactly_once(
    kind: str, how: str, threads: int, per_thread: int
) -> None:
    async def main() -> tuple[list[tuple[str, tuple[Any, ...]]], Inbox]:
        inbox = Inbox(asyncio.get_running_loop())
        sink: list[tuple[str, tuple[Any, ...]]] = []
        recorder = Recorder("r", sink, threads * per_thread)
        barrier = threading.Barrier(threads)

        def worker(index: int) -> None:
            barrier.wait(DEADLINE)
            spaced = how == "post_spaced" or (how == "mixed" and index % 2 == 1)
            post = inbox.post_spaced if spaced else inbox.post
            for n in range(per_thread):
                post(recorder, ("item", index, n))

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in workers:
            thread.start()
        try:
            await asyncio.wait_for(recorder.all_in.wait(), DEADLINE)
        finally:
            for thread in workers:
                thread.join(DEADLINE)
        return sink, inbox

    sink, inbox = run_on(kind, main())
    expected = {("r", ("item", i, n)) for i in range(threads) for n in range(per_thread)}
    assert len(sink) == len(expected)
    assert set(sink) == expected
    assert not inbox.items
    assert not inbox.spaced
    # Items from one thread arrive in the order it posted them.
    for index in range(threads):
        order = [item[2] for _, item in sink if item[1] == index]
        assert order == sorted(order)


def deliveries(
    kind: str, post_all: Callable[[Inbox, Wakeable], None], count: int, follow_up: bool
) -> list[str]:
    """Run ``post_all(inbox, target)`` on a thread, on a new loop of ``kind``; return
    the names (``item[0]``) of the items delivered to ``target``, once ``count`` are in.

    With ``follow_up``, each delivery is logged as ``"wake NAME"`` and schedules
    ``"ran NAME"`` with ``call_soon``, as a delivery resumes a request task.
    """

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        events: list[str] = []
        woken = 0
        done = asyncio.Event()

        class Target:
            def wake(self, item: tuple[Any, ...]) -> None:
                nonlocal woken
                woken += 1
                if follow_up:
                    events.append(f"wake {item[0]}")
                    loop.call_soon(events.append, f"ran {item[0]}")
                else:
                    events.append(item[0])
                if woken == count:
                    loop.call_soon(done.set)  # after what this delivery scheduled

        thread = threading.Thread(target=post_all, args=(Inbox(loop), Target()))
        thread.start()
        thread.join(DEADLINE)
        await asyncio.wait_for(done.wait(), DEADLINE)
        return events

    return run_on(kind, main())


@pytest.mark.parametrize("kind", LOOPS)
def test_spaced_items_get_a_loop_iteration_each_and_batched_ones_share_one(kind: str) -> None:
    """What each delivery schedules with call_soon runs before the next spaced item."""

    def post_all(inbox: Inbox, target: Wakeable) -> None:
        # All posted before the loop drains once: one wake-up for the lot.
        inbox.post_spaced(target, ("s1",))
        inbox.post(target, ("b1",))
        inbox.post_spaced(target, ("s2",))
        inbox.post(target, ("b2",))
        inbox.post_spaced(target, ("s3",))

    assert deliveries(kind, post_all, 5, follow_up=True) == [
        "wake b1",
        "wake b2",
        "wake s1",
        "ran b1",
        "ran b2",
        "ran s1",
        "wake s2",
        "ran s2",
        "wake s3",
        "ran s3",
    ]


@pytest.mark.parametrize("kind", LOOPS)
def test_a_failing_delivery_does_not_strand_the_items_after_it(kind: str) -> None:
    class Broken:
        def wake(self, item: tuple[Any, ...]) -> None:
            raise ValueError("broken request")

    async def main() -> tuple[list[tuple[str, tuple[Any, ...]]], list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        inbox = Inbox(loop)
        sink: list[tuple[str, tuple[Any, ...]]] = []
        recorder = Recorder("ok", sink, 1)
        inbox.post(Broken(), ("first",))
        inbox.post(recorder, ("second",))
        await asyncio.wait_for(recorder.all_in.wait(), DEADLINE)
        return sink, reported

    sink, reported = run_on(kind, main())
    assert sink == [("ok", ("second",))]
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], ValueError)


@pytest.mark.parametrize("kind", LOOPS)
def test_an_interrupt_in_one_delivery_leaves_the_rest_for_the_next_drain(kind: str) -> None:
    # A wake() may resume a request's task inline (_waiter.py), so a
    # KeyboardInterrupt can come out of it; the items after it still arrive.
    class Interrupting:
        def wake(self, item: tuple[Any, ...]) -> None:
            raise KeyboardInterrupt

    loop = new_loop(kind)
    sink: list[tuple[str, tuple[Any, ...]]] = []
    try:
        inbox = Inbox(loop)
        recorder = Recorder("ok", sink, 2)
        inbox.post(Interrupting(), ("first",))
        inbox.post(recorder, ("second",))
        inbox.post_spaced(recorder, ("third",))
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.wait_for(recorder.all_in.wait(), DEADLINE))
        loop.run_until_complete(asyncio.wait_for(recorder.all_in.wait(), DEADLINE))
    finally:
        loop.close()
    assert sink == [("ok", ("second",)), ("ok", ("third",))]


@pytest.mark.parametrize("kind", LOOPS)
def test_posting_to_a_closed_loop_raises_and_leaves_no_drain_pending(kind: str) -> None:
    loop = new_loop(kind)
    inbox = Inbox(loop)
    loop.close()
    with pytest.raises(RuntimeError):
        inbox.post(Recorder("r", [], 1), ("item",))
    assert inbox.scheduled is False


@pytest.mark.parametrize("kind", PIPE_LOOPS)
def test_the_wake_up_pipe_is_closed_once_the_loop_is_closed_and_the_inbox_dropped(
    kind: str,
) -> None:
    loop = new_loop(kind)
    inbox = Inbox(loop)
    finalizer = inbox._finalizer
    assert finalizer is not None  # a loop with add_reader gets the pipe
    del inbox
    gc.collect()
    assert finalizer.alive  # the loop still watches the pipe
    loop.close()
    gc.collect()
    assert not finalizer.alive


def open_fds() -> int:
    """Return how many file descriptors this process has open (Linux)."""
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.parametrize(
    ("kind", "pipe_fds", "threadsafe_calls"),
    [
        pytest.param("asyncio", 2, 0, id="asyncio"),
        pytest.param("uvloop", 2, 0, id="uvloop"),
        pytest.param("no-reader", 0, 1, id="no-reader"),
        pytest.param("refusing-reader", 0, 1, id="refusing-reader"),
    ],
)
def test_the_wake_up_is_a_pipe_where_the_loop_can_watch_one(
    kind: str, pipe_fds: int, threadsafe_calls: int
) -> None:
    """uvloop too: its call_soon_threadsafe writes with the GIL held (see Inbox).

    The loop's ``call_soon_threadsafe`` calls are counted (a subclass of the
    loop's class); the pipe shows as two more open descriptors.
    """
    base: type[asyncio.AbstractEventLoop]
    if kind == "uvloop":
        base = pytest.importorskip("uvloop").Loop
    else:
        bases = {"no-reader": NoReaderLoop, "refusing-reader": RefusingReaderLoop}
        base = bases.get(kind, asyncio.SelectorEventLoop)
    calls: list[str] = []

    class CountingLoop(base):  # type: ignore[valid-type,misc]
        def call_soon_threadsafe(self, callback: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(getattr(callback, "__name__", repr(callback)))
            return super().call_soon_threadsafe(callback, *args, **kwargs)

    async def main() -> tuple[int, list[tuple[str, tuple[Any, ...]]]]:
        before = open_fds()
        inbox = Inbox(asyncio.get_running_loop())
        opened = open_fds() - before
        sink: list[tuple[str, tuple[Any, ...]]] = []
        recorder = Recorder("r", sink, 1)
        worker = threading.Thread(target=inbox.post, args=(recorder, ("item",)))
        worker.start()
        await asyncio.wait_for(recorder.all_in.wait(), DEADLINE)
        worker.join(DEADLINE)
        return opened, sink

    loop = CountingLoop()
    try:
        opened, sink = loop.run_until_complete(main())
    finally:
        loop.close()
    assert sink == [("r", ("item",))]
    assert opened == pipe_fds
    assert calls.count("drain") == threadsafe_calls


def test_requests_on_one_loop_share_an_inbox_and_a_new_loop_gets_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Inbox] = []

    class CountingInbox(Inbox):
        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            super().__init__(loop)
            made.append(self)

    monkeypatch.setattr(wsgi_to_asgi, "Inbox", CountingInbox)
    bridge = WSGIToASGI(validator(hello))

    async def two_requests() -> None:
        for _ in range(2):
            server = FakeServer()
            await asyncio.wait_for(bridge(make_scope(), server.receive, server.send), DEADLINE)
            assert server.body == b"hi"

    run_on("asyncio", two_requests())
    assert len(made) == 1
    run_on("asyncio", two_requests())
    assert len(made) == 2
    assert made[0].loop is not made[1].loop


@pytest.mark.parametrize("kind", LOOPS)
def test_post_finished_batches_short_jobs_and_spaces_long_ones(kind: str) -> None:
    """A job that held its thread for SPACED_AFTER seconds or more is delivered spaced."""

    def post_all(inbox: Inbox, target: Wakeable) -> None:
        now = monotonic()
        long_ago = now - 2 * SPACED_AFTER
        inbox.post_finished(target, ("long1",), long_ago)
        inbox.post_finished(target, ("short1",), now)
        inbox.post_finished(target, ("long2",), long_ago)
        inbox.post_finished(target, ("short2",), now)

    # Batched ones first, together; then the spaced ones in order.
    assert deliveries(kind, post_all, 4, follow_up=False) == ["short1", "short2", "long1", "long2"]
