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
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from bridge_data import iter_payload
from bridge_helpers import DEADLINE, RawHTTP, get_state, new_test_id, release, wait_for_state

from live import LiveServer

UPLOAD_SIZE = 16 * 1024 * 1024  # bytes announced; the client sends far fewer
DOWNLOAD_SIZE = 64 * 1024 * 1024  # bytes the app would send


def _pool_threads(server: LiveServer) -> int:
    """Return the app's thread count while two requests run at once.

    One ``/block`` request holds a worker while ``/_state`` runs on another, so
    the pool has two usable workers; a worker still stuck from an earlier
    request shows up as one thread more than before.
    """
    name = new_test_id()
    with ThreadPoolExecutor(1) as executor:
        blocked = executor.submit(
            httpx.get, f"{server.url}/block", params={"name": name}, timeout=DEADLINE
        )
        server.wait_for_log(f"blocking {name}", timeout=DEADLINE)
        threads = int(get_state(server)["threads"])
        release(server, name)
        assert blocked.result().content == b"released"
    return threads


def _abort(conn: RawHTTP) -> None:
    # RST instead of FIN: the abrupt end a crashed client or a proxy timeout gives.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_disconnect_mid_upload(server: LiveServer, test_id: str) -> None:
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

    state = wait_for_state(
        server,
        lambda s: test_id in s["closes"] and test_id not in s["inflight"],
        "close() after the disconnect",
    )
    assert state["closes"][test_id] == 1
    assert state["received"][test_id] < UPLOAD_SIZE
    error = state["errors"][test_id]
    assert error["oserror"] is True, error
    assert error["client_disconnected"] is True, error
    assert _pool_threads(server) <= baseline
    assert get_state(server)["closes"][test_id] == 1  # still once, later on


def test_disconnect_mid_download(server: LiveServer, test_id: str) -> None:
    baseline = _pool_threads(server)
    conn = RawHTTP(server)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.request("GET", f"/download?size={DOWNLOAD_SIZE}&length=1", {"X-Test-Id": test_id})
    status, headers = conn.read_head()
    assert status == 200
    assert headers["content-length"] == str(DOWNLOAD_SIZE)
    assert len(conn.read_exact(65536)) == 65536
    _abort(conn)

    state = wait_for_state(
        server,
        lambda s: test_id in s["closes"] and test_id not in s["inflight"],
        "close() after the disconnect",
    )
    assert state["closes"][test_id] == 1
    assert _pool_threads(server) <= baseline
    assert get_state(server)["closes"][test_id] == 1


def test_disconnect_while_streaming_blocked(server: LiveServer, test_id: str) -> None:
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
    state = wait_for_state(
        server,
        lambda s: test_id in s["closes"] and test_id not in s["inflight"],
        "close() after the disconnect",
    )
    assert state["closes"][test_id] == 1
    assert _pool_threads(server) <= baseline
