"""Translate an ASGI HTTP scope into a PEP 3333 environ (the request side, pure).

This module is pure: no I/O, no threads, no event loop, no logging. Every
function takes plain values and returns plain values (or raises), so it can be
unit-tested without a server and reused by any other adapter. See this
package's README.md.

Strategy: the environ keys that never change between requests are computed
once (:func:`base_environ`) and copied per request; header names are
translated through small bounded caches, because the same few dozen names
arrive on every request. :func:`python_build_environ` is the definition;
:data:`build_environ`, which the bridge calls, is a C build of its common case
where one was compiled (``_cenviron.c``), which hands every other scope back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from asgishift._types import Environ
from asgishift.bridge._accel import accelerated
from asgishift.bridge._errors import BadRequest

__all__ = [
    "base_environ",
    "build_environ",
    "decode_path",
    "origin_form",
    "python_build_environ",
    "server_protocol",
]

# Header-name caches are bounded so that a client sending endless distinct
# header names cannot grow them without limit.
_CACHE_LIMIT = 1024

#: Raw ASGI header name -> environ key; ``""`` means "drop this header".
_KEY_CACHE: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}


def base_environ(errors: Any, file_wrapper: Any, multiprocess: bool | None = None) -> Environ:
    """Return the environ keys that are the same for every request.

    :param errors: the ``wsgi.errors`` stream (an object with ``write(str)``,
        ``writelines`` and ``flush``; PEP 3333 "Input and Error Streams").
    :param file_wrapper: the ``wsgi.file_wrapper`` callable (PEP 3333
        "Optional Platform-Specific File Handling").
    :param multiprocess: whether another process may run the same app at the
        same time (``BridgeOptions.multiprocess``); ``None``: not known.
    :return: a new dict to be copied, never mutated, per request.
    """
    return {
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        # PEP 3333: true if another process may run the app at the same time.
        # When that is not known, say it may: an app that believes itself alone
        # may keep state (a cache, a counter) only this process sees.
        "wsgi.multiprocess": multiprocess is not False,
        "wsgi.run_once": False,
        "wsgi.errors": errors,
        "wsgi.file_wrapper": file_wrapper,
        "wsgi.input_terminated": True,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
    }


def _to_latin1(text: str) -> str:
    """Re-spell a decoded ``str`` as PEP 3333's "bytes as latin-1" string."""
    if text.isascii():
        return text
    return text.encode("utf-8").decode("latin-1")


def origin_form(target: bytes) -> bytes:
    """Return the path of an absolute-form request target, or ``target`` itself.

    RFC 9112 section 3.2.2: a server must accept ``GET http://host/path`` as well
    as ``GET /path``. hypercorn and daphne put the whole target in ``raw_path``
    and ``path``; gunicorn (and uvicorn, granian) give the app ``/path``. An
    absolute target without a path (``http://host``) means ``/``. Anything
    else that does not start with ``/`` (the ``*`` of ``OPTIONS *``) is kept.
    """
    scheme, sep, rest = target.partition(b"://")
    if not sep or not scheme.isalpha() or not scheme.isascii():
        return target
    slash = rest.find(b"/")
    return b"/" if slash < 0 else rest[slash:]


def server_protocol(scope: Mapping[str, Any]) -> str:
    """Return the PEP 3333 ``SERVER_PROTOCOL`` of an ASGI HTTP scope, e.g. ``"HTTP/2"``.

    :param scope: an ASGI HTTP connection scope; its ``http_version`` is
        ``"1.0"``, ``"1.1"``, ``"2"`` or ``"3"``, and ``"1.1"`` when absent
        (ASGI HTTP spec, "Connection Scope").
    """
    return "HTTP/" + (scope.get("http_version") or "1.1")


def decode_path(scope: Mapping[str, Any]) -> tuple[str, str]:
    """Return ``(SCRIPT_NAME, PATH_INFO)`` for an ASGI HTTP scope.

    ``PATH_INFO`` is taken from ``raw_path`` when the server sends it:
    percent-decoded bytes as a latin-1 ``str`` (what gunicorn gives), so
    ``%2F`` and non-UTF-8 bytes survive; otherwise from ``path``, re-encoded
    from UTF-8. ``SCRIPT_NAME`` is ``root_path`` without a trailing slash.
    Servers disagree on whether ``path``/``raw_path`` already include
    ``root_path`` (uvicorn ≥ 0.26 does; hypercorn and daphne do not), so the
    prefix is stripped only when it is present as a whole path segment. An
    absolute-form target (``http://host/path``, RFC 9112 section 3.2.2) gives
    its path, as under gunicorn.

    :param scope: an ASGI HTTP connection scope (ASGI HTTP spec, "Connection Scope").
    :return: two latin-1 strings; ``PATH_INFO`` is ``""`` or starts with ``/``.
    """
    raw = scope.get("raw_path")
    if raw:
        # Some servers leave the query string on raw_path; a literal "?" can
        # only be the query separator (an escaped one is "%3F").
        raw = bytes(raw).partition(b"?")[0]
        if raw[:1] != b"/":
            raw = origin_form(raw)
        if b"%" in raw:
            raw = unquote_to_bytes(raw)
        path = raw.decode("latin-1")
    else:
        path = _to_latin1(scope.get("path", "") or "")
        if path[:1] != "/":
            path = origin_form(path.encode("latin-1")).decode("latin-1")
    root = scope.get("root_path", "") or ""
    if not root:
        return "", path
    root = _to_latin1(root).rstrip("/")
    if path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :]
    return root, path


