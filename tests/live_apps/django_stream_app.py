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
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="asgishift-tests-not-secret",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["asgishift.django_integration"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

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
