"""Table-driven tests of ``asgishift.bridge._scope``: PEP 3333 environ -> ASGI HTTP scope.

No server: each row is an environ (as a WSGI server would build it) and the
scope fields it must give.
"""

from __future__ import annotations

from typing import Any

import pytest

from asgishift.bridge._scope import (
    ScopeError,
    build_scope,
    header_name,
    http_version,
    request_body_length,
)


def _environ(**extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
    }
    environ.update(extra)
    return environ


def _latin1(text: str) -> str:
    """Spell UTF-8 text the way PEP 3333 hands it over: one character per byte."""
    return text.encode("utf-8").decode("latin-1")


# (id, environ overrides, expected scope fields)
SCOPE_ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("root", {}, {"path": "/", "raw_path": b"/", "root_path": "", "query_string": b""}),
    (
        "script-name-is-root-path-and-part-of-path",
        {"SCRIPT_NAME": "/app", "PATH_INFO": "/users/1"},
        {"path": "/app/users/1", "root_path": "/app", "raw_path": b"/app/users/1"},
    ),
    (
        "utf8-path-round-trips-through-latin1",
        {"PATH_INFO": _latin1("/café/ünï")},
        {"path": "/café/ünï", "raw_path": b"/caf%C3%A9/%C3%BCn%C3%AF"},
    ),
    (
        "utf8-script-name",
        {"SCRIPT_NAME": _latin1("/zürich"), "PATH_INFO": "/x"},
        {"path": "/zürich/x", "root_path": "/zürich"},
    ),
    (
        "invalid-utf8-becomes-replacement-char-raw-path-keeps-bytes",
        {"PATH_INFO": "/\xff"},
        {"path": "/\ufffd", "raw_path": b"/%FF"},
    ),
    (
        "raw-uri-kept-when-it-names-the-path",
        {"PATH_INFO": "/a/b", "RAW_URI": "/a%2Fb?x=1"},
        {"path": "/a/b", "raw_path": b"/a%2Fb"},
    ),
    (
        "request-uri-kept-when-it-names-the-path",
        {"PATH_INFO": "/a b", "REQUEST_URI": "/a%20b"},
        {"raw_path": b"/a%20b"},
    ),
    (
        "raw-uri-ignored-when-a-mount-changed-the-path",
        {"SCRIPT_NAME": "/mnt", "PATH_INFO": "/a", "RAW_URI": "/a"},
        {"path": "/mnt/a", "raw_path": b"/mnt/a"},
    ),
    (
        "raw-uri-in-absolute-form-ignored",
        {"PATH_INFO": "/a", "RAW_URI": "http://example.com/a"},
        {"raw_path": b"/a"},
    ),
    (
        "query-string-bytes",
        {"QUERY_STRING": "a=1&b=%20&c=" + _latin1("é")},
        {"query_string": b"a=1&b=%20&c=\xc3\xa9"},
    ),
    ("method-upper", {"REQUEST_METHOD": "post"}, {"method": "POST"}),
    ("https", {"wsgi.url_scheme": "https"}, {"scheme": "https"}),
    ("http10", {"SERVER_PROTOCOL": "HTTP/1.0"}, {"http_version": "1.0"}),
    ("http2", {"SERVER_PROTOCOL": "HTTP/2.0"}, {"http_version": "2"}),
    ("unknown-protocol", {"SERVER_PROTOCOL": "SPDY/3"}, {"http_version": "1.1"}),
    (
        "client-and-server",
        {"REMOTE_ADDR": "10.0.0.7", "REMOTE_PORT": "51234"},
        {"client": ("10.0.0.7", 51234), "server": ("127.0.0.1", 8000)},
    ),
    ("client-without-port", {"REMOTE_ADDR": "10.0.0.7"}, {"client": ("10.0.0.7", None)}),
    ("no-client", {}, {"client": None}),
    (
        "unix-socket-server",
        {"SERVER_NAME": "/run/app.sock", "SERVER_PORT": ""},
        {"server": ("/run/app.sock", None)},
    ),
    ("type-and-asgi", {}, {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}}),
]


@pytest.mark.parametrize(("overrides", "expected"), [r[1:] for r in SCOPE_ROWS],
                         ids=[r[0] for r in SCOPE_ROWS])  # fmt: skip
