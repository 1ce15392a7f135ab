"""What the ASGI extension adds: an async view, a WebSocket chat, lifespan hooks.

``asgishift.flask_integration.ASGI`` is installed in :func:`notesapp.create_app`.
When the app is served through it (``notesapp.asgi:application``, or
``asgishift serve``, which finds the extension):

- ``before_serving`` opens one ``httpx.AsyncClient`` that every request shares;
  ``after_serving`` closes it; ``while_serving`` logs the serving span;
- ``GET /live/status`` is an ``async def`` view that awaits that client
  (it asks this same server for ``/api/notes``) on the server's event loop;
- ``GET /live/chat`` is a chat page whose WebSocket, ``/live/ws/<room>``,
  broadcasts each message to everyone in the room, signed with the session's
  sign-in name.

Served through the plain bridge (no extension found), ``/live/status`` still
works the way stock Flask runs async views, with a client per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
from flask import Blueprint, current_app, jsonify, render_template, request, session
from flask.typing import ResponseReturnValue

from asgishift.flask_integration import ASGI, WebSocket, WebSocketDisconnect

logger = logging.getLogger("notesapp.live")

bp = Blueprint("live", __name__, url_prefix="/live")
ext = ASGI()

#: Key of the shared client in ``app.extensions``.
CLIENT_KEY = "notesapp.http"

#: Open chat connections per room (one server process).
rooms: dict[str, set[WebSocket]] = {}


@ext.before_serving
async def open_client() -> None:
    """Open the HTTP client every request shares (connection pool, keep-alive)."""
    current_app.extensions[CLIENT_KEY] = httpx.AsyncClient(timeout=5.0)


@ext.after_serving
async def close_client() -> None:
    """Close the shared client when the server stops."""
    client = current_app.extensions.pop(CLIENT_KEY, None)
    if client is not None:
        await client.aclose()


@ext.while_serving
async def serving_span() -> AsyncIterator[None]:
    """Log how long the app was served."""
    started = time.monotonic()
    logger.info("notesapp: serving")
    yield
    logger.info("notesapp: stopped after %.1f s", time.monotonic() - started)


@bp.get("/status")
async def status() -> ResponseReturnValue:
    """Ask this server for its notes through the shared async client."""
    shared = current_app.extensions.get(CLIENT_KEY)
    url = request.host_url + "api/notes"
    if shared is not None:
        reply = await shared.get(url)
    else:  # no lifespan ran: stock Flask behaviour, one client per request
        async with httpx.AsyncClient(timeout=5.0) as client:
            reply = await client.get(url)
    return jsonify(
        notes=len(reply.json()),
        shared_client=shared is not None,
        client_id=id(shared) if shared is not None else None,
    )


@bp.get("/chat")
def chat_page() -> ResponseReturnValue:
    """The chat page; its script connects to :func:`chat`."""
    return render_template("chat.html", room=request.args.get("room", "lobby"))


@bp.route("/ws/<room>", websocket=True)
async def chat(ws: WebSocket, room: str) -> None:
    """Relay each text message to everyone in ``room`` as ``"name: text"``."""
    name = session.get("user") or "guest"
    members = rooms.setdefault(room, set())
    await ws.accept()
    members.add(ws)
    try:
        while True:
            text = await ws.receive()
            if not isinstance(text, str):
                continue
            line = f"{name}: {text}"
            for member in list(members):
                try:
                    await member.send(line)
                except WebSocketDisconnect:
                    members.discard(member)
    except WebSocketDisconnect:
        pass
    finally:
        members.discard(ws)
