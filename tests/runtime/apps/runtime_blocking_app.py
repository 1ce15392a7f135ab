"""Apps for the live runtime tests: one endpoint blocks the loop, one does not.

``inner`` (ASGI): ``GET /block`` calls ``time.sleep(0.4)`` inside the coroutine
(the mistake the detector exists for); ``GET /offload`` sleeps as long in
``asyncio.to_thread`` (the fix). Both answer ``200`` with a plain-text body
naming the endpoint. ``app`` is ``inner`` wrapped in the middleware.

``wsgi_app`` (WSGI, validated): sleeps 0.2 s and reads this file, which is
fine in WSGI code: the bridge runs it on a worker thread. ``mixed_app`` (ASGI)
serves ``/wsgi/...`` with ``wsgi_app`` through ``WSGIToASGI`` and everything
else with ``inner``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from wsgiref.validate import validator

from asgishift._types import Environ, Receive, Scope, Send, StartResponse
from asgishift.bridge import WSGIToASGI
from asgishift.runtime import BlockingDetectorMiddleware


async def blocking_endpoint() -> bytes:
    # The hazard under test: blocks the event loop for 0.4 s, well past the thresholds
    # the tests use (100-120 ms, caught at any phase after 1.25 times that) even when
    # a loaded machine wakes the lag monitor's thread late.
    time.sleep(0.4)  # noqa: ASYNC251
    return b"block"


async def offloading_endpoint() -> bytes:
    await asyncio.to_thread(time.sleep, 0.2)
    return b"offload"


async def inner(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    endpoints = {"/block": blocking_endpoint, "/offload": offloading_endpoint}
    endpoint = endpoints.get(scope["path"])
    body = await endpoint() if endpoint is not None else b"not found"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if endpoint is not None else 404,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = BlockingDetectorMiddleware(inner, lag_threshold_ms=100.0)


def _wsgi_view(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    time.sleep(0.2)
    with open(__file__, "rb") as source:
        first_line = source.readline()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [first_line]


wsgi_app = validator(_wsgi_view)

_bridged = WSGIToASGI(wsgi_app)


async def mixed_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/wsgi"):
        await _bridged(scope, receive, send)
    else:
        await inner(scope, receive, send)
