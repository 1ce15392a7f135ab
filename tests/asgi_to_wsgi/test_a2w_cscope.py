"""The C build of the scope (``_cscope.c``) against its Python definition.

``_scope.python_build_scope`` defines the scope; the C extension builds the same
dict for the common request and hands every other call back to it. These tests
hold the two to the same result (the same items in the same order, or the same
error) on a table of environs that reaches every hand-back and on generated
ones; they check that a gunicorn request does not reach Python once the caches
are warm, and that no path leaks memory (``tests/bridge/test_accel.py`` checks
that it is built and used).
"""

from __future__ import annotations

import io
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from test_a2w_scope_table import SCOPE_ROWS, _environ

from asgishift.bridge import _scope
from bridge.bridge_harness import memory_growth

try:
    from asgishift.bridge import _cscope
except ImportError:  # built where a C compiler was found at install time
    _cscope = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(_cscope is None, reason="the C extension is not built here")

#: What ``_scope`` gives the extension besides the definition (see ``_scope.build_scope``).
STATE = (_scope._NAME_CACHE, _scope._ADDRESS_CACHE, _scope._HTTP_VERSIONS, _scope.ASGI_VERSION)


def gunicorn_environ(**extra: Any) -> dict[str, Any]:
    """An environ as gunicorn builds it for ``GET /items?page=2`` (key order included)."""
    environ: dict[str, Any] = {
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": object,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "gunicorn/23.0.0",
        "wsgi.input": io.BytesIO(b""),
        "gunicorn.socket": object(),
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "page=2",
        "RAW_URI": "/items?page=2",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "curl/8.0",
        "HTTP_ACCEPT": "*/*",
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50412",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "PATH_INFO": "/items",
        "SCRIPT_NAME": "",
    }
    environ.update(extra)
    return environ


def outcome(build: Callable[..., Any], environ: Any, **kwargs: Any) -> Any:
    """Return the scope's items in order, or the error's type and message."""
    try:
        scope = build(environ, **kwargs)
    except Exception as exc:  # both builds must fail the same way
        return (type(exc), str(exc))
    return list(scope.items())


