"""Clients that vanish mid-request, on real servers, seen from the app's side.

PEP 3333 requires ``close()`` on the returned iterable once the request ends
"whether normally or because of an application error during iteration or an
early disconnect of the browser". The bridge must also make a blocked
``wsgi.input.read()`` fail with an :class:`OSError` subclass and give the
worker thread back.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from bridge_data import iter_payload
from bridge_helpers import DEADLINE, RawHTTP, get_state, new_test_id, release, wait_for_state

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

UPLOAD_SIZE = 16 * 1024 * 1024  # bytes announced; the client sends far fewer
DOWNLOAD_SIZE = 64 * 1024 * 1024  # bytes the app would send
WORKERS = 2  # bridge max_workers for these tests


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def two_workers(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve the app with a pool of exactly two workers (see :func:`_pool_threads`)."""
    env = {"BRIDGE_APP_MAX_WORKERS": str(WORKERS)}
    with live_server(request.param, "bridge_apps:app", env=env) as srv:
        yield srv


def _closed_once(server: LiveServer, test_id: str) -> dict[str, Any]:
    """Wait until request ``test_id`` is over and its iterable closed; return the app's state.

    :raise AssertionError: when ``close()`` was not called exactly once.
    """
    state = wait_for_state(
        server,
        lambda s: test_id in s["closes"] and test_id not in s["inflight"],
        "close() after the disconnect",
    )
    assert state["closes"][test_id] == 1
    return state


def _pool_threads(server: LiveServer) -> int:
    """Occupy both workers at once; return the app's thread count meanwhile.

    ``/block`` holds one worker while ``/_state`` needs the other, so a worker
    still stuck in an earlier request makes ``/_state`` wait in the queue and
    this fails. The thread count then shows threads leaked outside the pool.
    """
    name = new_test_id()
    with ThreadPoolExecutor(1) as executor:
        blocked = executor.submit(
            httpx.get, f"{server.url}/block", params={"name": name}, timeout=DEADLINE
        )
        try:
            server.wait_for_log(f"blocking {name}", timeout=DEADLINE)
            try:
                threads = int(get_state(server)["threads"])
            except httpx.TimeoutException:
                pytest.fail(f"{server.server}: no free worker: one is still busy\n{server.log()}")
        finally:
            release(server, name)
        assert blocked.result().content == b"released"
    return threads


