import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render

from shelf.models import Book

GREETING = "Welcome to the shelf"


def index(request: HttpRequest) -> HttpResponse:
    """Sync view: the ten newest books (one query) in a template with a static stylesheet."""
    books = list(Book.objects.all()[:10])
    return render(request, "shelf/index.html", {"books": books, "greeting": GREETING})


def count(request: HttpRequest) -> JsonResponse:
    """Sync view with one ORM query: ``{"books": N}`` (the benchmark's view)."""
    return JsonResponse({"books": Book.objects.count()})


async def async_count(request: HttpRequest) -> JsonResponse:
    """Async view: the book count through the async ORM, and the lifespan state."""
    state = getattr(request, "state", None)
    started = state["started_at"] if state is not None and "started_at" in state else None
    return JsonResponse({"books": await Book.objects.acount(), "started_at": started})


async def ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Streaming response from an async generator: ``tick 0`` … ``tick 4``."""

    async def lines() -> AsyncIterator[str]:
        for n in range(5):
            await asyncio.sleep(0.01)
            yield f"tick {n}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")
