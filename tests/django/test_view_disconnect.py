"""The bounded handler cancels an ``async def`` view whose client leaves (in process).

Like Django's own ``ASGIHandler`` (Django >= 5.0), a client's ``http.disconnect``
(ASGI HTTP spec, "Disconnect - receive event") while an async view runs cancels
the view: it gets ``CancelledError``, nothing is sent, ``request_finished`` fires
and the request's thread goes back to the pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished

from asgishift.django_integration import get_asgi_application
from django_support.asgi_call import LeavingClient, call, http_scope

pytestmark = pytest.mark.urls("django_support.endless_urls")


async def eventually(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` on the loop until true; fail naming ``what`` after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
def finished() -> Iterator[list[object]]:
    """Senders of ``request_finished``, in order."""
    senders: list[object] = []

    def on_finished(sender: object, **kwargs: object) -> None:
        senders.append(sender)

    request_finished.connect(on_finished, weak=False)
    yield senders
    request_finished.disconnect(on_finished)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("view", ["poll", "stubborn"])
def test_long_poll_is_cancelled_when_the_client_leaves(view: str, finished: list[object]) -> None:
    """The view awaits for ever; the client leaves: the view gets ``CancelledError``,
    nothing is sent, ``request_finished`` fires once, and the handler's one thread
    serves the next request. The ``stubborn`` view answers anyway: its response is
    closed (that fires ``request_finished``) and not sent."""
    from django_support.endless_urls import events

    app = get_asgi_application(max_threads=1)
    started_before = events[f"{view} started"]
    cancelled_before = events[f"{view} cancelled"]
    threads_before = threading.active_count()
    sent: list[dict[str, Any]] = []

    async def scenario() -> Any:
        client = LeavingClient()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        request = asyncio.ensure_future(app(http_scope("GET", f"/{view}/"), client.receive, send))
        await eventually(lambda: events[f"{view} started"] == started_before + 1, 10, "the view")
        finished_before = len(finished)
        client.leave()
        # Before the fix the view ran on: the request never ended (and, its thread
        # blocked, the loop could not be shut down: the timeout mark ends the test).
        done, _ = await asyncio.wait({request}, timeout=10)
        assert done, "the request did not end after its client left"
        request.result()
        assert len(finished) == finished_before + 1
        return await asyncio.wait_for(call(app, "GET", "/ping/"), 10)

    try:
        ping = asyncio.run(scenario())
        threads_after = threading.active_count()
    finally:
        app.pool.shutdown()
    assert events[f"{view} cancelled"] == cancelled_before + 1
    assert sent == []
    assert (ping.status, ping.body) == (200, b"pong")
    assert threads_after <= threads_before + 1  # the handler's one thread


@pytest.mark.timeout(30)
def test_view_cancelled_during_a_call_on_its_thread(finished: list[object]) -> None:
    """Cancelled while a ``sync_to_async(thread_sensitive=True)`` call runs on the
    request's thread, the view gets ``CancelledError`` at once; the request ends, and
    ``request_finished`` fires, only once that call has returned."""
    from django_support.endless_urls import events, release_sync_call

    app = get_asgi_application(max_threads=1)
    release_sync_call.clear()
    sent: list[dict[str, Any]] = []
    before = {key: events[key] for key in ("sync call started", "in-thread cancelled")}

    async def scenario() -> None:
        client = LeavingClient()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = http_scope("GET", "/in-thread/")
        request = asyncio.ensure_future(app(scope, client.receive, send))
        await eventually(
            lambda: events["sync call started"] > before["sync call started"], 10, "the sync call"
        )
        finished_before = len(finished)
        client.leave()
        await eventually(
            lambda: events["in-thread cancelled"] > before["in-thread cancelled"], 10, "the cancel"
        )
        assert not request.done()
        assert len(finished) == finished_before
        release_sync_call.set()
        await asyncio.wait_for(request, 10)
        assert len(finished) == finished_before + 1

    try:
        asyncio.run(scenario())
    finally:
        release_sync_call.set()
        app.pool.shutdown()
    assert sent == []


def test_watched_view_gets_its_whole_body_and_answers() -> None:
    """An async view that awaits (so the watcher starts) still gets a body sent in
    several messages and its response: the watcher takes no body message."""
    app = get_asgi_application(max_threads=1)
    messages = [
        {"type": "http.request", "body": b"a" * 1000, "more_body": True},
        {"type": "http.request", "body": b"b" * 1000, "more_body": False},
    ]
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def scenario() -> None:
        await asyncio.wait_for(app(http_scope("POST", "/slow-echo/"), receive, send), 10)
        done.set()
        # No task of the handler is left waiting for the client.
        await asyncio.sleep(0)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == []

    try:
        asyncio.run(scenario())
    finally:
        app.pool.shutdown()
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"a" * 1000 + b"b" * 1000


@pytest.mark.timeout(30)
def test_server_cancelling_the_request_cancels_the_view(finished: list[object]) -> None:
    """A server that cancels the request's task (as uvicorn does at the end of its
    graceful shutdown timeout) cancels the async view too: the view gets
    ``CancelledError``, ``request_finished`` fires, and the handler's one thread serves
    the next request. Before, the hop waited for its thread, which waited for the view,
    which nothing cancelled: the request never ended."""
    from django_support.endless_urls import events

    app = get_asgi_application(max_threads=1)
    started_before = events["poll started"]
    cancelled_before = events["poll cancelled"]

    async def scenario() -> Any:
        client = LeavingClient()  # never leaves

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError(f"nothing is sent for a cancelled request: {message}")

        request = asyncio.ensure_future(app(http_scope("GET", "/poll/"), client.receive, send))
        await eventually(lambda: events["poll started"] == started_before + 1, 10, "the view")
        finished_before = len(finished)
        request.cancel()
        done, _ = await asyncio.wait({request}, timeout=10)
        assert done, "the request did not end after it was cancelled"
        assert request.cancelled()
        assert len(finished) == finished_before + 1
        return await asyncio.wait_for(call(app, "GET", "/ping/"), 10)

    try:
        ping = asyncio.run(scenario())
    finally:
        app.pool.shutdown()
    assert events["poll cancelled"] == cancelled_before + 1
    assert (ping.status, ping.body) == (200, b"pong")
