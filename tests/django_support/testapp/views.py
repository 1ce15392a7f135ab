"""Views of the shared test URLconf (``django_support.urls``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from django_support.testapp.models import Item


def item_count(request: HttpRequest) -> JsonResponse:
    """Sync view with one ORM query: ``{"items": N, "thread": ident}``."""
    return JsonResponse({"items": Item.objects.count(), "thread": threading.get_ident()})


async def async_hello(request: HttpRequest) -> JsonResponse:
    """Async view: ``{"hello": "async"}`` after one loop iteration."""
    await asyncio.sleep(0)
    return JsonResponse({"hello": "async"})


def state_value(request: HttpRequest) -> HttpResponse:
    """Return ``request.state.greeting`` (set by a lifespan hook)."""
    return HttpResponse(str(request.state.greeting))  # type: ignore[attr-defined]


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``chunk-0`` … ``chunk-4`` from a sync generator."""

    def chunks() -> Iterator[bytes]:
        for n in range(5):
            yield f"chunk-{n}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``part-0`` … ``part-2`` from an async generator."""

    async def parts() -> AsyncIterator[bytes]:
        for n in range(3):
            await asyncio.sleep(0)
            yield f"part-{n}\n".encode()

    return StreamingHttpResponse(parts(), content_type="text/plain")


def failing(request: HttpRequest) -> HttpResponse:
    """Raise, so the handler must answer 500."""
    raise RuntimeError("view failed on purpose")


def echo_body(request: HttpRequest) -> HttpResponse:
    """Return the request body's length and the method."""
    return HttpResponse(f"{request.method} {len(request.body)}")
