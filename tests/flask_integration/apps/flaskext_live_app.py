"""A Flask app using asgishift's extension, served by the live tests.

``asgi_app`` is the ASGI application (``uvicorn flaskext_live_app:asgi_app``);
``app`` is the Flask app itself (``asgishift serve flaskext_live_app:app``).
Environment: ``FLASKEXT_FAIL_STARTUP=1`` makes ``before_serving`` raise;
``FLASKEXT_MAX_WORKERS`` sets ``ASGISHIFT_MAX_WORKERS``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request, session, url_for

from asgishift.flask_integration import ASGI, WebSocket, WebSocketDisconnect

app = Flask(__name__)
app.secret_key = "flaskext-live-tests"
app.config["ASGISHIFT_MAX_WORKERS"] = int(os.environ.get("FLASKEXT_MAX_WORKERS", "4"))
ext = ASGI(app)
asgi_app = ext.asgi_app

#: Objects made at startup, shared by every request.
shared: dict[str, Any] = {}
#: Peak-concurrency bookkeeping for /gather.
gate: dict[str, Any] = {"in_flight": 0, "peak": 0, "threads_peak": 0}


@ext.before_serving
async def start() -> None:
    if os.environ.get("FLASKEXT_FAIL_STARTUP"):
        raise RuntimeError("flaskext startup refused: FLASKEXT_FAIL_STARTUP is set")
    shared["loop"] = asyncio.get_running_loop()
    shared["lock"] = asyncio.Lock()  # bound to the server loop once used
    shared["started"] = True


@ext.while_serving
async def serving() -> AsyncIterator[None]:
    shared["while_serving"] = "up"
    yield
    shared["while_serving"] = "down"


@app.before_request
async def mark() -> Any:
    g.marker = "async-before"
    if request.args.get("refuse"):
        return "refused by before_request", 403
    return None


@app.get("/sync")
def sync_view() -> Any:
    return jsonify(thread=threading.current_thread().name, marker=g.marker)


@app.get("/async/<int:n>")
async def async_view(n: int) -> Any:
    await asyncio.sleep(0)
    async with shared["lock"]:
        same_loop = asyncio.get_running_loop() is shared["loop"]
    session["n"] = n
    return jsonify(
        n=n,
        marker=g.marker,
        same_loop=same_loop,
        thread=threading.current_thread().name,
        while_serving=shared.get("while_serving"),
        url=url_for("chat.room", name="x", _external=False),
    )


@app.get("/session")
async def read_session() -> Any:
    return jsonify(n=session.get("n"))


@app.post("/echo")
async def echo() -> Any:
    data = request.get_data()
    return Response(data, mimetype="application/octet-stream")


@app.get("/gather")
async def gather() -> Any:
    """Wait until ``want`` requests are in this view at once; report the peak."""
    want = int(request.args["want"])
    gate["in_flight"] += 1
    gate["peak"] = max(gate["peak"], gate["in_flight"])
    gate["threads_peak"] = max(gate["threads_peak"], threading.active_count())
    event: asyncio.Event = gate.setdefault("event", asyncio.Event())
    if gate["in_flight"] >= want:
        event.set()
    try:
        await asyncio.wait_for(event.wait(), 20)
    finally:
        gate["in_flight"] -= 1
    return jsonify(peak=gate["peak"], threads_peak=gate["threads_peak"])


@app.get("/gather/reset")
def gather_reset() -> Any:
    gate.update(in_flight=0, peak=0, threads_peak=0)
    gate.pop("event", None)
    return jsonify(threads=threading.active_count())


@app.get("/sse")
async def sse() -> Response:
    """Server-sent events: one event, then wait for /sse/next before the next one."""
    shared["next"] = asyncio.Event()

    async def events() -> AsyncIterator[str]:
        try:
            yield "data: first\n\n"
            await asyncio.wait_for(shared["next"].wait(), 20)
            yield "data: second\n\n"
        finally:
            shared["sse_closed"] = shared.get("sse_closed", 0) + 1

    return Response(events(), mimetype="text/event-stream")


@app.get("/sse/closed")
def sse_closed() -> Any:
    return jsonify(closed=shared.get("sse_closed", 0))


@app.get("/sse/next")
async def sse_next() -> Any:
    shared["next"].set()
    return "ok"


@app.get("/rows")
async def rows() -> Response:
    """An endless sync generator blocking 0.05 s per row (a database cursor, say)."""

    def produce() -> Iterator[str]:
        n = 0
        try:
            while True:
                yield f"row {n}\n"
                n += 1
                time.sleep(0.05)
        finally:
            shared["rows_closed"] = shared.get("rows_closed", 0) + 1

    return Response(produce(), mimetype="text/plain")


@app.get("/rows/closed")
async def rows_closed() -> Any:
    return jsonify(closed=shared.get("rows_closed", 0))


@app.get("/fail")
async def fail() -> Any:
    raise ValueError("flaskext async view failure")


@app.get("/background")
async def background() -> Any:
    async def job() -> None:
        await asyncio.sleep(0)
        shared["background"] = "done"

    ext.add_background_task(job)
    return "scheduled"


@app.get("/background/result")
def background_result() -> Any:
    return jsonify(result=shared.get("background"))


@app.route("/push", websocket=True)
async def push(ws: WebSocket) -> None:
    """Only sends, every 0.05 s; records how it ended in ``shared["push"]``."""
    outcome = "returned"
    try:
        n = 0
        while True:
            await ws.send(f"tick {n}")
            n += 1
            await asyncio.sleep(0.05)
    except WebSocketDisconnect:
        outcome = "WebSocketDisconnect"
        raise
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        shared.setdefault("push", []).append(outcome)


@app.get("/push/ended")
async def push_ended() -> Any:
    return jsonify(ended=shared.get("push", []))


chat = Blueprint("chat", __name__, url_prefix="/chat")


@chat.route("/<name>", websocket=True)
async def room(ws: WebSocket, name: str) -> None:
    while True:
        message = await ws.receive()
        if message == "close":
            await ws.close(4001, "asked")
            return
        if message == "boom":
            raise RuntimeError("flaskext websocket failure")
        if isinstance(message, bytes):
            await ws.send(message[::-1])
        else:
            await ws.send(f"{name}|{message}|{session.get('n')}|{g.marker}")


app.register_blueprint(chat)
