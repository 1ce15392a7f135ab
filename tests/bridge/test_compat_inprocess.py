"""Issue 7 §1 in process: list headers, exceptions reaching the caller, Content-Length cut,
unread request bodies drained or the connection closed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest
from bridge_harness import FakeServer, body_messages, make_scope, request, run

from asgishift.bridge import WSGIToASGI

Environ = dict[str, Any]


def test_list_headers_are_accepted() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [["Content-Type", "text/plain"], ["X-Colour", "Blue"]])
        return [b"ok"]

    server = request(WSGIToASGI(app))
    assert server.status == 200
    assert server.headers[b"x-colour"] == b"Blue"


def _failing(environ: Environ, start_response: Any) -> list[bytes]:
    raise LookupError("no such thing")


def test_httpx_asgi_transport_reraises_the_app_exception() -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=WSGIToASGI(_failing))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/thing")

    with pytest.raises(LookupError, match="no such thing"):
        asyncio.run(main())


def test_httpx_asgi_transport_sees_the_500_when_not_raising() -> None:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=WSGIToASGI(_failing), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/thing")

    response = asyncio.run(main())
    assert response.status_code == 500
    assert response.text == "500 Internal Server Error\n"


def test_disconnect_raised_by_the_app_is_not_passed_on() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        while True:
            yield b"x" * 1024

    # The server stops after two sends; the bridge ends the request quietly.
    server = run(WSGIToASGI(app), make_scope(), FakeServer(disconnect_after_sends=2))
    assert server.raised is None
    assert server.status == 200


@pytest.mark.parametrize(
    ("blocks", "buffer_size"),
    [
        pytest.param([b"hello world"], 65536, id="one-block"),
        pytest.param([b"hel", b"lo world", b"!"], 65536, id="three-blocks"),
        pytest.param([b"hel", b"lo world"], 2, id="streamed"),
    ],
)
def test_body_longer_than_content_length_is_cut_with_a_warning(
    blocks: list[bytes], buffer_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return blocks

    with caplog.at_level(logging.WARNING, logger="asgishift.bridge"):
        server = request(WSGIToASGI(validator(app), buffer_size=buffer_size))
    assert server.body == b"hello"
    assert server.complete
    extra = sum(map(len, blocks)) - 5
    assert f"sent {extra} bytes more than its Content-Length of 5" in caplog.text


def test_body_shorter_than_content_length_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return [b"short"]

    with caplog.at_level(logging.WARNING, logger="asgishift.bridge"):
        server = request(WSGIToASGI(validator(app)))
    assert server.body == b"short"
    assert "sent 95 bytes fewer than its Content-Length of 100 (GET /)" in caplog.text


def test_head_and_204_responses_are_not_short(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        status = "204 No Content" if environ["PATH_INFO"] == "/none" else "200 OK"
        start_response(status, [("Content-Length", "100")])
        return []

    with caplog.at_level(logging.WARNING, logger="asgishift.bridge"):
        head = request(WSGIToASGI(app), method="HEAD")
        no_content = request(WSGIToASGI(app), path="/none", raw_path=b"/none")
    assert (head.status, no_content.status) == (200, 204)
    assert "fewer than" not in caplog.text


def test_a_client_waiting_for_100_continue_is_refused_without_waiting_for_its_body() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        raise AssertionError("a refused request never reaches the app")

    # The client sends its body only after "100 Continue", which nobody says: receive()
    # never returns. A drain bounded by drain_timeout would outlast run()'s deadline.
    bridge = WSGIToASGI(app, max_body_size=10, drain_timeout=3600)
    scope = make_scope(
        method="POST",
        headers=[
            (b"host", b"testserver"),
            (b"content-length", b"200"),
            (b"expect", b"100-continue"),
        ],
    )
    server = run(bridge, scope, FakeServer([]))
    assert server.status == 413
    assert server.headers[b"connection"] == b"close"
    assert server.complete


def _ignore_body(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("413 Content Too Large", [("Content-Type", "text/plain")])
    return [b"no"]


def _upload_scope(length: int | None) -> dict[str, Any]:
    headers = [(b"host", b"testserver")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return make_scope(method="POST", headers=headers)


@pytest.mark.parametrize(
    ("length", "chunks", "drain_body_size", "close", "all_read"),
    [
        pytest.param(300, [b"a" * 100] * 3, 1024, False, True, id="small-known-rest-drained"),
        pytest.param(500, [b"a" * 100] * 5, 150, True, False, id="rest-over-limit-closes"),
        pytest.param(None, [b"a" * 100] * 3, 1 << 20, True, True, id="chunked-closes"),
    ],
)
def test_unread_request_body(
    length: int | None,
    chunks: list[bytes],
    drain_body_size: int,
    close: bool,
    all_read: bool,
) -> None:
    # buffer_size 0: the bridge does not collect the body before dispatch.
    bridge = WSGIToASGI(
        validator(_ignore_body), buffer_size=0, drain_body_size=drain_body_size, drain_timeout=5
    )
    server = run(bridge, _upload_scope(length), FakeServer(body_messages(*chunks)))
    assert server.status == 413
    assert server.body == b"no"
    assert (server.headers.get(b"connection") == b"close") is close
    # Whatever was decided, the queue is read before the last message. (A
    # streamed response also keeps one receive() waiting for the disconnect.)
    assert (not server.requests) is all_read
    assert server.complete


def test_unread_body_drain_gives_up_after_drain_timeout() -> None:
    bridge = WSGIToASGI(validator(_ignore_body), buffer_size=0, drain_timeout=0.05)
    # The client sends one block of 300 and then nothing: the drain waits, bounded.
    server = run(bridge, _upload_scope(300), FakeServer(body_messages(b"a" * 100, b"b")[:1]))
    assert server.status == 413
    assert server.complete


def test_early_413_for_a_large_declared_body_closes_the_connection() -> None:
    bridge = WSGIToASGI(validator(_ignore_body), max_body_size=10)
    server = run(bridge, _upload_scope(5 << 20), FakeServer(body_messages(b"x" * 100, b"y")))
    assert server.status == 413
    assert server.headers[b"connection"] == b"close"
    assert server.complete


def _refusing_an_unread_body(
    app: Any, http_version: str, raises: type[BaseException] | None = None, **options: Any
) -> FakeServer:
    """Run a POST whose body (chunked or over max_body_size) the bridge leaves unread."""
    bridge = WSGIToASGI(app, drain_timeout=5, **options)
    scope = _upload_scope(5 << 20 if "max_body_size" in options else None)
    scope["http_version"] = http_version
    return run(bridge, scope, FakeServer(body_messages(b"x" * 100, b"y")), raises=raises)


@pytest.mark.parametrize(
    ("http_version", "closes"), [("1.0", True), ("1.1", True), ("2", False), ("3", False)]
)
@pytest.mark.parametrize(
    ("app", "options"),
    [
        pytest.param(validator(_ignore_body), {"buffer_size": 0}, id="app-ignores-the-body"),
        pytest.param(validator(_ignore_body), {"max_body_size": 10}, id="early-413"),
    ],
)
def test_connection_close_only_on_http1(
    http_version: str, closes: bool, app: Any, options: dict[str, Any]
) -> None:
    # HTTP/2 and HTTP/3 forbid connection-specific fields (RFC 9113 section 8.2.2,
    # RFC 9114 section 4.2): the bridge must not ask for one there.
    server = _refusing_an_unread_body(app, http_version, **options)
    assert server.status == 413
    assert (b"connection" in server.headers) is closes
    assert server.complete


@pytest.mark.parametrize(("http_version", "closes"), [("1.1", True), ("2", False)])
def test_an_app_failure_with_an_unread_body_closes_only_on_http1(
    http_version: str, closes: bool
) -> None:
    def fails(environ: Environ, start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    server = _refusing_an_unread_body(fails, http_version, RuntimeError, buffer_size=0)
    assert server.status == 500
    assert (b"connection" in server.headers) is closes
