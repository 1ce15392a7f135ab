"""ASGIToWSGI under real WSGI servers: scope, bodies, streaming, files, errors.

Each test talks to gunicorn (gthread and sync workers) or wsgiref serving a
Starlette or FastAPI app through ``ASGIToWSGI`` (see ``apps/a2w_apps.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from a2w_helpers import (
    WSGI_PARAMS,
    assert_sse_events_arrive_one_by_one,
    assert_sse_head_before_the_first_event,
    assert_streamed_past_a_gate,
    serve,
)

from live import LiveServer

DEADLINE = 20.0


def test_scope_from_environ(wsgi_server: LiveServer) -> None:
    response = httpx.get(
        f"{wsgi_server.url}/scope/caf%C3%A9/a%2Fb",
        params={"x": "1 2"},
        headers={"X-Custom": "yes"},
        timeout=DEADLINE,
    )
    assert response.status_code == 200, response.text
    scope = response.json()
    assert scope["path"] == "/scope/café/a/b"
    assert scope["raw_path"] in ("/scope/caf%C3%A9/a%2Fb", "/scope/caf%C3%A9/a/b")
    assert scope["query_string"] == "x=1+2"
    assert ["x-custom", "yes"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"][1] == wsgi_server.port
    assert (scope["scheme"], scope["http_version"], scope["method"]) == ("http", "1.1", "GET")
    # Lifespan state reaches every request, from the startup of this very process.
    assert scope["state"]["started_in"] == scope["pid"]


def test_gunicorn_keeps_the_percent_encoded_raw_path(gthread_server: LiveServer) -> None:
    scope = httpx.get(f"{gthread_server.url}/scope/a%2Fb", timeout=DEADLINE).json()
    assert scope["raw_path"] == "/scope/a%2Fb"
    assert scope["path"] == "/scope/a/b"
    assert scope["extensions"] == ["http.response.pathsend", "http.response.zerocopysend"]


@pytest.fixture(scope="module", params=WSGI_PARAMS)
def fastapi_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve the FastAPI app through ASGIToWSGI under each WSGI configuration."""
    with serve(request.param, "a2w_apps:fastapi_application") as srv:
        yield srv


def test_fastapi_app(fastapi_server: LiveServer) -> None:
    got = httpx.get(f"{fastapi_server.url}/items/5", params={"q": "x"}, timeout=DEADLINE)
    assert got.json() == {"item_id": 5, "q": "x"}
    posted = httpx.post(f"{fastapi_server.url}/items", json={"name": "pen"}, timeout=DEADLINE)
    assert posted.json() == {"created": {"name": "pen"}}
    invalid = httpx.get(f"{fastapi_server.url}/items/not-a-number", timeout=DEADLINE)
    assert invalid.status_code == 422


@pytest.fixture(scope="module", params=WSGI_PARAMS)
def quart_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve the Quart app through ASGIToWSGI under each WSGI configuration."""
    with serve(request.param, "a2w_apps:quart_application") as srv:
        yield srv


def test_quart_app(quart_server: LiveServer) -> None:
    body = os.urandom(300_000)
    response = httpx.post(f"{quart_server.url}/echo", content=body, timeout=DEADLINE)
    assert response.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_a_quart_stream_arrives_as_it_is_sent(quart_server: LiveServer, tmp_path: Path) -> None:
    """Quart runs the view in a task of its own: before, its stream arrived whole, at the end."""
    assert_streamed_past_a_gate(f"{quart_server.url}/stream", tmp_path, DEADLINE)


def _tasks(server: LiveServer) -> int:
    stats = httpx.get(f"{server.url}/_stats", timeout=DEADLINE).json()
    return int(stats["tasks"])


def _wait_for_tasks(server: LiveServer, at_most: int) -> int:
    """Poll until the app's loop runs at most ``at_most`` tasks; return the last count."""
    deadline = time.monotonic() + DEADLINE
    while (count := _tasks(server)) > at_most and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


@pytest.mark.parametrize("size", [0, 10, 64 * 1024, 1024 * 1024 + 3])
def test_request_body_echo(wsgi_server: LiveServer, size: int) -> None:
    baseline = _tasks(wsgi_server)
    body = os.urandom(size)
    response = httpx.post(f"{wsgi_server.url}/echo", content=body, timeout=DEADLINE)
    assert response.status_code == 200
    assert response.content == body
    # The app's task ended with the request (a big body once left it waiting on backpressure).
    assert _wait_for_tasks(wsgi_server, baseline) <= baseline


