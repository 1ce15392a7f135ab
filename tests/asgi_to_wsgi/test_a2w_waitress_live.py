"""ASGIToWSGI under waitress: what only waitress has, and what a waitress user runs into.

waitress is started as its users start it (``python -m waitress --listen=... module:app``).
It runs the app on a pool of threads (4) apart from its I/O thread, keeps each
response in an output buffer of its own (flushed after every write by default:
``send_bytes`` is 1), reads the whole request body before it calls the app (and sets
``wsgi.input_terminated``), offers ``wsgi.file_wrapper``, and, only when started with
``--channel-request-lookahead`` above 0, notices a client that closes its connection
while its request runs and says so through ``environ["waitress.client_disconnected"]``.
It installs no ``SIGTERM`` handler.

The app is ``apps/waitress_apps.py``. A test marked ``xfail(strict=True)`` states what
the bridge should do and does not do yet; its reason says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2w_helpers import serve

from live import LiveServer, wait_for

DEADLINE = 20.0
#: Seconds a test waits for what the bridge does well within: the apps'
#: ``disconnect_grace`` is 0.5 s, and the bridge asks ``waitress.client_disconnected``
#: every 0.25 s.
SHORT = 3.0
APP = "waitress_apps:application"
#: ``ASGIToWSGIOptions.chunk_size``: the most a ``receive()`` returns.
CHUNK_SIZE = 64 * 1024

pytestmark = pytest.mark.live


def _serve(
    extra: list[str] | None = None, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[LiveServer]:
    return serve("waitress", APP, extra=extra, env=env)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """waitress as a new user starts it (no request lookahead), with an events file."""
    events = tmp_path_factory.mktemp("events") / "events"
    with _serve(env={"A2W_EVENTS": str(events)}) as srv:
        yield srv, events


@pytest.fixture(scope="module")
def lookahead(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """waitress with ``--channel-request-lookahead=1``: it notices a client that leaves.

    8 threads instead of 4: a test that fails would leave a long poll holding a thread.
    """
    events = tmp_path_factory.mktemp("events") / "events"
    extra = ["--channel-request-lookahead=1", "--threads=8"]
    with _serve(extra, env={"A2W_EVENTS": str(events)}) as srv:
        yield srv, events


def _get(server: LiveServer, path: str, **params: Any) -> Any:
    # A connection of its own each time: a kept-alive one would hold a descriptor.
    response = httpx.get(
        f"{server.url}{path}", params=params, headers={"Connection": "close"}, timeout=DEADLINE
    )
    response.raise_for_status()
    return response.json()


def _count(events: Path, kind: str) -> int:
    return events.read_text().split().count(kind) if events.exists() else 0


def _events(path: Path) -> list[tuple[str, int]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(kind, int(pid)) for kind, pid in (line.split() for line in lines)]


def _expect_count(events: Path, kind: str, count: int, timeout: float = DEADLINE) -> None:
    wait_for(lambda: _count(events, kind) >= count, timeout, f"{count} {kind!r} event(s)")


def _open_stream(server: LiveServer, target: str, headers: str = "") -> socket.socket:
    """Send ``GET target`` on a raw socket; return it once the first event has arrived."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received or not received.partition(b"\r\n\r\n")[2]:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed: {received!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200 "), received
    return sock


def _no_request_open(server: LiveServer) -> bool:
    """Whether the bridge's only open request is the one asking (``/_bridge``)."""
    return bool(_get(server, "/_bridge")["open_requests"] == 1)


# --- streaming through waitress's output buffer ---------------------------------------


