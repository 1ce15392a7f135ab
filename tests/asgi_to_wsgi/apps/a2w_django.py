"""A one-file Django project served through ``ASGIToWSGI`` (Django's own ASGI handler).

``A2W_EVENTS`` names a file; the slow view appends ``started <pid>`` to it, and
``cancelled <pid>`` when Django cancels it (its handler does when ``receive()``
says ``http.disconnect``). The streaming view sends a line, waits for the gate
file ``?gate=`` + ``.0``, and sends another.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from wsgiref.validate import validator

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="a2w-tests-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
)

from django.core.asgi import get_asgi_application  # noqa: E402 - after settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions  # noqa: E402

EVENTS = os.environ.get("A2W_EVENTS")


def _event(kind: str) -> None:
    if EVENTS:
        with open(EVENTS, "a", encoding="utf-8") as file:
            file.write(f"{kind} {os.getpid()}\n")


async def slow(request: HttpRequest) -> HttpResponse:
    """Answer after ``?s=`` seconds; record its start and a cancellation."""
    _event("started")
    try:
        await asyncio.sleep(float(request.GET.get("s", "1")))
    except asyncio.CancelledError:
        _event("cancelled")
        raise
    return HttpResponse("slow done", content_type="text/plain")


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    """Two lines from an async iterator; Django 5.0+ sends them from a task of its own."""
    gate = request.GET["gate"] + ".0"

    async def lines() -> AsyncIterator[bytes]:
        yield b"first\n"
        while not await asyncio.to_thread(os.path.exists, gate):  # noqa: ASYNC110 - a file gate
            await asyncio.sleep(0.005)
        yield b"last\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


urlpatterns = [path("slow/", slow), path("stream/", stream)]

application = validator(ASGIToWSGI(get_asgi_application(), ASGIToWSGIOptions(disconnect_grace=0.5)))
