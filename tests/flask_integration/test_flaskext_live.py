"""The Flask extension on real ASGI servers (uvicorn, hypercorn, daphne, granian).

Talks to ``apps/flaskext_live_app.py`` with httpx and the ``websockets``
client: async views on the server's loop, sync views on the bridge's threads,
sessions shared between HTTP and WebSocket, server-sent events streaming from
an async generator, errors, background tasks, and 200 requests waiting in an
async view at once with only 4 worker threads.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import httpx
import pytest
from flaskext_helpers import FLASK_APPS_DIR
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from live import LiveServer, live_server

pytestmark = pytest.mark.live


def _ws_url(server: LiveServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def test_async_view_runs_on_the_server_loop(flask_server: LiveServer) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        first = client.get("/async/7")
        second = client.get("/async/8")
    assert first.status_code == 200, first.text
    body = first.json()
    # The asyncio.Lock made at startup works in the view: same loop, no thread hop.
    assert body["same_loop"] is True
    assert second.json()["same_loop"] is True
    assert body["marker"] == "async-before"
    assert body["while_serving"] == "up"
    # Werkzeug builds WebSocket rules as ws:// URLs.
    assert body["url"] == _ws_url(flask_server, "/chat/x")
    assert not body["thread"].startswith("asgishift-bridge")


def test_sync_view_runs_on_a_bridge_thread(flask_server: LiveServer) -> None:
    response = httpx.get(flask_server.url + "/sync", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"thread": response.json()["thread"], "marker": "async-before"}
    assert response.json()["thread"].startswith("asgishift-bridge")


def test_session_set_in_async_view_is_read_back(flask_server: LiveServer) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        client.get("/async/42")
        assert client.get("/session").json() == {"n": 42}


def test_before_request_refusal_and_body_echo(flask_server: LiveServer) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        refused = client.get("/async/1", params={"refuse": "1"})
        assert refused.status_code == 403
        assert refused.text == "refused by before_request"
        payload = bytes(range(256)) * 1000
        echoed = client.post("/echo", content=payload)
        assert echoed.status_code == 200
        assert echoed.content == payload


def test_async_view_error_is_500_and_logged(flask_server: LiveServer) -> None:
    response = httpx.get(flask_server.url + "/fail", timeout=10)
    assert response.status_code == 500
    flask_server.wait_for_log(r"flaskext async view failure")
    # The server keeps serving.
    assert httpx.get(flask_server.url + "/async/2", timeout=10).status_code == 200


def test_sse_streams_before_the_generator_ends(flask_server: LiveServer) -> None:
    with (
        httpx.Client(base_url=flask_server.url, timeout=10) as client,
        client.stream("GET", "/sse") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "data: first"
        # The second event is only produced after this request, so the first
        # one must have reached us while the generator was still waiting.
        assert httpx.get(flask_server.url + "/sse/next", timeout=10).text == "ok"
        rest = [line for line in lines if line]
        assert rest == ["data: second"]


def test_sse_generator_is_closed_when_the_client_leaves(flask_server: LiveServer) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        before = client.get("/sse/closed").json()["closed"]
    with (
        httpx.Client(base_url=flask_server.url, timeout=10) as client,
        client.stream("GET", "/sse") as stream,
    ):
        assert next(stream.iter_lines()) == "data: first"
    # Leaving the block closed the connection while the generator waits.
    deadline = time.monotonic() + 10
    closed = before
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        while closed == before and time.monotonic() < deadline:
            closed = client.get("/sse/closed").json()["closed"]
    assert closed == before + 1


def test_sync_generator_of_async_view_leaves_the_loop_free_and_is_closed(
    flask_server: LiveServer,
) -> None:
    """A sync body is read in a worker thread: other requests are served while it
    streams, and the client leaving stops it and closes it (PEP 3333 ``close()``)."""
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        before = client.get("/rows/closed").json()["closed"]
    with (
        httpx.Client(base_url=flask_server.url, timeout=10) as client,
        client.stream("GET", "/rows") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == "row 0"
        # The generator blocks between rows; the loop must still answer.
        assert httpx.get(flask_server.url + "/async/3", timeout=5).status_code == 200
        assert next(lines) == "row 1"
    deadline = time.monotonic() + 10
    closed = before
    with httpx.Client(base_url=flask_server.url, timeout=5) as client:
        while closed == before and time.monotonic() < deadline:
            closed = client.get("/rows/closed").json()["closed"]
    assert closed == before + 1


def test_background_task_runs_on_the_loop(flask_server: LiveServer) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        assert client.get("/background").text == "scheduled"
        deadline = time.monotonic() + 10
        result = None
        while time.monotonic() < deadline:
            result = client.get("/background/result").json()["result"]
            if result == "done":
                break
        assert result == "done"


def test_websocket_text_bytes_session_and_close(flask_server: LiveServer) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        client.get("/async/5")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    with connect(_ws_url(flask_server, "/chat/lobby"), additional_headers={"Cookie": cookie}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "lobby|hello|5|async-before"
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=10) == b"\x03\x02\x01"
        ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001


def test_websocket_view_error_closes_with_1011(flask_server: LiveServer) -> None:
    with connect(_ws_url(flask_server, "/chat/err")) as ws:
        ws.send("boom")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    flask_server.wait_for_log(r"flaskext websocket failure")


def test_websocket_refused_by_before_request(flask_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws_url(flask_server, "/chat/lobby?refuse=1"), open_timeout=10)
    assert refused.value.response.status_code == 403


def test_websocket_unknown_path_is_refused(flask_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws_url(flask_server, "/nowhere"), open_timeout=10)
    assert refused.value.response.status_code in (403, 404)


def _push_ended(server: LiveServer, count: int) -> list[str]:
    """Poll ``/push/ended`` until it lists ``count`` ended push views (10 s at most)."""
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=server.url, timeout=5) as client:
        while True:
            ended: list[str] = client.get("/push/ended").json()["ended"]
            if len(ended) >= count or time.monotonic() > deadline:
                return ended


def test_push_only_websocket_view_sees_the_client_leave(flask_server: LiveServer) -> None:
    """``send()`` raises WebSocketDisconnect once the client closed or dropped the
    connection, on every server, and nothing is logged as an app error."""
    before = len(_push_ended(flask_server, 0))
    with connect(_ws_url(flask_server, "/push")) as ws:
        assert ws.recv(timeout=10) == "tick 0"
    assert _push_ended(flask_server, before + 1)[before:] == ["WebSocketDisconnect"]
    with connect(_ws_url(flask_server, "/push")) as ws:
        assert ws.recv(timeout=10) == "tick 0"
        # Abort: a TCP reset, no close frame.
        ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.socket.close()
    ended = _push_ended(flask_server, before + 2)
    assert ended[before:] == ["WebSocketDisconnect", "WebSocketDisconnect"]
    assert "ClientDisconnected" not in flask_server.log()


async def _gather(url: str, want: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=want, max_keepalive_connections=want)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(client.get("/gather", params={"want": want}) for _ in range(want))
        )


def test_200_concurrent_async_requests_hold_no_threads(flask_server: LiveServer) -> None:
    """With ASGISHIFT_MAX_WORKERS=4 (the app's config) 200 requests wait in the view at once.

    A design that held a worker thread per awaiting view could never have more
    than 4 in the view together (the rest would queue or get 503).
    """
    baseline = httpx.get(flask_server.url + "/gather/reset", timeout=10).json()["threads"]
    responses = asyncio.run(_gather(flask_server.url, 200))
    assert [r.status_code for r in responses] == [200] * 200
    peaks = {r.json()["peak"] for r in responses}
    assert peaks == {200}
    threads_peak = max(r.json()["threads_peak"] for r in responses)
    # At most the bridge's 4 workers beyond the baseline: no thread per request.
    assert threads_peak <= baseline + 4


def test_failing_before_serving_stops_uvicorn_with_the_error() -> None:
    env = {"FLASKEXT_FAIL_STARTUP": "1"}
    with (
        pytest.raises(RuntimeError, match="flaskext startup refused") as failed,
        live_server("uvicorn", "flaskext_live_app:asgi_app", app_dir=FLASK_APPS_DIR, env=env),
    ):
        pass
    assert "exited" in str(failed.value)
