"""A Django project in one module, served by asgishift's bounded handler with two threads,
whose views stream without end (client disconnect tests).

``/poll/`` is an ``async def`` long poll that waits for ever, counting its
start and its cancellation. ``/ticks/async/`` streams from an ``async def``
generator, ``/ticks/sync/`` from a sync one; each writes a line every 20 ms
until it is closed, and counts its closing. ``GET /status/`` answers with
those counts, how many generators are running, and the process's live thread
count, so tests assert on server-side facts. With two threads, a server that
keeps iterating (and so holding the thread of) responses whose clients left
stops answering after two of them.

Every request passes through :func:`lingering`, an async-only middleware (run on
the event loop, called from the handler's sync chain through ``async_to_sync``).
With ``?linger=before`` it waits for ever before calling the view, with
``?linger=after`` after the view answered; it counts ``linger <where> started``
and, when it gets ``CancelledError`` there, ``linger <where> cancelled``, and
``middleware saw CancelledError`` when the view's cancellation passes through it.
``request_started`` and ``request_finished`` are counted as ``request started`` and
``request finished``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="asgishift-tests-not-secret",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["asgishift.django_integration"],
    MIDDLEWARE=[f"{__name__}.lingering"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)

from django.core.signals import request_finished, request_started  # noqa: E402
from django.http import (  # noqa: E402
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402
from django.utils.decorators import async_only_middleware  # noqa: E402

from asgishift.django_integration import get_asgi_application  # noqa: E402

#: Seconds between two ticks of a stream.
TICK = 0.02

#: ``"<kind> started"`` and ``"<kind> closed"`` per generator kind (``async``, ``sync``).
events: Counter[str] = Counter()
lock = threading.Lock()


def note(event: str) -> None:
    """Count ``event`` (from the loop or from a thread)."""
    with lock:
        events[event] += 1


async def async_ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``tick N`` lines from an ``async def`` generator until it is closed."""

    async def ticks() -> AsyncIterator[str]:
        note("async started")
        try:
            n = 0
            while True:
                yield f"tick {n}\n"
                n += 1
                await asyncio.sleep(TICK)
        finally:
            note("async closed")

    return StreamingHttpResponse(ticks(), content_type="text/plain")


def sync_ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``tick N`` lines from a sync generator until it is closed."""

    def ticks() -> Iterator[str]:
        note("sync started")
        try:
            n = 0
            while True:
                yield f"tick {n}\n"
                n += 1
                time.sleep(TICK)
        finally:
            note("sync closed")

    return StreamingHttpResponse(ticks(), content_type="text/plain")


async def long_poll(request: HttpRequest) -> HttpResponse:
    """Wait for ever (a long poll nobody answers); count ``poll started`` and, when the
    view gets ``CancelledError`` (its client left), ``poll cancelled``."""
    note("poll started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        note("poll cancelled")
        raise
    return HttpResponse(b"never")  # pragma: no cover


async def linger(where: str) -> None:
    """Wait for ever, counting ``linger <where> started`` and ``linger <where> cancelled``."""
    note(f"linger {where} started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        note(f"linger {where} cancelled")
        raise


@async_only_middleware
def lingering(get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> Any:
    """An async-only middleware that waits for ever where ``?linger=`` says (``before``
    or ``after`` the view), and counts a ``CancelledError`` passing out of the view."""

    async def middleware(request: HttpRequest) -> HttpResponseBase:
        where = request.GET.get("linger")
        if where == "before":
            await linger("before")
        try:
            response = await get_response(request)
        except asyncio.CancelledError:
            note("middleware saw CancelledError")
            raise
        if where == "after":
            await linger("after")
        return response

    return middleware


def on_started(sender: object, **kwargs: object) -> None:
    """Count ``request started`` (``request_started``)."""
    note("request started")


def on_finished(sender: object, **kwargs: object) -> None:
    """Count ``request finished`` (``request_finished``, due also for a cancelled request)."""
    note("request finished")


request_started.connect(on_started)
request_finished.connect(on_finished)


def status(request: HttpRequest) -> JsonResponse:
    """``{"events": {...}, "threads": N}``: the counts so far and ``threading.active_count()``."""
    with lock:
        counts = dict(events)
    return JsonResponse({"events": counts, "threads": threading.active_count()})


urlpatterns = [
    path("ticks/async/", async_ticks),
    path("ticks/sync/", sync_ticks),
    path("poll/", long_poll),
    path("status/", status),
]

application = get_asgi_application(max_threads=2)
