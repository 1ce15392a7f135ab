"""Lifespan hook: one ``httpx.AsyncClient`` for the whole server, closed at shutdown."""

import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx


@contextlib.asynccontextmanager
async def http_client(state: MutableMapping[str, Any]) -> AsyncIterator[None]:
    """Put a shared client in ``state`` (``request.state.http`` in views)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        state["http"] = client
        yield