def test_chunked_request_body(gthread_server: LiveServer) -> None:
    pieces = [os.urandom(50_000) for _ in range(7)]
    response = httpx.post(f"{gthread_server.url}/echo", content=iter(pieces), timeout=DEADLINE)
    assert response.content == b"".join(pieces)


def test_a_chunked_upload_is_read_whole_or_refused(wsgi_server: LiveServer) -> None:
    """gunicorn ends a chunked body (``wsgi.input_terminated``); wsgiref cannot, and
    there the request is refused with 411 instead of reaching the app empty."""
    pieces = [os.urandom(50_000) for _ in range(3)]
    response = httpx.post(f"{wsgi_server.url}/echo", content=iter(pieces), timeout=DEADLINE)
    if wsgi_server.server == "wsgiref":
        assert response.status_code == 411, response.content[:100]
    else:
        assert (response.status_code, response.content) == (200, b"".join(pieces))


def test_sse_events_arrive_before_the_app_finishes(wsgi_server: LiveServer, tmp_path: Path) -> None:
    assert_sse_events_arrive_one_by_one(wsgi_server.url, tmp_path, DEADLINE)


def test_sse_headers_arrive_before_the_first_event(wsgi_server: LiveServer, tmp_path: Path) -> None:
    """The response starts when the app starts it, as under uvicorn, not at the first event.

    A WSGI server sends the headers with the first body chunk, so an SSE client (and
    a proxy waiting for the response head) saw nothing while the stream was quiet.
    """
    assert_sse_head_before_the_first_event(wsgi_server.url, tmp_path)


def test_sse_starlette_events_arrive_while_its_stream_runs(
    wsgi_server: LiveServer, tmp_path: Path
) -> None:
    """sse-starlette sends from a task of its own while the request's task waits.

    The bridge posted what an app sent only when the request's task suspended, so
    here nothing, not even the response head, reached the WSGI server until the
    stream ended: an SSE client of sse-starlette (or of Starlette before 0.38,
    whose ``StreamingResponse`` did the same) saw nothing at all.
    """
    gate = tmp_path / "gate"
    url = f"{wsgi_server.url}/sse-starlette"
    try:
        with httpx.stream("GET", url, params={"gate": str(gate)}, timeout=DEADLINE) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = (line for line in resp.iter_lines() if line.startswith("data:"))
            assert next(lines) == "data: 0"
            # The app is parked until this gate opens: the event came while it ran.
            assert not (tmp_path / "gate.0").exists()
            (tmp_path / "gate.0").touch()
            assert list(lines) == ["data: 1"]
    finally:
        (tmp_path / "gate.0").touch()  # a sync worker serves one request: release it


