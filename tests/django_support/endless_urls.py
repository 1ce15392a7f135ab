"""A URLconf with views that stream without end until closed (client disconnect tests).

Kept out of ``django_support.urls`` so the system checks, which scan that
URLconf for sync streaming views, do not see it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

#: Seconds between two parts of a stream.
TICK = 0.02

#: ``"<kind> closed"`` per generator kind (``async``, ``sync``), counted when closed.
events: Counter[str] = Counter()
_lock = threading.Lock()


def _note(event: str) -> None:
    with _lock:
        events[event] += 1


def async_ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``tick N`` lines from an ``async def`` generator until it is closed."""

    async def ticks() -> AsyncIterator[bytes]:
        try:
            n = 0
            while True:
                yield f"tick {n}\n".encode()
                n += 1
                await asyncio.sleep(TICK)
        finally:
            _note("async closed")

    return StreamingHttpResponse(ticks(), content_type="text/plain")


def sync_ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``tick N`` lines from a sync generator until it is closed."""

    def ticks() -> Iterator[bytes]:
        try:
            n = 0
            while True:
                yield f"tick {n}\n".encode()
                n += 1
                time.sleep(TICK)
        finally:
            _note("sync closed")

    return StreamingHttpResponse(ticks(), content_type="text/plain")


async def long_poll(request: HttpRequest) -> HttpResponse:
    """Wait for ever (a long poll nobody answers); count ``poll started`` and ``poll
    cancelled`` (the view got ``CancelledError``), re-raising the cancellation."""
    _note("poll started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        _note("poll cancelled")
        raise
    return HttpResponse(b"never")  # pragma: no cover


async def stubborn_poll(request: HttpRequest) -> HttpResponse:
    """Like :func:`long_poll`, but answers anyway when cancelled (``stubborn started``,
    ``stubborn cancelled``)."""
    _note("stubborn started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        _note("stubborn cancelled")
    return HttpResponse(b"too late")


#: Set by a test to let :func:`poll_on_request_thread`'s sync call return.
release_sync_call = threading.Event()


def _sync_call() -> None:
    _note("sync call started")
    release_sync_call.wait(10)
    _note("sync call ended")


async def poll_on_request_thread(request: HttpRequest) -> HttpResponse:
    """Await a ``sync_to_async(thread_sensitive=True)`` call (ORM style: it runs on the
    request's thread) until :data:`release_sync_call` is set; count ``in-thread
    cancelled`` when cancelled."""
    try:
        await sync_to_async(_sync_call, thread_sensitive=True)()
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        _note("in-thread cancelled")
        raise
    return HttpResponse(b"never")  # pragma: no cover


async def slow_echo(request: HttpRequest) -> HttpResponse:
    """Answer the request body after a few loop turns (``await asyncio.sleep``)."""
    await asyncio.sleep(TICK)
    return HttpResponse(request.body)


# Django 4.2's csrf_exempt() would wrap the coroutine function in a sync one.
slow_echo.csrf_exempt = True  # type: ignore[attr-defined]


def ping(request: HttpRequest) -> HttpResponse:
    """Answer ``pong``."""
    return HttpResponse(b"pong")


urlpatterns = [
    path("ticks/async/", async_ticks),
    path("ticks/sync/", sync_ticks),
    path("poll/", long_poll),
    path("stubborn/", stubborn_poll),
    path("in-thread/", poll_on_request_thread),
    path("slow-echo/", slow_echo),
    path("ping/", ping),
]
