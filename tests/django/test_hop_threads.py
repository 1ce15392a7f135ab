"""HopThreads and ThreadLease: the bounded handler's shared-queue threads, real threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from django.db import connections

from asgishift.django_integration import get_asgi_application
from asgishift.django_integration._executors import ThreadHop
from asgishift.django_integration._threads import HopThreads
from django_support.asgi_call import call

pytestmark = pytest.mark.filterwarnings(
    # Django warns when a sync iterator is consumed under ASGI; that is the point here.
    "ignore:StreamingHttpResponse must consume synchronous iterators:Warning"
)


@pytest.fixture
def threads() -> Iterator[HopThreads]:
    pool = HopThreads(4)
    yield pool
    pool.shutdown()


def test_max_threads_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HopThreads(0)


def test_sequential_hops_reuse_one_thread(threads: HopThreads) -> None:
    # The hop wakes the loop only after its thread counts as free again, so the
    # loop never starts a second thread for the next, sequential, hop.
    hop = ThreadHop()

    async def main() -> set[int]:
        return {await hop(threads, threading.get_ident) for _ in range(300)}

    idents = asyncio.run(main())
    assert len(idents) == 1
    assert threads.threads_started == 1


def test_concurrent_hops_use_at_most_max_threads() -> None:
    pool = HopThreads(2)
    hop = ThreadHop()

    async def main() -> list[int]:
        return await asyncio.gather(*(hop(pool, threading.get_ident) for _ in range(40)))

    try:
        idents = asyncio.run(main())
    finally:
        pool.shutdown()
    assert len(idents) == 40
    assert 1 <= len(set(idents)) <= 2
    assert pool.threads_started <= 2


def test_hop_cancelled_while_queued_never_runs() -> None:
    pool = HopThreads(1)
    hop = ThreadHop()
    busy = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def block() -> str:
        busy.set()
        release.wait(10)
        return "first"

    async def main() -> tuple[str, str]:
        first = asyncio.ensure_future(hop(pool, block))
        assert await asyncio.to_thread(busy.wait, 10)
        second = asyncio.ensure_future(hop(pool, ran.append, "second"))
        await asyncio.sleep(0)  # queued behind block()
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        return await first, await hop(pool, lambda: "third")

    try:
        assert asyncio.run(main()) == ("first", "third")
    finally:
        pool.shutdown()
    assert ran == []


def test_run_on_every_thread_runs_once_on_each(threads: HopThreads) -> None:
    hop = ThreadHop()
    together = threading.Barrier(3)

    def meet() -> int:
        together.wait(10)  # three hops at once: three threads
        return threading.get_ident()

    async def main() -> list[int]:
        return await asyncio.gather(*(hop(threads, meet) for _ in range(3)))

    workers = set(asyncio.run(main()))
    seen: list[int] = []
    threads.run_on_every_thread(lambda: seen.append(threading.get_ident()))
    assert threads.threads_started == 3
    assert sorted(seen) == sorted(workers)


def test_exception_in_a_hop_reaches_the_caller(threads: HopThreads) -> None:
    hop = ThreadHop()

    def fail() -> None:
        raise KeyError("boom")

    async def main() -> None:
        await hop(threads, fail)

    with pytest.raises(KeyError, match="boom"):
        asyncio.run(main())


@pytest.mark.urls("django_support.lease_urls")
def test_streaming_response_is_iterated_on_its_view_thread_and_frees_it() -> None:
    app = get_asgi_application(max_threads=1)

    async def main() -> list[bytes]:
        bodies = []
        for _ in range(3):  # with one thread, a lease never released would hang here
            reply = await asyncio.wait_for(call(app, "GET", "/stream/thread/"), 10)
            assert reply.status == 200
            bodies.append(reply.body)
        return bodies

    try:
        bodies = asyncio.run(main())
    finally:
        app.pool.run_on_every_thread(connections.close_all)
        app.pool.shutdown()
    for body in bodies:
        view, _, iterated = body.decode().partition(" ")
        assert view.removeprefix("view=") == iterated.removeprefix("body=")
    assert app.pool.threads_started == 0  # shut down


@pytest.mark.urls("django_support.lease_urls")
def test_streaming_response_is_iterated_in_the_context_its_view_left() -> None:
    """Context variables the view set are handed back to the loop before a streaming
    response is iterated there (as ``sync_to_async`` hands them back)."""
    app = get_asgi_application(max_threads=1)
    try:
        reply = asyncio.run(asyncio.wait_for(call(app, "GET", "/stream/context/"), 10))
    finally:
        app.pool.run_on_every_thread(connections.close_all)
        app.pool.shutdown()
    assert (reply.status, reply.body) == (200, b"set-in-view")