def test_each_event_leaves_at_once_with_waitress_defaults(
    plain: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """waitress flushes its output buffer after each write (``send_bytes`` 1, the default):
    the first event arrives while the app waits for its next one."""
    server, _ = plain
    gate = tmp_path / "gate"
    try:
        with _open_stream(server, f"/gated?gate={gate}"):
            assert not gate.exists()  # the app is still parked after its first event
    finally:
        gate.touch()  # its keep-alives then find the client gone


def test_a_large_send_bytes_holds_events_back(tmp_path: Path) -> None:
    """``--send-bytes=18000`` (the default ``waitress --help`` still prints) keeps small
    writes in waitress's buffer while the app runs: an SSE client gets nothing, not even
    the head. Nothing the bridge does gets them out; a user must keep ``send_bytes`` at 1.
    """
    gate = tmp_path / "gate"
    with _serve(["--send-bytes=18000"]) as server:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
                sock.sendall(f"GET /gated?gate={gate} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                sock.settimeout(1.0)
                with pytest.raises(TimeoutError):
                    sock.recv(65536)
        finally:
            gate.touch()


def test_an_sse_head_arrives_before_the_first_event(
    plain: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """An SSE stream with nothing to say yet: the client should see the response start
    (an ``EventSource``'s ``open``), as under uvicorn and under gunicorn."""
    server, _ = plain
    gate = tmp_path / "gate"
    params = {"n": 1, "gate": str(gate), "hold_first": 1}
    try:
        with httpx.stream("GET", f"{server.url}/sse", params=params, timeout=10.0) as response:
            assert not (tmp_path / "gate.first").exists()  # the app has no event yet
            assert response.headers["content-type"].startswith("text/event-stream")
    finally:
        (tmp_path / "gate.first").touch()
        (tmp_path / "gate.0").touch()


def test_head_of_an_endless_stream_ends_at_its_head(plain: tuple[LiveServer, Path]) -> None:
    """The bridge ends a body-less stream at its head; the app's stream is stopped.

    waitress itself adds ``0\\r\\n\\r\\n`` after the head of a ``HEAD`` response that has
    no ``Content-Length`` (it frames it as chunked, then closes the connection), as it
    does for any WSGI app: that is not the bridge's.
    """
    server, _ = plain
    before = _get(server, "/_stats")
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(b"HEAD /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), reply[:200]
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"0\r\n\r\n", body[:100]
    wait_for(
        lambda: _get(server, "/_stats")["ended"] == before["ended"] + 1,
        DEADLINE,
        "the HEAD's stream to end",
    )


@pytest.mark.xfail(
    strict=True,
    reason="waitress writes the last chunk of a chunked body only after the iterable's "
    "close() returns, and the bridge's close() waits for the app's background work "
    "(up to background_timeout): the client waits for it too",
)
def test_a_streamed_body_ends_before_its_background_task(
    plain: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """A ``StreamingResponse`` with a ``BackgroundTask`` (an export, then an e-mail): the
    client has the whole body while the task runs, as under gunicorn and uvicorn."""
    server, events = plain
    gate = tmp_path / "gate"
    url = f"{server.url}/stream-background"
    try:
        response = httpx.get(url, params={"gate": str(gate)}, timeout=SHORT)
        assert (response.status_code, response.text) == (200, "ab")
        assert _count(events, f"background-done:{gate}") == 0
    finally:
        gate.touch()
    _expect_count(events, f"background-done:{gate}", 1)


# --- clients that leave -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["reset", "close"])
def test_a_client_leaving_mid_stream_ends_the_task_and_closes_the_iterable(
    plain: tuple[LiveServer, Path], how: str
) -> None:
    """waitress's next write fails (``ClientDisconnected``), it calls the iterable's
    ``close()``, and the bridge ends the app's task: nothing of the request is left."""
    server, _ = plain
    request_id = f"rid-{os.urandom(6).hex()}"
    before = _get(server, "/_stats")
    sock = _open_stream(server, "/endless", f"X-Request-Id: {request_id}\r\n")
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    # close() ran in waitress's thread: the middleware around the bridge recorded it.
    wait_for(lambda: bool(_get(server, "/thread-side", id=request_id)), DEADLINE, "close()")
    after = _get(server, "/_stats")
    assert after["ended"] - before["ended"] == after["started"] - before["started"] == 1
    wait_for(lambda: _no_request_open(server), DEADLINE, "no open request")
    server.wait_for_log(r"Client disconnected while serving /endless")
    assert "Traceback" not in server.log()


def test_without_lookahead_an_idle_stream_ends_at_its_next_writes(
    plain: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """waitress without lookahead reads nothing from a connection while its request runs,
    so an idle stream whose client left keeps its thread (one of 4) until it writes
    again (docs: send a keep-alive comment every few seconds); then it ends."""
    server, events = plain
    gate = tmp_path / "gate"
    try:
        with _open_stream(server, f"/gated?gate={gate}"):
            pass
        # A request later (served by another of waitress's threads) it still runs.
        assert httpx.get(f"{server.url}/", timeout=DEADLINE).text == "Hello, waitress!"
        assert _count(events, f"gated-ended:{gate}") == 0
    finally:
        gate.touch()  # keep-alive comments from now on
    _expect_count(events, f"gated-ended:{gate}", 1)
    wait_for(lambda: _no_request_open(server), DEADLINE, "no open request")


def test_with_lookahead_waitress_knows_the_client_left(
    lookahead: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """``environ["waitress.client_disconnected"]()`` turns true as soon as the client
    closes its connection: what the bridge could tell the app (the next tests)."""
    server, _ = lookahead
    test_id = os.urandom(8).hex()
    gate = tmp_path / "gate"
    try:
        with _open_stream(server, f"/gated?gate={gate}", f"X-Test-Id: {test_id}\r\n"):
            assert _get(server, "/client-gone", id=test_id) == {"offered": True, "gone": False}
        wait_for(
            lambda: _get(server, "/client-gone", id=test_id)["gone"] is True,
            DEADLINE,
            "waitress.client_disconnected() to say so",
        )
    finally:
        gate.touch()


def test_with_lookahead_an_idle_stream_ends_when_its_client_leaves(
    lookahead: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    server, events = lookahead
    gate = tmp_path / "gate"
    try:
        with _open_stream(server, f"/gated?gate={gate}"):
            pass
        _expect_count(events, f"gated-ended:{gate}", 1, SHORT)
        assert _count(events, f"gated-ended:{gate}") == 1
    finally:
        gate.touch()  # release the stream (its next write fails) whatever happened


def test_with_lookahead_is_disconnected_sees_the_client_leave(
    lookahead: tuple[LiveServer, Path],
) -> None:
    server, _ = lookahead
    test_id = os.urandom(8).hex()
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(
            f"GET /until-disconnected HTTP/1.1\r\nHost: x\r\nX-Test-Id: {test_id}\r\n\r\n".encode()
        )
        # waitress skips a request whose client left before a thread took it: leave
        # once the app runs.
        wait_for(
            lambda: _get(server, "/client-gone", id=test_id)["offered"] is True,
            SHORT,
            "the long poll to start",
        )
    wait_for(
        lambda: "disconnected" in _get(server, "/record", id=test_id),
        SHORT,
        "request.is_disconnected() to turn true",
    )
    assert _get(server, "/record", id=test_id) == {"disconnected": True}


def _hang_up_mid_stream(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while len(received.partition(b"\r\n\r\n")[2]) < 1024:
            chunk = sock.recv(65536)
            assert chunk, "the stream ended before the client hung up"
            received += chunk
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


#: Requests each of the leak test's 4 clients sends; every 8th hangs up mid-stream.
PER_CLIENT = 64
HANG_UP_EVERY = 8


def _client(url: str, count: int) -> int:
    done = 0
    with httpx.Client(timeout=DEADLINE) as client:
        port = int(url.rsplit(":", 1)[1])
        for number in range(count):
            if number % HANG_UP_EVERY == 0:
                _hang_up_mid_stream(port)
            else:
                assert client.get(f"{url}/").text == "Hello, waitress!"
            done += 1
    return done


def test_no_task_thread_or_descriptor_outlives_its_request(plain: tuple[LiveServer, Path]) -> None:
    """256 requests from 4 clients at once (waitress's 4 threads), one in 8 hanging up
    mid-stream: afterwards the process holds what it held before."""
    server, _ = plain
    with ThreadPoolExecutor(4) as pool:  # warm up: waitress's and the bridge's threads
        assert list(pool.map(_client, [server.url] * 4, [8] * 4)) == [8] * 4
    wait_for(lambda: _no_request_open(server), DEADLINE, "no open request")
    before = {**_get(server, "/_bridge"), **_get(server, "/_stats")}
    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(_client, [server.url] * 4, [PER_CLIENT] * 4)) == 4 * PER_CLIENT
    hung_up = 4 * PER_CLIENT // HANG_UP_EVERY

    def settled() -> bool:
        after = {**_get(server, "/_bridge"), **_get(server, "/_stats")}
        return (
            after["ended"] == after["started"] == before["started"] + hung_up
            and after["open_requests"] == 1
            and all(after[key] <= before[key] for key in ("tasks", "threads", "fds"))
        )

    wait_for(settled, DEADLINE, f"the counts of {before} again")
    assert _get(server, "/_bridge")["pid"] == before["pid"]
    assert "Traceback" not in server.log()


# --- request bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_an_upload_reaches_the_app_whole_in_chunk_size_pieces(
    plain: tuple[LiveServer, Path], framing: str
) -> None:
    """waitress reads the whole body first (past 512 KiB into a temporary file) and ends a
    chunked one itself (``wsgi.input_terminated``); the bridge hands it to the app in
    ``chunk_size`` pieces, not in one piece."""
    server, _ = plain
    body = os.urandom(6 * 1024 * 1024 + 5)
    content: Any = body
    if framing == "chunked":
        content = (body[start : start + 100_000] for start in range(0, len(body), 100_000))
    response = httpx.post(f"{server.url}/upload", content=content, timeout=DEADLINE)
    assert response.status_code == 200, response.text
    got = response.json()
    assert (got["size"], got["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert got["largest"] <= CHUNK_SIZE
    assert got["chunks"] >= len(body) // CHUNK_SIZE


# --- files ------------------------------------------------------------------------------


def test_files_go_out_through_waitress_file_wrapper(
    plain: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """``FileResponse`` (pathsend) and zerocopysend become waitress's ``wsgi.file_wrapper``,
    which its I/O thread sends from the file."""
    server, _ = plain
    data = os.urandom(1_500_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    whole = httpx.get(f"{server.url}/file", params={"path": str(path)}, timeout=DEADLINE)
    assert (whole.status_code, whole.headers["content-length"]) == (200, str(len(data)))
    assert whole.content == data
    params = {"path": str(path), "offset": 1000, "count": 600_000}
    part = httpx.get(f"{server.url}/zerocopy", params=params, timeout=DEADLINE)
    assert (part.status_code, part.content) == (200, data[1000:601_000])
    missing = httpx.get(f"{server.url}/pathsend", params={"path": str(tmp_path / "nope")})
    assert missing.status_code == 500
    server.wait_for_log(r"cannot send file .*nope")


# --- lifespan ---------------------------------------------------------------------------


def test_ctrl_c_runs_lifespan_shutdown(tmp_path: Path) -> None:
    """Startup before the first request; on ``SIGINT`` waitress's loop ends, the process
    exits normally and the bridge runs lifespan shutdown."""
    events = tmp_path / "events"
    with _serve(env={"A2W_EVENTS": str(events)}) as server:
        assert _events(events) == []
        pid = _get(server, "/_bridge")["pid"]
        assert _events(events) == [("startup", pid)]
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(DEADLINE) == 0
    assert _events(events) == [("startup", pid), ("shutdown", pid)]


@pytest.mark.xfail(
    strict=True,
    reason="waitress installs no SIGTERM handler (nor does the bridge): SIGTERM (docker "
    "stop, systemd, Kubernetes) kills the process at once, and lifespan shutdown never runs",
)
def test_sigterm_runs_lifespan_shutdown(tmp_path: Path) -> None:
    events = tmp_path / "events"
    with _serve(env={"A2W_EVENTS": str(events)}) as server:
        pid = _get(server, "/_bridge")["pid"]
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(DEADLINE)
    assert (status, _events(events)) == (0, [("startup", pid), ("shutdown", pid)])


def test_sigterm_handled_with_an_open_stream_ends_it_and_shuts_down(tmp_path: Path) -> None:
    """With a ``SIGTERM`` handler that calls ``sys.exit(0)`` (in the WSGI module) waitress
    stops as on Ctrl-C: it waits 5 s for its busy threads, then the process exits; the
    bridge cancels the stream still open (its ``finally`` runs) and runs lifespan
    shutdown."""
    events = tmp_path / "events"
    env = {"A2W_EVENTS": str(events), "A2W_EXIT_ON_SIGTERM": "1"}
    with _serve(env=env) as server:
        with httpx.stream("GET", f"{server.url}/endless", timeout=DEADLINE) as response:
            chunks = response.iter_bytes()
            next(chunks)
            pid = _events(events)[0][1]
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(httpx.HTTPError):  # cut short: no clean end of the body
                for _ in chunks:
                    pass
        assert server.process.wait(DEADLINE) == 0
        log = server.log()
    assert [kind for kind, _ in _events(events)] == ["startup", "stream-ended", "shutdown"], log
    assert all(event_pid == pid for _, event_pid in _events(events))
    assert "1 thread(s) still running" in log
