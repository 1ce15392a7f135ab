"""10,000 requests through ASGIToWSGI under gunicorn gthread, 10% of the clients hanging up
mid-response: afterwards no task, thread or file descriptor is left behind.

The clients are raw sockets. A hanging-up client reads the first chunk of an
endless stream and resets the connection (``SO_LINGER`` 0), so gunicorn's next
write fails and it closes the response iterable early. The counts come from
the worker itself (``/_stats``: ``asyncio.all_tasks()`` on the bridge's loop,
``threading.active_count()``, ``/proc/self/fd``).
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
from a2w_helpers import serve

from live import LiveServer

DEADLINE = 30.0
TOTAL = 10_000
CLIENTS = 8
HANG_UP_EVERY = 10  # one request in ten hangs up mid-response

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with serve("gunicorn-gthread") as srv:
        yield srv


def _stats(server: LiveServer) -> dict[str, Any]:
    # A fresh connection each time: a kept-alive one would hold an fd of its own.
    response = httpx.get(f"{server.url}/_stats", headers={"Connection": "close"}, timeout=10)
    stats: dict[str, Any] = response.json()
    return stats


def _read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """Read one HTTP/1.1 response with a Content-Length from ``sock``; return its body."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed mid-response: {bytes(buffer)!r}")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        rest += chunk
    buffer[:] = rest[length:]
    return rest[:length]


def _hang_up_mid_response(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < 1024:
            chunk = sock.recv(65536)
            assert chunk, "the stream ended before the client hung up"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        # Reset instead of FIN, so the server's next write fails at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _client(port: int, count: int, offset: int) -> int:
    done = 0
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    buffer = bytearray()
    try:
        for number in range(offset, offset + count):
            if number % HANG_UP_EVERY == 0:
                _hang_up_mid_response(port)
            else:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_response(sock, buffer) == b"Hello, World!"
            done += 1
    finally:
        sock.close()
    return done


def test_no_task_thread_or_fd_outlives_its_request(server: LiveServer) -> None:
    # Warm up with the same concurrency, so gunicorn's thread pool (which grows
    # lazily to --threads) and the bridge's loop thread exist before counting.
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(_client, [server.port] * CLIENTS, [20] * CLIENTS, [0] * CLIENTS))
    before = _stats(server)
    per_client = TOTAL // CLIENTS
    with ThreadPoolExecutor(CLIENTS) as pool:
        counts = list(
            pool.map(
                _client,
                [server.port] * CLIENTS,
                [per_client] * CLIENTS,
                [i * per_client + 1 for i in range(CLIENTS)],
            )
        )
    assert sum(counts) == TOTAL
    hung_up = TOTAL // HANG_UP_EVERY
    deadline = time.monotonic() + DEADLINE
    while True:
        after = _stats(server)
        settled = (
            after["ended"] == after["started"] >= before["started"] + hung_up
            and after["tasks"] <= before["tasks"]
            and after["threads"] <= before["threads"]
            and after["fds"] <= before["fds"]
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["pid"] == before["pid"]  # the same worker throughout
    assert after["started"] == before["started"] + hung_up, (before, after)
    assert after["ended"] == after["started"], "a stream's task outlived its request"
    assert after["tasks"] <= before["tasks"], (before, after)
    assert after["threads"] <= before["threads"], (before, after)
    assert after["fds"] <= before["fds"], (before, after)
    assert "Traceback" not in server.log()
