"""A Starlette app served by waitress through ``ASGIToWSGI`` (``test_a2w_waitress_live.py``).

It reuses the views and the lifespan of :mod:`a2w_apps` (``A2W_EVENTS`` names the
events file there) and adds what the waitress tests look at:

``/gated``
    a server-sent event stream: one event, then nothing until the test creates the
    file ``{gate}``; then a keep-alive comment every 20 ms until the client is gone.
    Its ``finally`` writes ``gated-ended:{gate}`` to the events file.
``/stream-background``
    streams two chunks (``ab``, no ``Content-Length``) with a Starlette background task
    that waits for the file ``{gate}``, then writes ``background-done:{gate}``.
``/upload``
    reads the request body with ``request.stream()`` and answers its size, SHA-256
    and how it arrived (the number of non-empty chunks and the largest).
``/_bridge``
    what this process holds: tasks on the bridge's loop, the bridge's open requests,
    threads (and how many are waitress's), file descriptors.
``/client-gone``
    what ``environ["waitress.client_disconnected"]`` of the request with the given
    ``X-Test-Id`` says now (``null`` where waitress put none in the environ).

Environment variables (besides those of :mod:`a2w_apps`):

``A2W_EXIT_ON_SIGTERM``
    when set, this module installs the ``SIGTERM`` handler a waitress user adds to
    their WSGI module: ``sys.exit(0)`` in the main thread, so waitress's loop ends
    as on Ctrl-C and the interpreter exits normally.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from a2w_apps import (
    OPTIONS,
    _event,
    _wait_for_file,
    endless,
    lifespan,
    pathsend_raw,
    quiet_stream,
    record_view,
    request_id_middleware,
    sendfile_view,
    sse,
    stats,
    thread_side_view,
    until_disconnected,
    zerocopy_view,
)
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from asgishift.bridge import ASGIToWSGI
from asgishift.bridge._loop_thread import process_loop

#: ``environ["waitress.client_disconnected"]`` per ``X-Test-Id`` (``None``: not offered).
CLIENT_CHECKS: dict[str, Callable[[], bool] | None] = {}


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, waitress!")


async def gated(request: Request) -> Response:
    gate = request.query_params["gate"]

    async def events() -> AsyncIterator[str]:
        try:
            yield "data: 0\n\n"
            await _wait_for_file(gate)
            while True:
                yield ": keep-alive\n\n"
                await asyncio.sleep(0.02)
        finally:
            _event(f"gated-ended:{gate}")

    return StreamingResponse(events(), media_type="text/event-stream")


async def stream_background(request: Request) -> Response:
    gate = request.query_params["gate"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    async def later() -> None:
        await _wait_for_file(gate)
        _event(f"background-done:{gate}")

    return StreamingResponse(chunks(), background=BackgroundTask(later))


async def upload(request: Request) -> Response:
    digest = hashlib.sha256()
    size = chunks = largest = 0
    async for chunk in request.stream():
        if chunk:
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
            largest = max(largest, len(chunk))
    return JSONResponse(
        {"size": size, "sha256": digest.hexdigest(), "chunks": chunks, "largest": largest}
    )


async def bridge_stats(request: Request) -> Response:
    names = [thread.name for thread in threading.enumerate()]
    return JSONResponse(
        {
            "pid": os.getpid(),
            "tasks": len(asyncio.all_tasks()),
            "open_requests": len(process_loop().open_requests),
            "threads": len(names),
            "waitress_threads": sum(name.startswith("waitress-") for name in names),
            "fds": len(os.listdir("/proc/self/fd")),
        }
    )


async def client_gone(request: Request) -> Response:
    check = CLIENT_CHECKS.get(request.query_params["id"])
    return JSONResponse({"offered": check is not None, "gone": None if check is None else check()})


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/gated", gated),
        Route("/stream-background", stream_background),
        Route("/upload", upload, methods=["POST"]),
        Route("/_bridge", bridge_stats),
        Route("/client-gone", client_gone),
        Route("/sse", sse),
        Route("/_stats", stats),
        Route("/endless", endless),
        Route("/quiet", quiet_stream),
        Route("/until-disconnected", until_disconnected, methods=["GET", "POST"]),
        Route("/record", record_view),
        Route("/thread-side", thread_side_view),
        Route("/file", sendfile_view),
        Route("/pathsend", pathsend_raw),
        Route("/zerocopy", zerocopy_view),
    ],
    lifespan=lifespan,
)


def client_check_probe(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Keep each request's ``waitress.client_disconnected`` (by ``X-Test-Id``) for /client-gone."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        key = environ.get("HTTP_X_TEST_ID")
        if key:
            CLIENT_CHECKS[key] = environ.get("waitress.client_disconnected")
        return wsgi_app(environ, start_response)

    return wrapped


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(0)


if os.environ.get("A2W_EXIT_ON_SIGTERM"):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

bridge = ASGIToWSGI(app, OPTIONS)
#: The bridge with two plain WSGI middlewares around it (no ``wsgiref.validate``: waitress
#: must see the bridge's own iterables, and its ``wsgi.file_wrapper`` on /file).
application = client_check_probe(request_id_middleware(bridge))
