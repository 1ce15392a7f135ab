"""Real Flask, FastAPI and Starlette apps behind one HybridRouter, for the live tests.

``hybrid`` is the router built in code; the ``asgishift serve --mount`` tests
mount ``api`` and ``star`` beside ``legacy`` by name. Lifespan hooks append
one line per event to the file named by ``ROUTER_EVENTS_FILE`` (when set), so
a test can read the order after the server has stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from wsgiref.validate import validator

from fastapi import FastAPI, Request, WebSocket
from flask import Flask, request, url_for
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket

from asgishift.bridge import HybridRouter, WSGIToASGI


def record(event: str) -> None:
    """Append ``event`` to ``$ROUTER_EVENTS_FILE`` (one line), when the variable is set."""
    path = os.environ.get("ROUTER_EVENTS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(event + "\n")


# --- the legacy WSGI app (Flask) ---------------------------------------------------

legacy = Flask("legacy")


@legacy.route("/", defaults={"rest": ""})
@legacy.route("/<path:rest>")
def whoami(rest: str) -> dict[str, Any]:
    """Echo what the WSGI side sees, including a URL Flask builds."""
    return {
        "app": "flask",
        "SCRIPT_NAME": request.environ["SCRIPT_NAME"],
        "PATH_INFO": request.environ["PATH_INFO"],
        "url_for": url_for("whoami", rest="x"),
    }


legacy_wsgi = validator(legacy)

# --- the new ASGI apps ----------------------------------------------------------------


@asynccontextmanager
async def api_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """FastAPI's own lifespan: recorded so the fan-out order can be checked."""
    record("api startup")
    yield
    record("api shutdown")


api = FastAPI(lifespan=api_lifespan)


@api.get("/whoami")
async def api_whoami(request: Request) -> dict[str, Any]:
    """Echo what a mounted ASGI app sees, including a URL FastAPI builds."""
    return {
        "app": "fastapi",
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
        "url_for": str(request.url_for("api_whoami").path),
    }


@api.websocket("/ws")
async def api_socket(websocket: WebSocket) -> None:
    """Answer one text message with ``fastapi:<text>``, then close."""
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"fastapi:{text}:{websocket.scope['root_path']}")
    await websocket.close()


async def star_home(request: Any) -> JSONResponse:
    """Say which app answered."""
    return JSONResponse({"app": "starlette", "root_path": request.scope["root_path"]})


async def star_socket(websocket: StarletteWebSocket) -> None:
    """Answer one text message with ``starlette:<text>``, then close."""
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"starlette:{text}")
    await websocket.close()


@asynccontextmanager
async def star_lifespan(app: Starlette) -> AsyncIterator[None]:
    """Starlette's own lifespan, recorded."""
    record("star startup")
    yield
    record("star shutdown")


star = Starlette(
    routes=[Route("/", star_home), WebSocketRoute("/ws", star_socket)], lifespan=star_lifespan
)

# --- hooks ------------------------------------------------------------------------------


def hook_start() -> None:
    """A sync startup hook."""
    record("hook startup")


async def hook_stop() -> None:
    """An async shutdown hook."""
    record("hook shutdown")


def fail_start() -> None:
    """A startup hook that cannot connect to its database."""
    raise ConnectionError("cannot reach the database at 127.0.0.1:1")


bridge = WSGIToASGI(legacy_wsgi)


def _recorded(app: Any, name: str) -> Any:
    """Return ``app`` with each lifespan message it receives recorded as ``"NAME startup"``..."""

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def recording_receive() -> Any:
            message = await receive()
            record(f"{name} {message['type'].rpartition('.')[2]}")
            return message

        await app(scope, recording_receive, send)

    return recorded


#: The bridge, with its lifespan events recorded (the fallback child).
_bridge_recorded = _recorded(bridge, "bridge")


#: The router built in code: Flask for everything but /api and /star.
hybrid = HybridRouter(
    _bridge_recorded,
    {"/api": api, "/star": star},
    on_startup=[hook_start],
    on_shutdown=[hook_stop],
)


#: ``hybrid``, with the lifespan messages the server sends it recorded as "server ...".
hybrid_recorded = _recorded(hybrid, "server")

#: WSGIToASGI with its own hooks (no router).
bridge_with_hooks = WSGIToASGI(legacy_wsgi, on_startup=[hook_start], on_shutdown=[hook_stop])
#: WSGIToASGI whose startup hook raises: the server must not start.
bridge_failing = WSGIToASGI(legacy_wsgi, on_startup=[fail_start])


async def _scope_probe(scope: Any, receive: Any, send: Any) -> None:
    """Answer with the scope's ``root_path``, ``path`` and ``raw_path`` as JSON."""
    if scope["type"] != "http":
        return
    raw = scope.get("raw_path")
    info = {
        "app": "probe",
        "root_path": scope["root_path"],
        "path": scope["path"],
        "raw_path": None if raw is None else raw.decode("latin-1"),
    }
    body = json.dumps(info).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


#: Prefixes with characters a client sends percent-encoded, beside /api.
hybrid_encoded = HybridRouter(
    bridge, {"/api": api, "/my docs": _scope_probe, "/caf\u00e9": _scope_probe}
)
