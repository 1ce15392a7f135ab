"""The environ the bridge builds, checked on real servers against PEP 3333.

PEP 3333 ("environ Variables", "Unicode Issues"): ``PATH_INFO`` is the
percent-decoded path as a latin-1 str of its bytes; ``QUERY_STRING`` stays as
sent; header names become ``HTTP_*`` with repeated headers joined by ``,``;
``CONTENT_TYPE``/``CONTENT_LENGTH`` carry no ``HTTP_`` prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bridge_helpers import ROOT_PATH_ARGS, RawHTTP, new_test_id, state_json

from live import ASGI_SERVER_PARAMS, LiveServer, live_server


def _environ(server: LiveServer, target: str, **kwargs: Any) -> dict[str, Any]:
    headers = {"X-Test-Id": new_test_id(), **kwargs.pop("headers", {})}
    with httpx.Client(base_url=server.url) as client:
        response = client.request(kwargs.pop("method", "GET"), target, headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    return state_json(response)


@pytest.mark.parametrize(
    ("target", "path_info"),
    [
        pytest.param("/environ", "/environ", id="plain"),
        pytest.param("/environ/a%2Fb", "/environ/a/b", id="encoded-slash"),
        pytest.param("/environ/a%20b", "/environ/a b", id="encoded-space"),
        # U+00E9 is C3 A9 in UTF-8; PEP 3333 hands those bytes over as latin-1 code points.
        pytest.param("/environ/caf%C3%A9", "/environ/caf\u00c3\u00a9", id="utf8-percent"),
        pytest.param("/environ/%E2%82%AC", "/environ/\u00e2\u0082\u00ac", id="euro-sign"),
    ],
)
def test_path_info(server: LiveServer, target: str, path_info: str) -> None:
    environ = _environ(server, target)
    assert environ["PATH_INFO"] == path_info
    assert environ["SCRIPT_NAME"] == ""


def test_raw_utf8_request_target(server: LiveServer) -> None:
    # A client that sends unencoded UTF-8 in the request line (curl does).
    conn = RawHTTP(server)
    try:
        conn.send(b"GET /environ/caf\xc3\xa9 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers = conn.read_head()
        body = conn.read_body(headers)
    finally:
        conn.close()
    if status == 400:
        pytest.skip(f"{server.server} rejects a non-ASCII request target before the app")
    assert status == 200, body
    assert httpx.Response(200, content=body).json()["PATH_INFO"] == "/environ/caf\u00c3\u00a9"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("a=1&b=2", id="simple"),
        pytest.param("a=1&a=2&empty=&flag", id="repeated"),
        pytest.param("q=caf%C3%A9&x=%2F%26%3D", id="percent-encoded"),
        pytest.param("q=a+b%20c", id="plus-and-space"),
    ],
)
def test_query_string_round_trip(server: LiveServer, query: str) -> None:
    environ = _environ(server, f"/environ?{query}")
    assert environ["QUERY_STRING"] == query


def test_empty_query_string(server: LiveServer) -> None:
    environ = _environ(server, "/environ")
    assert environ["QUERY_STRING"] == ""


def test_server_and_remote_address(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/environ", headers={"X-Test-Id": new_test_id()})
        stream = response.extensions["network_stream"]
        client_port = stream.get_extra_info("client_addr")[1]
    environ = state_json(response)
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(server.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == str(client_port)
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.version"] == [1, 0]
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.run_once"] is False


def test_content_headers_and_input_terminated(server: LiveServer) -> None:
    environ = _environ(
        server,
        "/environ",
        method="POST",
        content=b"x" * 10,
        headers={"Content-Type": "application/x-test"},
    )
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["CONTENT_TYPE"] == "application/x-test"
    assert environ["CONTENT_LENGTH"] == "10"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.input_terminated"] is True


def test_chunked_body_environ(server: LiveServer) -> None:
    # No Content-Length on the wire: PEP 3333 leaves CONTENT_LENGTH empty or
    # absent, unless the bridge saw the whole body and can state its size.
    size = 300_000
    chunks = (b"x" * 1000 for _ in range(size // 1000))
    environ = _environ(server, "/environ", method="POST", content=chunks)
    assert environ.get("CONTENT_LENGTH", "") in ("", str(size))
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.input_terminated"] is True


def test_no_content_length_without_body(server: LiveServer) -> None:
    environ = _environ(server, "/environ")
    assert environ.get("CONTENT_LENGTH", "") == ""
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_repeated_headers_joined(server: LiveServer) -> None:
    headers = [("X-Test-Id", new_test_id()), ("X-Multi", "one"), ("X-Multi", "two")]
    headers += [("X-Dash-Name", "d"), ("Accept", "a/b"), ("Accept", "c/d")]
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/environ", headers=headers)
    environ = state_json(response)
    assert environ["HTTP_X_MULTI"] == "one,two"
    assert environ["HTTP_X_DASH_NAME"] == "d"
    assert environ["HTTP_ACCEPT"] == "a/b,c/d"
    assert environ["HTTP_HOST"] == f"127.0.0.1:{server.port}"


def test_latin1_header_value(server: LiveServer) -> None:
    environ = _environ(server, "/environ", headers={"X-Latin": "caf\u00e9".encode("latin-1")})
    assert environ["HTTP_X_LATIN"] == "caf\u00e9"


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def mounted(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, str]]:
    """Serve the app under the root path ``/mount``; yield it and the client's path prefix."""
    args, client_sends_prefix = ROOT_PATH_ARGS[request.param]
    with live_server(request.param, "bridge_apps:app", extra_args=args) as srv:
        yield srv, "/mount" if client_sends_prefix else ""


@pytest.mark.parametrize(
    ("path", "path_info"),
    [
        pytest.param("/environ/x", "/environ/x", id="nested"),
        pytest.param("/environ/a%2Fb", "/environ/a/b", id="encoded"),
    ],
)
def test_root_path(mounted: tuple[LiveServer, str], path: str, path_info: str) -> None:
    server, prefix = mounted
    environ = _environ(server, f"{prefix}{path}?k=v")
    assert environ["SCRIPT_NAME"] == "/mount"
    assert environ["PATH_INFO"] == path_info
    assert environ["QUERY_STRING"] == "k=v"


def test_absolute_form_request_target(server: LiveServer) -> None:
    # RFC 9112 section 3.2.2: a server must accept "GET http://host/path"; gunicorn
    # gives the app "/path". hypercorn and daphne put the whole target in raw_path.
    conn = RawHTTP(server)
    try:
        conn.send(b"GET http://example.com/environ/abs?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        status, headers = conn.read_head()
        body = conn.read_body(headers)
    finally:
        conn.close()
    assert status == 200, body
    environ = httpx.Response(200, content=body).json()
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/environ/abs", "x=1")
