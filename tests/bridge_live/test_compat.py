"""Compatibility with what apps and clients did before the bridge, on real servers.

Issue 7 §1: response headers given as lists; an app's exception reaching the
server after the 500 (logged once); a body longer than its ``Content-Length``
cut to it; an unread request body drained (small, known length) or the
connection closed (``Connection: close``) so the next request on a keep-alive
connection never hangs.
"""

from __future__ import annotations

import re

import httpx
import pytest
from bridge_helpers import DEADLINE, RawHTTP

from live import LiveServer


def test_list_headers_are_accepted(raw_server: LiveServer) -> None:
    response = httpx.get(f"{raw_server.url}/list-headers", timeout=DEADLINE)
    assert response.status_code == 200
    assert response.headers["x-colour"] == "Blue"
    assert response.content == b"listed"


def test_app_exception_is_500_and_its_traceback_logged_once(
    server: LiveServer, test_id: str
) -> None:
    response = httpx.get(f"{server.url}/error", headers={"X-Test-Id": test_id}, timeout=DEADLINE)
    assert response.status_code == 500
    assert test_id not in response.text
    server.wait_for_log(rf"Traceback[\s\S]*RuntimeError: boom {test_id}")
    # The bridge's own line names the request; the server logs the traceback.
    server.wait_for_log(r"the WSGI app failed \(GET /error\)")
    log = server.log()
    assert len(re.findall(rf"RuntimeError: boom {test_id}\n", log)) == 1, log


@pytest.mark.parametrize("split", ["0", "1"], ids=["one-block", "two-blocks"])
def test_body_longer_than_content_length_is_cut(server: LiveServer, split: str) -> None:
    # Uncut, uvicorn and hypercorn broke the response (no body; curl exit 18), and extra
    # bytes on a keep-alive connection would corrupt the next response: ask twice, then ping.
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as client:
        for _ in range(2):
            response = client.get(f"/overlong?split={split}")
            assert response.status_code == 200
            assert response.content == b"hello"
        assert client.get("/ping").content == b"pong"
    server.wait_for_log(r"sent 6 bytes more than its Content-Length of 5")


@pytest.mark.parametrize("kind", ["abc", "twice"])
def test_a_content_length_nobody_can_frame_is_a_500(server: LiveServer, kind: str) -> None:
    # Passed on, uvicorn dropped the connection, daphne and granian sent a malformed or
    # ambiguous response, and a proxy could split the connection's responses differently.
    # (uvicorn closes a connection whose app raised, as the bridge passes the error on.)
    response = httpx.get(f"{server.url}/bad-length?kind={kind}", timeout=DEADLINE)
    assert (response.status_code, response.text) == (500, "500 Internal Server Error\n")
    server.wait_for_log(r"GET /bad-length.*Content-Length")
    # The server logs the error the bridge passes on; wait for its traceback's last line,
    # so that it lands in this test's part of the shared log (daphne writes it late).
    error = "not a decimal number: b'abc'" if kind == "abc" else "values: 5 and 3"
    server.wait_for_log(rf"InvalidResponse: [^\n]*{re.escape(error)}")


@pytest.mark.parametrize("hop", ["chunked", "gzip"])
def test_hop_by_hop_headers_of_the_app_are_dropped(server: LiveServer, hop: str) -> None:
    # A proxy app copying its upstream's Transfer-Encoding, Connection and Keep-Alive
    # (PEP 3333 forbids them; gunicorn drops them). Passed on, uvicorn sent both
    # Transfer-Encoding and Content-Length, granian closed the connection without a
    # response, and with "gzip" hypercorn answered 500 while uvicorn and granian
    # labelled a chunked body "gzip, chunked".
    conn = RawHTTP(server)
    try:
        for _ in range(2):  # the keep-alive connection stays usable
            conn.request("GET", f"/proxied?hop={hop}")
            status, headers = conn.read_head()
            assert status == 200
            assert "transfer-encoding" not in headers, headers
            assert "keep-alive" not in headers, headers
            assert headers["content-length"] == "7"
            assert conn.read_body(headers) == b"proxied"
        conn.request("GET", "/ping")
        status, headers = conn.read_head()
        assert (status, conn.read_body(headers)) == (200, b"pong")
    finally:
        conn.close()


def _upload_head(length: int | None) -> bytes:
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return f"POST /refuse-body HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n\r\n".encode()


def _chunked(size: int, block: int = 8192) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (block, b"x" * block) for _ in range(size // block)]
    return b"".join(parts) + b"0\r\n\r\n"


#: Servers that close the connection when the app's response says ``Connection: close``
#: (daphne leaves that to the client, which must not reuse the connection).
CLOSING_SERVERS = {"uvicorn", "hypercorn", "granian"}


def _next_request_is_answered_or_connection_closed(
    conn: RawHTTP, headers: dict[str, str], server: LiveServer
) -> None:
    """The keep-alive connection must either serve the next request or be closed: no hang."""
    if headers.get("connection", "").lower() == "close":
        if server.server in CLOSING_SERVERS:
            assert conn.closed_by_server()
        return
    conn.request("GET", "/ping")
    status, ping = conn.read_head()
    assert status == 200
    assert conn.read_body(ping) == b"pong"


def test_unread_chunked_upload_does_not_hang_the_next_request(server: LiveServer) -> None:
    conn = RawHTTP(server)
    try:
        conn.send(_upload_head(None) + _chunked(256 * 1024))
        status, headers = conn.read_head()
        assert status == 413
        assert conn.read_body(headers) == b"refused\n"
        if server.server == "hypercorn":
            # The rest of a chunked body has no known length: not drained, closed.
            assert headers["connection"].lower() == "close"
        _next_request_is_answered_or_connection_closed(conn, headers, server)
    finally:
        conn.close()


def test_small_unread_body_is_drained_and_keep_alive_kept(server: LiveServer) -> None:
    size = 256 * 1024  # under drain_body_size (1 MiB)
    conn = RawHTTP(server)
    try:
        conn.send(_upload_head(size) + b"y" * size)
        status, headers = conn.read_head()
        assert status == 413
        assert conn.read_body(headers) == b"refused\n"
        assert headers.get("connection", "").lower() != "close"
        _next_request_is_answered_or_connection_closed(conn, headers, server)
    finally:
        conn.close()


def test_large_unread_body_closes_the_connection(server: LiveServer) -> None:
    if server.server == "daphne":
        pytest.skip("daphne reads the whole request body before it calls the application")
    size = 8 * 1024 * 1024  # over drain_body_size: only the start is sent
    conn = RawHTTP(server)
    try:
        conn.send(_upload_head(size) + b"z" * (64 * 1024))
        status, headers = conn.read_head()
        assert status == 413
        assert conn.read_body(headers) == b"refused\n"
        assert headers["connection"].lower() == "close"
        if server.server == "granian":
            # Granian sometimes (about 1 run in 4 here) keeps such a connection open and
            # silent after the response instead of closing it: a race inside the server,
            # after the bridge has returned. The bridge's part, the 413 with
            # `Connection: close` decided at response start, is checked above.
            return
        assert conn.closed_by_server()
    finally:
        conn.close()
