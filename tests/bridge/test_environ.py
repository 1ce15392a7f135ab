"""Sans-IO tests of scope → environ (``_environ``) and response checks (``_response``).

Every test runs against both builds of the environ: the Python definition and, where
it was compiled, the C build of its common case (``test_cenviron.py`` compares the two
directly).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from bridge_harness import make_scope

from asgishift.bridge import _environ
from asgishift.bridge._environ import base_environ, build_environ, decode_path
from asgishift.bridge._errors import BadRequest, InvalidResponse
from asgishift.bridge._response import check_status, encode_headers

BASE = base_environ(errors=None, file_wrapper=None)

_BUILDS = {"python": _environ.python_build_environ, "c": _environ.build_environ}


@pytest.fixture(
    autouse=True,
    params=[
        "python",
        pytest.param(
            "c",
            marks=pytest.mark.skipif(
                _environ.build_environ is _environ.python_build_environ,
                reason="the C extension is not built here",
            ),
        ),
    ],
)
def _build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test with ``build_environ`` bound to one build of the environ."""
    monkeypatch.setitem(globals(), "build_environ", _BUILDS[request.param])


def environ_for(**scope: Any) -> dict[str, Any]:
    return build_environ(make_scope(**scope), BASE)


@pytest.mark.parametrize(
    ("root_path", "path", "raw_path", "expected"),
    [
        pytest.param(
            "/app", "/app/items", b"/app/items", ("/app", "/items"), id="uvicorn-includes-root"
        ),
        pytest.param("/app", "/items", b"/items", ("/app", "/items"), id="hypercorn-excludes-root"),
        pytest.param("/app", "/app", b"/app", ("/app", ""), id="exactly-root"),
        pytest.param("/app/", "/app/x", b"/app/x", ("/app", "/x"), id="root-trailing-slash"),
        pytest.param(
            "/app", "/application", b"/application", ("/app", "/application"), id="not-a-segment"
        ),
        pytest.param("", "/x", b"/x", ("", "/x"), id="no-root"),
        pytest.param("/app", "/app/x", None, ("/app", "/x"), id="no-raw-path"),
    ],
)
def test_script_name_and_path_info(
    root_path: str, path: str, raw_path: bytes | None, expected: tuple[str, str]
) -> None:
    scope = make_scope(root_path=root_path, path=path, raw_path=raw_path)
    assert decode_path(scope) == expected


@pytest.mark.parametrize(
    ("path", "raw_path", "expected"),
    [
        pytest.param("/a b", b"/a%20b", "/a b", id="space"),
        pytest.param("/a/b", b"/a%2Fb", "/a/b", id="encoded-slash-decoded-like-gunicorn"),
        pytest.param("/€", b"/%E2%82%AC", "/\xe2\x82\xac", id="utf8-as-latin1"),
        pytest.param("/\udcff", b"/%FF", "/\xff", id="non-utf8-byte"),
        pytest.param("/x", b"/x?q=1", "/x", id="query-on-raw-path-dropped"),
    ],
)
def test_path_info_from_raw_path(path: str, raw_path: bytes, expected: str) -> None:
    assert environ_for(path=path, raw_path=raw_path)["PATH_INFO"] == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(b"http://example.com/a/b", "/a/b", id="http"),
        pytest.param(b"https://example.com:8443/a%2Fb?q=1", "/a/b", id="https-port-escaped"),
        pytest.param(b"http://example.com", "/", id="no-path"),
        pytest.param(b"HTTP://example.com/x", "/x", id="upper-case-scheme"),
        pytest.param(b"*", "*", id="asterisk-form-kept"),
    ],
)
def test_absolute_form_target_gives_its_path(target: bytes, expected: str) -> None:
    # RFC 9112 section 3.2.2; hypercorn and daphne pass the whole target on.
    path = unquote(target.partition(b"?")[0].decode("latin-1"))  # what the servers put in path
    assert environ_for(path=path, raw_path=target)["PATH_INFO"] == expected
    assert environ_for(path=path, raw_path=None)["PATH_INFO"] == expected


def test_absolute_form_under_a_root_path() -> None:
    environ = environ_for(root_path="/app", path="http://h/app/x", raw_path=b"http://h/app/x")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/x")


def test_path_info_from_path_when_no_raw_path() -> None:
    assert environ_for(path="/€/x", raw_path=None)["PATH_INFO"] == "/\xe2\x82\xac/x"