def test_upload_is_not_buffered_whole(gthread_server: LiveServer, tmp_path: Path) -> None:
    """The bridge reads wsgi.input only as fast as the app calls receive()."""
    test_id = os.urandom(8).hex()
    gate = tmp_path / "gate"
    size = 16 * 1024 * 1024
    head = (
        f"POST /slow-upload?gate={gate} HTTP/1.1\r\nHost: x\r\nX-Test-Id: {test_id}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", gthread_server.port), timeout=DEADLINE)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.sendall(head)
        payload = memoryview(b"u" * size)
        sent = 0
        sock.setblocking(False)
        deadline = time.monotonic() + DEADLINE
        while sent < size and time.monotonic() < deadline:
            try:
                sent += sock.send(payload[sent : sent + 256 * 1024])
            except BlockingIOError:
                _, writable, _ = select.select([], [sock], [], 0.5)
                if not writable:
                    break  # the server stopped reading: TCP backpressure
        read = 0
        while read == 0 and time.monotonic() < deadline:
            read = httpx.get(
                f"{gthread_server.url}/input-read", params={"id": test_id}, timeout=DEADLINE
            ).json()["read"]
        # The app took one chunk and waits; the bridge must not have read ahead.
        assert 0 < read <= 2 * 64 * 1024, (read, sent)
        assert sent > 2 * 64 * 1024  # the client got well past what the bridge read
        gate.touch()
        sock.setblocking(True)
        sock.sendall(payload[sent:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(str(size).encode())


def test_file_response_uses_pathsend(wsgi_server: LiveServer, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    for route in ("/file", "/pathsend"):
        response = httpx.get(f"{wsgi_server.url}{route}", params={"path": str(path)})
        assert response.status_code == 200
        assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()


def test_pathsend_through_gunicorn_file_wrapper(tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with serve("gunicorn-gthread", "a2w_apps:application_raw") as srv:
        response = httpx.get(f"{srv.url}/pathsend", params={"path": str(path)}, timeout=DEADLINE)
        assert response.content == data
        missing = httpx.get(
            f"{srv.url}/pathsend", params={"path": str(tmp_path / "nope")}, timeout=DEADLINE
        )
        assert missing.status_code == 500
        srv.wait_for_log(r"cannot send file .*nope")


def test_zerocopysend_sends_the_slice_after_the_app_closed_its_file(
    wsgi_server: LiveServer, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    params = {"path": str(path), "offset": 1000, "count": 150_000}
    response = httpx.get(f"{wsgi_server.url}/zerocopy", params=params, timeout=DEADLINE)
    assert response.status_code == 200
    assert response.content == data[1000:151_000]


def test_background_task_runs_to_completion(wsgi_server: LiveServer) -> None:
    test_id = os.urandom(8).hex()
    headers = {"X-Test-Id": test_id}
    response = httpx.get(f"{wsgi_server.url}/background", headers=headers, timeout=DEADLINE)
    assert response.text == "sent"
    deadline = time.monotonic() + DEADLINE
    while True:
        record = httpx.get(
            f"{wsgi_server.url}/record", params={"id": test_id}, timeout=DEADLINE
        ).json()
        if record.get("background") == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert record == {"background": "done"}


def test_head_gets_no_body(wsgi_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"z" * 5000)
    for route, params in (("/", {}), ("/file", {"path": str(path)})):
        with socket.create_connection(("127.0.0.1", wsgi_server.port), timeout=DEADLINE) as sock:
            query = "&".join(f"{key}={value}" for key, value in params.items())
            target = f"{route}?{query}" if query else route
            sock.sendall(f"HEAD {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1."), reply
        assert b" 200 " in head.split(b"\r\n")[0]
        assert body == b"", (route, body[:100])


def test_head_on_an_endless_stream_ends_at_the_headers(wsgi_server: LiveServer) -> None:
    """A HEAD of a stream gets its headers at once and the app's stream is stopped.

    The body of a HEAD response is dropped, so nothing would ever make the WSGI
    server send the headers before the stream ended (never, for /endless or SSE),
    and the server's thread would stay with it; uvicorn answers at once.
    """
    before = httpx.get(f"{wsgi_server.url}/_stats", timeout=DEADLINE).json()
    with socket.create_connection(("127.0.0.1", wsgi_server.port), timeout=DEADLINE) as sock:
        sock.sendall(b"HEAD /endless HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), reply[:200]
    assert b" 200 " in head.split(b"\r\n")[0]
    assert b"application/octet-stream" in head
    # waitress frames a HEAD response without Content-Length as chunked and sends the
    # last chunk after the head, as it does for any WSGI app (then it closes).
    assert body == (b"0\r\n\r\n" if wsgi_server.server == "waitress" else b"")
    deadline = time.monotonic() + DEADLINE
    while True:
        stats = httpx.get(f"{wsgi_server.url}/_stats", timeout=DEADLINE).json()
        if stats["pid"] != before["pid"] or stats["ended"] - before["ended"] >= 1:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert stats["pid"] == before["pid"]
    # The stream that began for the HEAD has ended: the app was disconnected.
    assert (stats["started"] - before["started"], stats["ended"] - before["ended"]) == (1, 1)


def test_client_gone_disconnects_the_app_then_cancels_it_after_the_grace(
    wsgi_server: LiveServer,
) -> None:
    test_id = os.urandom(8).hex()
    with socket.create_connection(("127.0.0.1", wsgi_server.port), timeout=DEADLINE) as sock:
        sock.sendall(f"GET /linger HTTP/1.1\r\nHost: x\r\nX-Test-Id: {test_id}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + DEADLINE
    while True:
        record = httpx.get(
            f"{wsgi_server.url}/record", params={"id": test_id}, timeout=DEADLINE
        ).json()
        if "cancelled" in record or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    # send() failed, receive() said so, and the task that ignored it was cancelled.
    assert record == {"send_failed": True, "receive": "http.disconnect", "cancelled": True}


def test_upload_cut_short_by_the_client(wsgi_server: LiveServer) -> None:
    """The app's receive() says http.disconnect; no error is logged and no task stays."""
    baseline = _tasks(wsgi_server)
    log_before = len(wsgi_server.log())
    with socket.create_connection(("127.0.0.1", wsgi_server.port), timeout=DEADLINE) as sock:
        head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
        sock.sendall(head.encode() + b"c" * 200_000)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                reply += chunk
    assert b"200 OK" not in reply
    assert _wait_for_tasks(wsgi_server, baseline) <= baseline
    assert httpx.get(f"{wsgi_server.url}/", timeout=DEADLINE).text == "Hello, World!"
    assert "ASGI app" not in wsgi_server.log()[log_before:]


def _record(server: LiveServer, test_id: str, key: str) -> dict[str, object]:
    """Poll the app's record for ``test_id`` until it has ``key`` (or the deadline passes)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        record: dict[str, object] = httpx.get(
            f"{server.url}/record", params={"id": test_id}, timeout=DEADLINE
        ).json()
        if key in record or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


#: The tests below need the client's socket (``gunicorn.socket``), which wsgiref and waitress
#: do not hand over (waitress's ``waitress.client_disconnected``: test_a2w_waitress_live.py).
GUNICORN_PARAMS = [p for p in WSGI_PARAMS if str(p.values[0]).startswith("gunicorn")]


@pytest.fixture(scope="module", params=GUNICORN_PARAMS)
def events_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Path]]:
    """gunicorn (gthread, sync) serving ``a2w_apps:application`` with an events file."""
    events = tmp_path_factory.mktemp("events") / "events"
    with serve(request.param, env={"A2W_EVENTS": str(events)}) as srv:
        yield srv, events


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_is_disconnected_sees_a_client_that_left(
    events_server: tuple[LiveServer, Path], method: str
) -> None:
    """``request.is_disconnected()`` turns true when the client goes, as under uvicorn.

    gunicorn hands the client's socket over (``gunicorn.socket``); before, a WSGI
    server's client was seen to leave only when a write failed, so a long poll that
    checks ``is_disconnected()`` ran on (here: for ever) after its client had gone.
    """
    server, _ = events_server
    test_id = os.urandom(8).hex()
    body = b"payload" if method == "POST" else b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(
            f"{method} /until-disconnected HTTP/1.1\r\nHost: x\r\nX-Test-Id: {test_id}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    # The client has closed its socket without waiting for the answer.
    assert _record(server, test_id, "disconnected") == {"disconnected": True}


def test_a_client_that_half_closes_is_gone_and_not_a_server_error(
    events_server: tuple[LiveServer, Path],
) -> None:
    """A client that shuts down its sending side counts as gone (as uvicorn counts it).

    The app stops; what the server writes then is not an app failure: 499 (nginx's
    "client closed request") instead of a 500 in the access log.
    """
    server, _ = events_server
    test_id = os.urandom(8).hex()
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(
            f"GET /until-disconnected HTTP/1.1\r\nHost: x\r\nX-Test-Id: {test_id}\r\n\r\n".encode()
        )
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                reply += chunk
    assert _record(server, test_id, "disconnected") == {"disconnected": True}
    assert reply == b"" or reply.split(b"\r\n")[0].endswith(b" 499 Client Closed Request"), reply


def test_an_idle_stream_ends_when_its_client_leaves(events_server: tuple[LiveServer, Path]) -> None:
    """An SSE stream waiting for its next event is cancelled when the client goes.

    Its ``finally`` runs and the server's thread is free again (a sync worker serves
    the next request); before, both waited for an event that never came.
    """
    server, events = events_server
    before = events.read_text().count("quiet-ended") if events.exists() else 0
    with httpx.stream("GET", f"{server.url}/quiet", timeout=DEADLINE) as response:
        assert next(response.iter_lines()) == ": started"
    deadline = time.monotonic() + DEADLINE
    while (events.read_text().count("quiet-ended") if events.exists() else 0) == before:
        assert time.monotonic() < deadline, "the idle stream was not ended"
        time.sleep(0.02)
    assert httpx.get(f"{server.url}/", timeout=DEADLINE).text == "Hello, World!"


def test_an_idle_sse_starlette_stream_ends_when_its_client_leaves(
    events_server: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """The app's own streaming task, idle between events, hears the client leave."""
    server, events = events_server
    before = events.read_text().count("sse-starlette-ended") if events.exists() else 0
    (tmp_path / "gate.0").touch()
    params = {"gate": str(tmp_path / "gate"), "idle": "1"}
    url = f"{server.url}/sse-starlette"
    with httpx.stream("GET", url, params=params, timeout=DEADLINE) as response:
        lines = (line for line in response.iter_lines() if line.startswith("data:"))
        assert [next(lines), next(lines)] == ["data: 0", "data: 1"]
    deadline = time.monotonic() + DEADLINE
    while (events.read_text().count("sse-starlette-ended") if events.exists() else 0) == before:
        assert time.monotonic() < deadline, "the idle stream was not ended"
        time.sleep(0.02)
    assert httpx.get(f"{server.url}/", timeout=DEADLINE).text == "Hello, World!"
