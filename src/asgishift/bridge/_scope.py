"""Translate a PEP 3333 environ into an ASGI HTTP connection scope.

This module is pure: no I/O, no threads, no event loop, no logging. It is the
request half of :class:`~asgishift.bridge.ASGIToWSGI` and is unit-tested without
a server.

PEP 3333 ("Unicode Issues") hands every environ value over as a "native string"
that holds the request's bytes one per character (latin-1). The ASGI HTTP spec
("Connection Scope") wants ``path`` as text decoded from UTF-8 and
``raw_path``, ``query_string`` and headers as bytes. So each value is first
turned back into its bytes with ``str.encode("latin-1")``, which is exact for
anything a conforming server produced, and then decoded as ASGI asks.

``path`` includes ``root_path`` (``SCRIPT_NAME``), the convention of the ASGI
spec since version 2.4 (and of uvicorn ≥ 0.26, Starlette and FastAPI).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from asgishift._types import Scope
from asgishift.bridge._accel import accelerated

__all__ = [
    "ASGI_VERSION",
    "ScopeError",
    "build_scope",
    "header_name",
    "http_version",
    "python_build_scope",
    "request_body_length",
]

#: ``scope["asgi"]`` of every request (each scope gets its own dict): ASGI 3, HTTP spec 2.4.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}

# Header-name cache, bounded so a client sending endless distinct header names
# cannot grow it without limit.
_CACHE_LIMIT = 1024
_NAME_CACHE: dict[str, bytes | None] = {}

_HTTP_VERSIONS = {
    "HTTP/1.1": "1.1",
    "HTTP/1.0": "1.0",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
    "HTTP/3": "3",
    "HTTP/0.9": "1.0",
}

# Characters of a path that stay unescaped in a rebuilt raw_path (RFC 3986
# "pchar" plus "/"); everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class ScopeError(ValueError):
    """Signal an environ that cannot become an ASGI scope (answered with an error status).

    For example a ``CONTENT_LENGTH`` that is not a non-negative decimal number
    (PEP 3333 "environ Variables", RFC 9110 section 8.6): 400; or a body whose end
    the server cannot tell the app: 411.

    :param message: what is wrong, for the log.
    :param status: the status to answer, :attr:`error_status_hint` (400 by default).
    """

    error_status_hint = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_status_hint = status


def header_name(key: str) -> bytes | None:
    """Return the ASGI header name (lowercase bytes) for an environ key, ``None`` if none.

    ``HTTP_X_FORWARDED_FOR`` becomes ``b"x-forwarded-for"`` (CGI/1.1, RFC 3875
    section 4.1.18, undone). Keys that are not ``HTTP_*`` give ``None``, and so
    do ``HTTP_CONTENT_TYPE`` and ``HTTP_CONTENT_LENGTH``, since the CGI keys
    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` are authoritative. The result is cached.

    :param key: an environ key.
    """
    try:
        return _NAME_CACHE[key]
    except KeyError:
        pass
    name = None
    if key[:5] == "HTTP_" and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(_NAME_CACHE) < _CACHE_LIMIT:
        _NAME_CACHE[key] = name
    return name


def http_version(server_protocol: str) -> str:
    """Return ASGI's ``http_version`` (``"1.0"``, ``"1.1"``, ``"2"``) for ``SERVER_PROTOCOL``.

    :param server_protocol: e.g. ``"HTTP/1.1"``; an unknown value gives ``"1.1"``.
    """
    return _HTTP_VERSIONS.get(server_protocol.upper(), "1.1")


def _raw_path(environ: Mapping[str, Any], path_bytes: bytes) -> bytes:
    """Return ``raw_path``: the server's request target when it names this path.

    gunicorn (``RAW_URI``) and mod_wsgi/uWSGI (``REQUEST_URI``) keep the target
    as received. It is used when, percent-decoded, it equals ``SCRIPT_NAME +
    PATH_INFO`` (a proxy or mount may have changed the path since); otherwise
    the bytes are percent-encoded again.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw[0] == "/":
        target = raw.partition("?")[0].encode("latin-1")
        decoded = unquote_to_bytes(target) if b"%" in target else target
        if decoded == path_bytes:
            return bytes(target)
    return quote_from_bytes(path_bytes, _PATH_SAFE).encode("ascii")


_ADDRESS_CACHE: dict[tuple[Any, Any], tuple[str, int | None]] = {}


def _address(host: Any, port: Any) -> tuple[str, int | None] | None:
    if not host:
        return None
    address = _ADDRESS_CACHE.get((host, port))
    if address is None:
        address = _parse_address(host, port)
        if len(_ADDRESS_CACHE) < _CACHE_LIMIT:
            _ADDRESS_CACHE[(host, port)] = address
    return address


def _parse_address(host: Any, port: Any) -> tuple[str, int | None]:
    if port in (None, ""):
        return (str(host), None)
    try:
        return (str(host), int(port))
    except ValueError:
        return (str(host), None)


def python_build_scope(
    environ: Mapping[str, Any],
    *,
    state: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Scope:
    """Return the ASGI HTTP connection scope for a PEP 3333 environ.

    The definition; :data:`build_scope` is the same function, in C for the
    common request where ``_cscope.c`` was compiled (see :mod:`._accel`).

    Follows the ASGI HTTP spec, "Connection Scope":

    - ``root_path`` is ``SCRIPT_NAME`` and ``path`` is ``SCRIPT_NAME +
      PATH_INFO``, both decoded from UTF-8 (invalid bytes become U+FFFD, as
      uvicorn does); ``raw_path`` holds the exact bytes, percent-encoded.
    - ``query_string`` is ``QUERY_STRING``'s bytes; ``headers`` come from the
      ``HTTP_*`` keys plus ``CONTENT_TYPE`` and ``CONTENT_LENGTH``, in environ
      order, with lowercase names.
    - ``client`` is ``(REMOTE_ADDR, REMOTE_PORT)``; the port is ``None`` when
      the server does not say (wsgiref). ``server`` is ``(SERVER_NAME,
      SERVER_PORT)``, the port ``None`` for a UNIX socket.
    - ``scheme`` is ``wsgi.url_scheme``; ``http_version`` comes from
      ``SERVER_PROTOCOL``.

    :param environ: a PEP 3333 environ; values are latin-1 native strings.
    :param state: the lifespan state (ASGI lifespan spec, "Lifespan State");
        the scope gets a shallow copy. ``None`` leaves ``state`` out.
    :param extensions: ``scope["extensions"]`` (e.g. ``{"http.response.pathsend": {}}``).
    :return: a new scope dict.
    :raise ScopeError: when ``CONTENT_LENGTH`` is not a non-negative integer.
    """
    script_name: str = environ.get("SCRIPT_NAME", "")
    path_info: str = environ.get("PATH_INFO", "")
    path_bytes = (script_name + path_info).encode("latin-1")
    if path_bytes.isascii():
        path = path_bytes.decode("ascii")
        root_path = script_name
    else:
        path = path_bytes.decode("utf-8", "replace")
        root_path = script_name.encode("latin-1").decode("utf-8", "replace")
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    cache = _NAME_CACHE
    for key, value in environ.items():
        try:
            name = cache[key]
        except KeyError:
            name = header_name(key)
        if name is not None:
            append((name, value.encode("latin-1")))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        append((b"content-type", content_type.encode("latin-1")))
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        if not (content_length.isascii() and content_length.isdigit()):
            raise ScopeError(
                f"CONTENT_LENGTH {content_length!r} is not a non-negative integer (RFC 9110 8.6)"
            )
        append((b"content-length", content_length.encode("ascii")))
    scope: Scope = {
        "type": "http",
        "asgi": ASGI_VERSION.copy(),
        "http_version": http_version(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
        "method": environ.get("REQUEST_METHOD", "GET").upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": path,
        "raw_path": _raw_path(environ, path_bytes),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": root_path,
        "headers": headers,
        "client": _address(environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT")),
        "server": _address(environ.get("SERVER_NAME"), environ.get("SERVER_PORT")),
    }
    if state is not None:
        scope["state"] = state.copy()
    if extensions is not None:
        scope["extensions"] = extensions
    return scope


#: :func:`python_build_scope`, for the common request in C where ``_cscope.c`` was
#: compiled; it reads the caches above, and only Python fills them.
build_scope: Callable[..., Scope] = accelerated(
    "_cscope", python_build_scope, _NAME_CACHE, _ADDRESS_CACHE, _HTTP_VERSIONS, ASGI_VERSION
)


def request_body_length(environ: Mapping[str, Any]) -> int | None:
    """Return how many request-body bytes to read from ``wsgi.input``.

    PEP 3333 ("Input and Error Streams"): read no more than ``CONTENT_LENGTH``.
    Without it, a request has a body only when it has a ``Transfer-Encoding``
    (RFC 9112 section 6.3), and then only a server that sets
    ``wsgi.input_terminated`` lets the app read it to EOF.

    :return: the length in bytes, or ``None`` for "read until EOF".
    :raise ScopeError: for a malformed ``CONTENT_LENGTH`` (400), and for a
        ``Transfer-Encoding`` body on a server without ``wsgi.input_terminated``
        (411 Length Required, RFC 9110 section 15.5.12: the body's end cannot be
        found, and serving the request without it would lose the upload).
    """
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        if not (content_length.isascii() and content_length.isdigit()):
            raise ScopeError(
                f"CONTENT_LENGTH {content_length!r} is not a non-negative integer (RFC 9110 8.6)"
            )
        return int(content_length)
    if environ.get("HTTP_TRANSFER_ENCODING"):
        if environ.get("wsgi.input_terminated"):
            return None
        raise ScopeError(
            "a Transfer-Encoding body without Content-Length, on a WSGI server that does not "
            "set wsgi.input_terminated: its end cannot be found (answered 411 Length Required)",
            411,
        )
    return 0