def test_root_path_non_ascii_is_latin1() -> None:
    environ = environ_for(root_path="/é", path="/é/x", raw_path=b"/%C3%A9/x")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/\xc3\xa9", "/x")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"a=1&b=2", id="plain"),
        pytest.param(b"q=%E2%82%AC&x=%2F%20", id="percent-encoded-kept"),
        pytest.param("q=€".encode(), id="raw-utf8"),
        pytest.param(b"x=\xff\xfe", id="raw-non-utf8"),
    ],
)
def test_query_string_round_trips(query: bytes) -> None:
    environ = environ_for(query_string=query)
    assert environ["QUERY_STRING"].encode("latin-1") == query


def test_repeated_headers_joined_with_comma() -> None:
    headers = [
        (b"x-forwarded-for", b"1.1.1.1"),
        (b"accept", b"a"),
        (b"x-forwarded-for", b"2.2.2.2"),
    ]
    environ = environ_for(headers=headers)
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1,2.2.2.2"
    assert environ["HTTP_ACCEPT"] == "a"


def test_http2_cookies_joined_with_semicolon() -> None:
    headers = [(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"cookie", b"c=3")]
    assert environ_for(headers=headers)["HTTP_COOKIE"] == "a=1; b=2; c=3"


def test_many_repeated_headers_all_kept_in_order() -> None:
    values = [f"v{i}".encode() for i in range(5000)]
    environ = environ_for(headers=[(b"x-many", v) for v in values])
    assert environ["HTTP_X_MANY"] == ",".join(v.decode() for v in values)


def test_header_values_are_latin1() -> None:
    environ = environ_for(headers=[(b"x-name", "Zoë".encode())])
    assert environ["HTTP_X_NAME"].encode("latin-1") == "Zoë".encode()


def test_underscore_headers_dropped() -> None:
    headers = [(b"x-user", b"real"), (b"x_user", b"spoofed")]
    environ = environ_for(headers=headers)
    assert environ["HTTP_X_USER"] == "real"


def test_content_headers_have_no_http_prefix() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"12")]
    environ = environ_for(method="POST", headers=headers)
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "12"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_no_content_length_key_without_header() -> None:
    assert "CONTENT_LENGTH" not in environ_for()


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([b"abc"], id="letters"),
        pytest.param([b"-1"], id="negative"),
        pytest.param([b"1.5"], id="decimal-point"),
        pytest.param(["²".encode("latin-1")], id="superscript-digit"),
        pytest.param([b"5", b"6"], id="conflicting"),
    ],
)
def test_bad_content_length_is_bad_request(values: list[bytes]) -> None:
    with pytest.raises(BadRequest) as info:
        environ_for(headers=[(b"content-length", v) for v in values])
    assert info.value.error_status_hint == 400


def test_identical_repeated_content_length_accepted() -> None:
    environ = environ_for(headers=[(b"content-length", b"5"), (b"content-length", b"5")])
    assert environ["CONTENT_LENGTH"] == "5"


def test_addresses_and_scheme() -> None:
    environ = environ_for(
        scheme="https", client=("10.0.0.7", 4242), server=("example.org", 8443), http_version="2"
    )
    assert environ["wsgi.url_scheme"] == "https"
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("10.0.0.7", "4242")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.org", "8443")
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        pytest.param(b"example.org:8080", "http", ("example.org", "8080"), id="host-with-port"),
        pytest.param(b"example.org", "https", ("example.org", "443"), id="https-default"),
        pytest.param(b"[::1]:9000", "http", ("[::1]", "9000"), id="ipv6-with-port"),
        pytest.param(b"[::1]", "http", ("[::1]", "80"), id="ipv6-no-port"),
    ],
)
def test_server_address_from_host_without_server(
    host: bytes, scheme: str, expected: tuple[str, str]
) -> None:
    environ = environ_for(server=None, scheme=scheme, headers=[(b"host", host)])
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == expected


def test_unix_socket_server_and_no_client() -> None:
    environ = environ_for(server=("/run/app.sock", None), client=None, headers=[])
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("/run/app.sock", "80")
    assert "REMOTE_ADDR" not in environ


def test_constant_keys() -> None:
    environ = environ_for()
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["REQUEST_METHOD"] == "GET"