def both(environ: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Return the C build's outcome and the definition's for ``environ``.

    The definition runs first, so the C build finds the caches it fills (as it
    does once a server has seen a request like this one).
    """
    expected = outcome(_scope.python_build_scope, environ, **kwargs)
    return outcome(_cscope.build_scope, environ, **kwargs), expected


@contextmanager
def counted_fallbacks() -> Iterator[list[Any]]:
    """Count the calls the extension hands back to the definition."""
    calls: list[Any] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return _scope.python_build_scope(*args, **kwargs)

    _cscope.configure(counting, *STATE)
    try:
        yield calls
    finally:
        _cscope.configure(_scope.python_build_scope, *STATE)


#: (id, environ) pairs that reach each of the extension's hand-backs, or its fast path.
HAND_BACKS: list[tuple[str, dict[str, Any]]] = [
    ("gunicorn", gunicorn_environ()),
    ("lowercase-method", gunicorn_environ(REQUEST_METHOD="get")),
    ("no-method", {k: v for k, v in gunicorn_environ().items() if k != "REQUEST_METHOD"}),
    ("non-ascii-path", gunicorn_environ(PATH_INFO="/caf\xc3\xa9", RAW_URI="/caf%C3%A9")),
    ("escaped-target", gunicorn_environ(PATH_INFO="/a/b", RAW_URI="/a%2Fb")),
    ("target-differs", gunicorn_environ(RAW_URI="/elsewhere")),
    ("target-not-a-path", gunicorn_environ(RAW_URI="http://example.com/items")),
    ("unsafe-path-no-target", gunicorn_environ(PATH_INFO="/a b", RAW_URI="")),
    ("safe-path-no-target", gunicorn_environ(PATH_INFO="/a;b=c,d", RAW_URI=None)),
    ("request-uri-only", {**gunicorn_environ(RAW_URI=""), "REQUEST_URI": "/items?x"}),
    ("bytes-target", gunicorn_environ(RAW_URI=b"/items")),
    ("non-ascii-target", gunicorn_environ(RAW_URI="/it\xe9ms")),
    ("script-name", gunicorn_environ(SCRIPT_NAME="/app", RAW_URI="/app/items")),
    ("query-latin1", gunicorn_environ(QUERY_STRING="q=\xe9")),
    ("query-not-str", gunicorn_environ(QUERY_STRING=b"q=1")),
    ("header-latin1", gunicorn_environ(HTTP_USER_AGENT="caf\xe9")),
    ("header-not-str", gunicorn_environ(HTTP_X_COUNT=3)),
    ("header-new-name", gunicorn_environ(HTTP_X_NEVER_SEEN_BEFORE_IN_THIS_TEST="1")),
    ("content-headers", gunicorn_environ(CONTENT_TYPE="text/plain", CONTENT_LENGTH="12")),
    ("content-length-bad", gunicorn_environ(CONTENT_LENGTH="12x")),
    ("content-length-empty", gunicorn_environ(CONTENT_LENGTH="", CONTENT_TYPE="")),
    ("content-type-none", gunicorn_environ(CONTENT_TYPE=None)),
    ("content-type-latin1", gunicorn_environ(CONTENT_TYPE="text/\xe9")),
    ("protocol-lowercase", gunicorn_environ(SERVER_PROTOCOL="http/1.0")),
    ("protocol-http2", gunicorn_environ(SERVER_PROTOCOL="HTTP/2")),
    ("protocol-unknown", gunicorn_environ(SERVER_PROTOCOL="SPDY/3")),
    ("protocol-missing", {k: v for k, v in gunicorn_environ().items() if k != "SERVER_PROTOCOL"}),
    ("scheme-missing", {k: v for k, v in gunicorn_environ().items() if k != "wsgi.url_scheme"}),
    ("scheme-https", gunicorn_environ(**{"wsgi.url_scheme": "https"})),
    ("client-new-port", gunicorn_environ(REMOTE_PORT="61234")),
    ("client-no-port", {k: v for k, v in gunicorn_environ().items() if k != "REMOTE_PORT"}),
    ("client-empty", gunicorn_environ(REMOTE_ADDR="")),
    ("client-none", gunicorn_environ(REMOTE_ADDR=None)),
    ("client-missing", {k: v for k, v in gunicorn_environ().items() if k != "REMOTE_ADDR"}),
    ("client-not-str", gunicorn_environ(REMOTE_ADDR=("127.0.0.1",))),
    ("unix-socket-server", gunicorn_environ(SERVER_NAME="/run/app.sock", SERVER_PORT="")),
    ("unhashable-port", gunicorn_environ(REMOTE_PORT=["1"])),
    ("path-not-str", gunicorn_environ(PATH_INFO=b"/items")),
    ("non-str-key", {**gunicorn_environ(), 7: "seven"}),
]


@pytest.mark.parametrize("environ", [row[1] for row in HAND_BACKS], ids=[r[0] for r in HAND_BACKS])
def test_the_c_build_gives_what_python_gives(environ: dict[str, Any]) -> None:
    c_build, definition = both(environ)
    assert c_build == definition
    extras = {"state": {"pool": object()}, "extensions": {"http.response.pathsend": {}}}
    c_build, definition = both(environ, **extras)
    assert c_build == definition


@pytest.mark.parametrize(
    "overrides", [row[1] for row in SCOPE_ROWS], ids=[row[0] for row in SCOPE_ROWS]
)
def test_the_c_build_agrees_on_every_row_of_the_scope_table(overrides: dict[str, Any]) -> None:
    c_build, definition = both(_environ(**overrides))
    assert c_build == definition


def test_arguments_python_refuses_are_refused_the_same_way() -> None:
    environ = gunicorn_environ()
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((environ, {}), {}),
        ((environ,), {"stat": {}}),
        ((), {}),
        ((list(environ.items()),), {}),
    ]
    for args, kwargs in calls:
        refusals = []
        for build in (_cscope.build_scope, _scope.python_build_scope):
            with pytest.raises((TypeError, AttributeError)) as refused:
                build(*args, **kwargs)
            refusals.append((refused.type, str(refused.value)))
        assert refusals[0] == refusals[1]
    # A state that is not a dict is Python's to copy (a list's copy, here).
    assert outcome(_cscope.build_scope, environ, state=[("a", 1)]) == outcome(
        _scope.python_build_scope, environ, state=[("a", 1)]
    )


def test_the_state_and_the_asgi_version_are_fresh_copies() -> None:
    state = {"pool": object()}
    scope = _cscope.build_scope(gunicorn_environ(), state=state)
    assert scope["state"] == state
    assert scope["state"] is not state
    assert scope["asgi"] == _scope.ASGI_VERSION
    assert scope["asgi"] is not _scope.ASGI_VERSION


def test_a_gunicorn_request_stays_in_c_once_the_caches_are_warm() -> None:
    _scope.python_build_scope(gunicorn_environ())  # fills the header-name and address caches
    fast = [name for name, _ in HAND_BACKS[:1]] + ["scheme-https", "script-name"]
    environs = [environ for name, environ in HAND_BACKS if name in fast]
    with counted_fallbacks() as calls:
        for environ in environs:
            _scope.python_build_scope(environ)  # warm
            _cscope.build_scope(environ, state={}, extensions={"x": {}})
    assert calls == []
    with counted_fallbacks() as calls:
        _cscope.build_scope(gunicorn_environ(REQUEST_METHOD="get"))
    assert len(calls) == 1


def test_generated_environs_agree() -> None:
    rng = random.Random(7)
    choices: dict[str, list[Any]] = {
        "REQUEST_METHOD": ["GET", "POST", "get", "PATCH", "", "M\xe9"],
        "SCRIPT_NAME": ["", "/app", "/\xc3\xa9", "/a b"],
        "PATH_INFO": ["/", "/x", "", "/a%2Fb", "/sp ace", "/\xc3\xa9", "/a;b"],
        "RAW_URI": ["", "/", "/x", "/app/x?y=1", "/a%2Fb", "*", None],
        "QUERY_STRING": ["", "a=1", "a=\xe9"],
        "SERVER_PROTOCOL": ["HTTP/1.1", "HTTP/1.0", "http/1.1", "HTTP/2", "X"],
        "CONTENT_LENGTH": ["", "0", "10", "-1", "1e3"],
        "CONTENT_TYPE": ["", "text/plain", "a/\xe9"],
        "REMOTE_ADDR": ["127.0.0.1", "", "::1"],
        "REMOTE_PORT": ["1", "", "x"],
        "HTTP_X_A": ["1", "\xe9", ""],
    }
    for _ in range(2000):
        environ = gunicorn_environ()
        for key, values in choices.items():
            if rng.random() < 0.5:
                value = rng.choice(values)
                if value is None:
                    environ.pop(key, None)
                else:
                    environ[key] = value
        c_build, definition = both(environ, state={} if rng.random() < 0.5 else None)
        assert c_build == definition, environ


def test_no_path_leaks_memory() -> None:
    environs = [environ for _, environ in HAND_BACKS]

    def call(environ: dict[str, Any]) -> object:
        return _cscope.build_scope(environ, state={"a": 1}, extensions={"x": {}})

    assert memory_growth(call, environs, 200) < 4096