def test_scope_fields(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    scope = build_scope(_environ(**overrides))
    assert {key: scope[key] for key in expected} == expected


# (id, environ overrides, expected headers)
HEADER_ROWS: list[tuple[str, dict[str, Any], list[tuple[bytes, bytes]]]] = [
    ("none", {}, []),
    (
        "http-keys-lowercased-dashes",
        {"HTTP_HOST": "example.com", "HTTP_X_FORWARDED_FOR": "1.2.3.4"},
        [(b"host", b"example.com"), (b"x-forwarded-for", b"1.2.3.4")],
    ),
    (
        "content-type-and-length-from-cgi-keys",
        {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "12"},
        [(b"content-type", b"text/plain"), (b"content-length", b"12")],
    ),
    (
        "http-content-duplicates-dropped",
        {"HTTP_CONTENT_TYPE": "a/b", "CONTENT_TYPE": "c/d", "HTTP_CONTENT_LENGTH": "1"},
        [(b"content-type", b"c/d")],
    ),
    ("empty-cgi-keys-dropped", {"CONTENT_TYPE": "", "CONTENT_LENGTH": ""}, []),
    ("latin1-value-bytes", {"HTTP_X_NAME": _latin1("Zoë")}, [(b"x-name", "Zoë".encode())]),
    ("non-http-keys-ignored", {"REMOTE_USER": "bob", "wsgi.input": object()}, []),
]


@pytest.mark.parametrize(("overrides", "expected"), [r[1:] for r in HEADER_ROWS],
                         ids=[r[0] for r in HEADER_ROWS])  # fmt: skip
def test_headers(overrides: dict[str, Any], expected: list[tuple[bytes, bytes]]) -> None:
    assert build_scope(_environ(**overrides))["headers"] == expected


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("HTTP_ACCEPT", b"accept"),
        ("HTTP_X_REQUEST_ID", b"x-request-id"),
        ("HTTP_CONTENT_TYPE", None),
        ("PATH_INFO", None),
        ("HTTP", None),
    ],
)
def test_header_name(key: str, name: bytes | None) -> None:
    assert header_name(key) == name


@pytest.mark.parametrize(
    ("protocol", "version"),
    [("HTTP/1.1", "1.1"), ("HTTP/1.0", "1.0"), ("http/1.1", "1.1"), ("HTTP/2", "2")],
)
def test_http_version(protocol: str, version: str) -> None:
    assert http_version(protocol) == version


# (id, environ overrides, expected length: int, None for "to EOF")
LENGTH_ROWS: list[tuple[str, dict[str, Any], int | None]] = [
    ("no-length-no-body", {}, 0),
    ("content-length", {"CONTENT_LENGTH": "42"}, 42),
    ("zero", {"CONTENT_LENGTH": "0"}, 0),
    (
        "chunked-on-a-terminating-server",
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},
        None,
    ),
    ("terminated-but-no-body", {"wsgi.input_terminated": True}, 0),
]


@pytest.mark.parametrize(("overrides", "expected"), [r[1:] for r in LENGTH_ROWS],
                         ids=[r[0] for r in LENGTH_ROWS])  # fmt: skip
def test_request_body_length(overrides: dict[str, Any], expected: int | None) -> None:
    assert request_body_length(_environ(**overrides)) == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "١٢", " 12"])
def test_bad_content_length_is_a_scope_error(value: str) -> None:
    with pytest.raises(ScopeError, match="CONTENT_LENGTH") as caught:
        build_scope(_environ(CONTENT_LENGTH=value))
    assert caught.value.error_status_hint == 400
    with pytest.raises(ScopeError):
        request_body_length(_environ(CONTENT_LENGTH=value))


def test_a_body_the_server_cannot_end_is_refused_with_411() -> None:
    """Chunked upload on a server without ``wsgi.input_terminated`` (wsgiref): the app
    cannot know where the body ends, so the request is refused (RFC 9110 15.5.12,
    411 Length Required) rather than served with an empty body, which lost the upload."""
    with pytest.raises(ScopeError, match="Transfer-Encoding") as caught:
        request_body_length(_environ(HTTP_TRANSFER_ENCODING="chunked"))
    assert caught.value.error_status_hint == 411


def test_state_is_a_shallow_copy_and_extensions_pass_through() -> None:
    state = {"db": object()}
    extensions = {"http.response.pathsend": {}}
    scope = build_scope(_environ(), state=state, extensions=extensions)
    assert scope["state"] == state
    assert scope["state"] is not state
    assert scope["extensions"] is extensions
    assert "state" not in build_scope(_environ())