def test_base_is_not_mutated() -> None:
    base = base_environ(errors=None, file_wrapper=None)
    before = dict(base)
    build_environ(make_scope(headers=[(b"x-a", b"1")], query_string=b"a=1"), base)
    assert base == before


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param("200 OK", 200, id="ok"),
        pytest.param("404 Not Found", 404, id="not-found"),
        pytest.param("599 Custom", 599, id="custom"),
        pytest.param("204", 204, id="no-reason"),
    ],
)
def test_check_status_accepts(status: str, code: int) -> None:
    assert check_status(status) == code


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(200, id="int"),
        pytest.param(b"200 OK", id="bytes"),
        pytest.param("OK", id="no-code"),
        pytest.param("20 OK", id="two-digits"),
        pytest.param("200OK", id="no-space"),
        pytest.param("099 Low", id="leading-zero"),
        pytest.param("200 OK\r\nX-Evil: 1", id="crlf"),
    ],
)
def test_check_status_refuses(status: Any) -> None:
    with pytest.raises(InvalidResponse):
        check_status(status)


def test_encode_headers_lowercases_names_and_keeps_values() -> None:
    encoded = encode_headers([("Content-Type", "text/html; charset=UTF-8"), ("X-A", "Zoë\tz")])
    assert encoded == [
        (b"content-type", b"text/html; charset=UTF-8"),
        (b"x-a", "Zoë\tz".encode("latin-1")),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("X-A", "1\r\nSet-Cookie: evil=1")], id="crlf-value"),
        pytest.param([("X-A", "1\nX-B: 2")], id="lf-value"),
        pytest.param([("X-A", "1\r")], id="cr-value"),
        pytest.param([("X-A", "a\x00b")], id="nul-value"),
        pytest.param([("X-A\r\nX-B", "1")], id="crlf-name"),
        pytest.param([("X A", "1")], id="space-in-name"),
        pytest.param([("", "1")], id="empty-name"),
        pytest.param([("X-A", "€")], id="not-latin1"),
        pytest.param([("X-A", 1)], id="int-value"),
        pytest.param([(b"X-A", "1")], id="bytes-name"),
        pytest.param([("X-A", "1", "2")], id="triple"),
        pytest.param([["X-A"]], id="one-item-list"),
        pytest.param("X-A: 1", id="str-of-headers"),
        pytest.param({"X-A": "1"}, id="dict-of-headers"),
    ],
)
def test_encode_headers_refuses(headers: Any) -> None:
    with pytest.raises(InvalidResponse):
        encode_headers(headers)


# Scopes as each server sent them for ``GET /app/x%20y/%2F?q=%E2%82%AC`` started
# with root path /app (captured with granian 2.8, hypercorn 0.17, daphne 4, uvicorn 0.3x).
# uvicorn prepends root_path to the path it received (it assumes a proxy stripped
# the prefix), so its PATH_INFO keeps the "/app" that was really requested.
_COMMON = {"root_path": "/app", "query_string": b"q=%E2%82%AC", "http_version": "1.1"}


@pytest.mark.parametrize(
    ("scope", "path_info", "server_port"),
    [
        pytest.param(
            {
                **_COMMON,
                "path": "/app/x y//",
                "raw_path": b"/app/x%20y/%2F",
                "server": ("127.0.0.1", "8713"),
                "client": ("127.0.0.1", "47700"),
                "extensions": {"http.response.pathsend": {}},
            },
            "/x y//",
            "8713",
            id="granian",
        ),
        pytest.param(
            {
                **_COMMON,
                "path": "/app/x y//",
                "raw_path": b"/app/x%20y/%2F",
                "server": ("127.0.0.1", 8714),
                "client": ("127.0.0.1", 41168),
                "extensions": {},
            },
            "/x y//",
            "8714",
            id="hypercorn",
        ),
        pytest.param(
            {
                **_COMMON,
                "path": "/app/x y//",
                "raw_path": b"/app/x%20y/%2F",
                "server": ["127.0.0.1", 8715],
                "client": ["127.0.0.1", 52026],
                "extensions": None,
            },
            "/x y//",
            "8715",
            id="daphne",
        ),
        pytest.param(
            {
                **_COMMON,
                "path": "/app/app/x y//",
                "raw_path": b"/app/app/x%20y/%2F",
                "server": ("127.0.0.1", 8716),
                "client": ("127.0.0.1", 47988),
                "extensions": None,
            },
            "/app/x y//",
            "8716",
            id="uvicorn",
        ),
    ],
)
def test_real_server_scopes(scope: dict[str, Any], path_info: str, server_port: str) -> None:
    environ = environ_for(**scope)
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == path_info
    assert environ["QUERY_STRING"] == "q=%E2%82%AC"
    assert environ["SERVER_PORT"] == server_port
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"].isdigit()
