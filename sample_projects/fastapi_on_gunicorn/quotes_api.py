"""A small FastAPI app: a quotes API with a lifespan-managed store and a server-sent event feed.

It is an ordinary ASGI app; ``wsgi.py`` serves it from gunicorn through
``asgishift.bridge.ASGIToWSGI``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


class Quote(BaseModel):
    """A quote as the API takes it."""

    text: str
    author: str = "anonymous"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Open the store when the worker starts, close it when the worker exits."""
    store: dict[int, Quote] = {1: Quote(text="Make it work, make it right, make it fast.")}
    yield {"store": store, "worker_pid": os.getpid()}
    store.clear()


app = FastAPI(title="quotes", lifespan=lifespan)


@app.get("/quotes")
async def list_quotes(request: Request) -> dict[str, Any]:
    """Return every quote and the worker that answered."""
    store: dict[int, Quote] = request.state.store
    quotes = {key: quote.model_dump() for key, quote in store.items()}
    return {"quotes": quotes, "worker_pid": request.state.worker_pid}


@app.post("/quotes", status_code=201)
async def add_quote(quote: Quote, request: Request) -> dict[str, Any]:
    """Store a quote; return its id."""
    store: dict[int, Quote] = request.state.store
    key = max(store, default=0) + 1
    store[key] = quote
    return {"id": key}


@app.get("/quotes/{key}")
async def get_quote(key: int, request: Request) -> Quote:
    """Return one quote, or 404."""
    store: dict[int, Quote] = request.state.store
    if key not in store:
        raise HTTPException(status_code=404, detail=f"no quote {key}")
    return store[key]


@app.get("/ticks")
async def ticks(count: int = 3, interval: float = 0.5) -> StreamingResponse:
    """Send ``count`` server-sent events, ``interval`` seconds apart."""

    async def events() -> AsyncIterator[str]:
        for number in range(count):
            yield f"data: tick {number}\n\n"
            await asyncio.sleep(interval)

    return StreamingResponse(events(), media_type="text/event-stream")
