"""ASGI apps with middleware and serving hooks, served through ``ASGIToWSGI`` in
``test_a2w_middleware_live.py``.

``header_outside_gzip`` and ``gzip_outside_header`` serve the same Starlette
``StreamingResponse`` behind a ``BaseHTTPMiddleware`` that adds a header and a
``GZipMiddleware``, stacked in either order. ``quart_serving`` is a Quart app
whose ``before_serving`` / ``after_serving`` hooks append to a file.

Environment variables:

``MW_SERVING_EVENTS``
    the file the Quart hooks append ``before <pid> <token>`` and
    ``after <pid> <token>`` lines to.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any
from wsgiref.validate import validator

from quart import Quart
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from asgishift.bridge import ASGIToWSGI

#: The header the ``BaseHTTPMiddleware`` dispatch adds; its value is the request's path.
DISPATCH_HEADER = "x-dispatched"
#: ``GZipMiddleware(minimum_size=...)``: each chunk of /stream is larger.
GZIP_MINIMUM_SIZE = 64


async def _wait_for_file(path: str) -> None:
    """Wait until the test creates ``path`` (no asyncio.Event crosses from the test process)."""
    while not await asyncio.to_thread(os.path.exists, path):  # noqa: ASYNC110
        await asyncio.sleep(0.005)


def chunk(index: int, pad: int) -> bytes:
    """The ``index``-th line /stream sends: ``chunk <index> <pad letters>``."""
    return f"chunk {index} {'z' * pad}\n".encode()


async def stream(request: Request) -> Response:
    """Send ``n`` lines; before line ``i + 1`` wait for the file ``{gate}.{i}``."""
    count = int(request.query_params["n"])
    pad = int(request.query_params["pad"])
    gate = request.query_params["gate"]

    async def lines() -> AsyncIterator[bytes]:
        for index in range(count):
            if index:
                await _wait_for_file(f"{gate}.{index - 1}")
            yield chunk(index, pad)

    return StreamingResponse(lines(), media_type="text/plain")


class AddHeader(BaseHTTPMiddleware):
    """Add :data:`DISPATCH_HEADER` to every response."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers[DISPATCH_HEADER] = request.url.path
        return response


def _starlette(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/stream", stream)], middleware=list(middleware))


_ADD_HEADER = Middleware(AddHeader)
_GZIP = Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE)

#: The first middleware listed is the outermost.
header_outside_gzip = validator(ASGIToWSGI(_starlette(_ADD_HEADER, _GZIP)))
gzip_outside_header = validator(ASGIToWSGI(_starlette(_GZIP, _ADD_HEADER)))


# --- Quart serving hooks -----------------------------------------------------------

quart_app = Quart(__name__)
#: Set by the ``before_serving`` hook only (module state, not ``g``).
SERVING: dict[str, Any] = {}


def _append(line: str) -> None:
    with open(os.environ["MW_SERVING_EVENTS"], "a", encoding="utf-8") as file:
        file.write(f"{line}\n")


@quart_app.before_serving
async def before_serving() -> None:
    SERVING["token"] = os.urandom(8).hex()
    SERVING["pid"] = os.getpid()
    await asyncio.to_thread(_append, f"before {os.getpid()} {SERVING['token']}")


@quart_app.after_serving
async def after_serving() -> None:
    await asyncio.to_thread(_append, f"after {os.getpid()} {SERVING.get('token', '-')}")


@quart_app.get("/serving")
async def serving() -> dict[str, Any]:
    return {"serving": dict(SERVING), "pid": os.getpid()}


quart_serving = validator(ASGIToWSGI(quart_app))