def _environ_key(name: bytes) -> str:
    """Return the environ key for an ASGI header name, ``""`` to drop it."""
    text = name.decode("latin-1")
    # A header spelt with "_" would collide with its "-" twin once both become
    # HTTP_X_Y, letting a client spoof a header a proxy set (gunicorn drops
    # these too).
    key = "" if "_" in text else "HTTP_" + text.upper().replace("-", "_")
    if len(_KEY_CACHE) < _CACHE_LIMIT:
        _KEY_CACHE[name] = key
    return key


def _server_address(scope: Mapping[str, Any], environ: Environ) -> tuple[str, str]:
    """Return ``(SERVER_NAME, SERVER_PORT)`` from the scope or the Host header."""
    server = scope.get("server")
    if server and server[1] is not None:
        return str(server[0]), str(server[1])
    default_port = "443" if environ["wsgi.url_scheme"] == "https" else "80"
    host = environ.get("HTTP_HOST", "")
    if host:
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
            return name, port
        return host, default_port
    if server:  # a unix socket: (path, None)
        return str(server[0]), default_port
    return "localhost", default_port


def python_build_environ(scope: Mapping[str, Any], base: Environ) -> Environ:
    """Build the PEP 3333 environ for an ASGI HTTP scope.

    Repeated request headers are joined with ``","`` (``Cookie`` with ``"; "``,
    which is how HTTP/2 splits it), in linear time. ``wsgi.input`` is left for
    the caller to set.

    :param scope: an ASGI HTTP connection scope (ASGI HTTP spec, "Connection Scope").
    :param base: the dict from :func:`base_environ`; copied, not modified.
    :return: a new environ dict.
    :raise BadRequest: for a ``Content-Length`` that is not a decimal number, or
        several different ``Content-Length`` values (RFC 9110 section 8.6).
    """
    environ = base.copy()
    environ["REQUEST_METHOD"] = scope["method"]
    environ["wsgi.url_scheme"] = scope.get("scheme") or "http"
    environ["SERVER_PROTOCOL"] = server_protocol(scope)
    query = scope.get("query_string")
    if query:
        environ["QUERY_STRING"] = bytes(query).decode("latin-1")
    script_name, path_info = decode_path(scope)
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path_info
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])

    repeated: dict[str, list[str]] | None = None
    cache = _KEY_CACHE
    for name, raw_value in scope.get("headers", ()):
        key = cache.get(name)
        if key is None:
            key = _environ_key(bytes(name))
        if not key:
            continue
        value = raw_value.decode("latin-1")
        if key in environ:
            if repeated is None:
                repeated = {}
            parts = repeated.get(key)
            if parts is None:
                repeated[key] = [environ[key], value]
            else:
                parts.append(value)
        else:
            environ[key] = value
    if repeated:
        for key, parts in repeated.items():
            if key == "CONTENT_LENGTH":
                if len(set(parts)) != 1:
                    raise BadRequest(f"conflicting Content-Length values: {parts!r}")
                environ[key] = parts[0]
            else:
                environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(parts)

    length = environ.get("CONTENT_LENGTH")
    if length is not None:
        length = length.strip()
        # isdigit() alone would accept "²" (a latin-1 superscript digit).
        if not (length.isascii() and length.isdigit()):
            raise BadRequest(f"Content-Length is not a decimal number: {length!r}")
        environ["CONTENT_LENGTH"] = length
    environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_address(scope, environ)
    return environ


#: Build the PEP 3333 environ for an ASGI HTTP scope: :func:`python_build_environ`
#: (its signature, errors and result). ``_cenviron.c`` builds the same dict for the
#: request servers send almost every time (one value per header, a ``raw_path``
#: starting with ``/`` and without ``%``, no ``root_path``, a server address with a
#: port) and hands any other scope to :func:`python_build_environ`, which stays the
#: one definition of the rules; without the extension this is that function (see
#: :mod:`._accel`).
build_environ: Callable[[Mapping[str, Any], Environ], Environ] = accelerated(
    "_cenviron", python_build_environ, _environ_key, _KEY_CACHE
)
