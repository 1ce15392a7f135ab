"""A small ASGI app served by uWSGI through ``ASGIToWSGI`` (``test_a2w_uwsgi_live.py``).

Lighter than ``a2w_apps`` (Starlette only), for the tests that start many uWSGI
processes: whether the event loop runs between requests, and a lifespan whose
startup and shutdown use a thread pool (as startup code that loads a model or
opens a blocking client does).

Environment variables:

``A2W_EVENTS``
    a file; lifespan startup and shutdown append ``startup <pid>`` /
    ``shutdown <pid>`` lines to it.
``A2W_STARTUP_AT_IMPORT``
    when set, run lifespan startup when this module is imported (in uWSGI's
    master, before it forks the workers, unless ``--lazy-apps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from asgishift.bridge import ASGIToWSGI

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

EVENTS = os.environ.get("A2W_EVENTS")
#: Tasks the app started and left running after their response (kept referenced).
DETACHED: set[asyncio.Task[None]] = set()


def _event(line: str) -> None:
    if EVENTS:
        with open(EVENTS, "a", encoding="utf-8") as file:
            file.write(f"{line} {os.getpid()}\n")


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await asyncio.to_thread(_event, "startup")
    yield
    await asyncio.to_thread(_event, "shutdown")


async def pid_view(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


async def detached(request: Request) -> Response:
    """Answer at once; a task left running creates the file ``path`` 0.3 s later.

    By then the response has long gone and uWSGI's worker waits for the next
    connection: the file appears only if the event loop runs between requests.
    """
    path = request.query_params["path"]

    async def later() -> None:
        await asyncio.sleep(0.3)
        _touch(path)

    task = asyncio.get_running_loop().create_task(later())
    DETACHED.add(task)
    task.add_done_callback(DETACHED.discard)
    return PlainTextResponse("scheduled")


async def uwsgi_view(request: Request) -> Response:
    """What the uWSGI worker says of itself (``uwsgi.has_threads``: Python threads run)."""
    import uwsgi

    return JSONResponse({"has_threads": bool(uwsgi.has_threads), "version": uwsgi.version.decode()})


application = ASGIToWSGI(
    Starlette(
        routes=[
            Route("/pid", pid_view),
            Route("/detached", detached),
            Route("/uwsgi", uwsgi_view),
        ],
        lifespan=lifespan,
    )
)
if os.environ.get("A2W_STARTUP_AT_IMPORT"):
    application.startup()
