"""A URLconf whose views give their generators the same names (asgishift.W004 tests).

Only the views marked ``# W004`` stream a sync generator: the names resolve per
scope (a view's own nested ``def`` first, then the module's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path


def rows() -> Iterator[str]:
    """A module-level sync generator."""
    yield "a,b\n"


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Streams its own ``async def gen``; another view has a sync ``gen``."""

    async def gen() -> AsyncIterator[str]:
        for n in range(3):
            yield f"{n}\n"
            await asyncio.sleep(0)

    return StreamingHttpResponse(gen())


def csv_export(request: HttpRequest) -> StreamingHttpResponse:
    """Streams its own sync ``gen``."""

    def gen() -> Iterator[str]:
        yield "a,b\n"

    return StreamingHttpResponse(gen())  # W004


async def async_rows(request: HttpRequest) -> StreamingHttpResponse:
    """Streams its own ``async def rows``, which hides the module's sync one."""

    async def rows() -> AsyncIterator[str]:
        yield "a,b\n"

    return StreamingHttpResponse(rows())


def module_rows(request: HttpRequest) -> StreamingHttpResponse:
    """Streams the module's sync ``rows``."""
    return StreamingHttpResponse(rows())  # W004


urlpatterns = [
    path("async/", async_stream),
    path("csv/", csv_export),
    path("async-rows/", async_rows),
    path("module-rows/", module_rows),
]