def _abort(conn: RawHTTP) -> None:
    # RST instead of FIN: the abrupt end a crashed client or a proxy timeout gives.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_disconnect_mid_upload(two_workers: LiveServer, test_id: str) -> None:
    server = two_workers
    if server.server == "daphne":
        pytest.skip("daphne reads the whole request body before it calls the application")
    baseline = _pool_threads(server)
    conn = RawHTTP(server)
    head = (
        "POST /upload?mode=read&chunk=8191 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Test-Id: {test_id}\r\nContent-Length: {UPLOAD_SIZE}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    conn.send(head.encode())
    for chunk in iter_payload(1024 * 1024):
        conn.send(chunk)
    wait_for_state(server, lambda s: s["received"].get(test_id, 0) > 0, "app reading the body")
    _abort(conn)

    state = _closed_once(server, test_id)
    assert state["received"][test_id] < UPLOAD_SIZE
    error = state["errors"][test_id]
    assert error["oserror"] is True, error
    assert error["client_disconnected"] is True, error
    assert _pool_threads(server) <= baseline
    assert get_state(server)["closes"][test_id] == 1  # still once, later on


def test_disconnect_mid_download(two_workers: LiveServer, test_id: str) -> None:
    server = two_workers
    baseline = _pool_threads(server)
    conn = RawHTTP(server)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.request("GET", f"/download?size={DOWNLOAD_SIZE}&length=1", {"X-Test-Id": test_id})
    status, headers = conn.read_head()
    assert status == 200
    assert headers["content-length"] == str(DOWNLOAD_SIZE)
    assert len(conn.read_exact(65536)) == 65536
    _abort(conn)

    _closed_once(server, test_id)
    assert _pool_threads(server) <= baseline
    assert get_state(server)["closes"][test_id] == 1


def test_disconnect_while_streaming_blocked(two_workers: LiveServer, test_id: str) -> None:
    server = two_workers
    # The client leaves while the generator waits between two events; once
    # the generator resumes, the bridge must stop and close it.
    baseline = _pool_threads(server)
    conn = RawHTTP(server)
    conn.request("GET", "/sse", {"X-Test-Id": test_id})
    status, _ = conn.read_head()
    assert status == 200
    conn.read_until(b"data: 1")
    _abort(conn)
    release(server, test_id)
    _closed_once(server, test_id)
    assert _pool_threads(server) <= baseline


def test_disconnect_from_a_stream_whose_request_body_was_not_read(
    two_workers: LiveServer, test_id: str
) -> None:
    server = two_workers
    # The servers drop send() once the client has gone, so only receive()
    # tells. With the request body not read to its end (larger than the
    # bridge's buffer_size, ignored by the app) the bridge used to watch
    # nothing, and the endless generator ran on for a minute on its worker.
    baseline = _pool_threads(server)
    size = 4 * 65536
    conn = RawHTTP(server)
    conn.send(
        b"POST /endless HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test-Id: "
        + test_id.encode()
        + b"\r\nContent-Length: "
        + str(size).encode()
        + b"\r\n\r\n"
        + b"u" * size
    )
    status, _ = conn.read_head()
    assert status == 200
    conn.read_exact(65536)
    _abort(conn)
    _closed_once(server, test_id)
    assert _pool_threads(server) <= baseline


def test_disconnect_from_a_stream_whose_ignored_body_passed_drain_body_size(
    two_workers: LiveServer, test_id: str
) -> None:
    server = two_workers
    # As above, but the client uploads more than drain_body_size (1 MiB) while
    # the app streams and never reads. The bridge used to stop reading ahead at
    # 1 MiB, so it never saw the disconnect: the upload stalled and the endless
    # generator ran on for a minute on its worker.
    if server.server == "daphne":
        pytest.skip("daphne calls the app only once the whole body is in: nothing to watch")
    baseline = _pool_threads(server)
    # The client stops after 8 MiB of the 64 MiB it announced, so the body
    # never ends (a whole body can come in one large message on uvicorn,
    # which the watch always takes, and then it sees the disconnect anyway).
    announced = 64 * 1024 * 1024
    size = 8 * 1024 * 1024
    conn = RawHTTP(server)
    conn.send(
        b"POST /endless HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test-Id: "
        + test_id.encode()
        + b"\r\nContent-Length: "
        + str(announced).encode()
        + b"\r\n\r\n"
    )
    with ThreadPoolExecutor(1) as executor:
        upload = executor.submit(conn.send, b"u" * size)
        status, _ = conn.read_head()
        assert status == 200
        deadline = time.monotonic() + DEADLINE
        while not upload.done():  # read the stream meanwhile, so the app keeps sending
            assert time.monotonic() < deadline, "the upload stalled: the body is not read"
            conn.read_exact(65536)
        upload.result()
    _abort(conn)
    _closed_once(server, test_id)
    assert _pool_threads(server) <= baseline


def test_head_to_an_endless_stream(two_workers: LiveServer, test_id: str) -> None:
    server = two_workers
    # A monitor's HEAD request to a streaming view gets its headers at once, and
    # the stream stops once the client leaves (the bridge used to wait for the
    # stream's end before it sent anything, holding the worker for ever).
    baseline = _pool_threads(server)
    conn = RawHTTP(server)
    conn.request("HEAD", "/endless", {"X-Test-Id": test_id})
    status, headers = conn.read_head()
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    _abort(conn)
    _closed_once(server, test_id)
    assert _pool_threads(server) <= baseline
