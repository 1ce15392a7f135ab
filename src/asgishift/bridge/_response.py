"""HTTP response rules both bridge directions share: status, headers, body, keep-alive.

This module is pure: no I/O, no threads, no event loop, no logging. Each
function takes plain values and returns plain values (or raises
:class:`~asgishift.bridge._errors.InvalidResponse`), so it is unit-tested
without a server (``tests/bridge/test_response_rules.py``) and used by both
``WSGIToASGI`` (PEP 3333 response → ASGI messages) and the ASGI→WSGI direction
(ASGI messages → PEP 3333 status line and headers).

The rules, each in one place:

- which responses carry a body (:func:`body_allowed`: HEAD and the no-body
  statuses of RFC 9110);
- the PEP 3333 status line (:func:`check_status` reads one, :func:`status_line`
  writes one) and headers (:func:`encode_headers`, :func:`decode_headers`), and
  all of a ``start_response`` call at once (:func:`python_encode_start`, and
  :data:`encode_start`, its C build for the common response where one was
  compiled, ``_cresponse.c``);
- the declared ``Content-Length`` (:func:`content_length`), dropped where RFC
  9110 forbids it (:func:`without_content_length`);
- whether an unread request body closes the connection (:func:`must_close`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Final

from asgishift.bridge._accel import accelerated
from asgishift.bridge._errors import InvalidResponse

__all__ = [
    "CONNECTION_CLOSE",
    "HOP_BY_HOP",
    "NO_BODY_STATUSES",
    "body_allowed",
    "check_status",
    "close_headers",
    "content_length",
    "decode_headers",
    "encode_headers",
    "encode_start",
    "must_close",
    "python_encode_start",
    "reason_phrase",
    "status_line",
    "without_content_length",
]

#: Statuses whose responses never carry a body (RFC 9110 sections 15.2, 15.3.5, 15.4.5).
NO_BODY_STATUSES = frozenset({*range(100, 200), 204, 304})

#: The header that tells the server to close the connection after this response
#: (RFC 9112 section 9.6), as an ASGI header pair.
CONNECTION_CLOSE = (b"connection", b"close")

#: The protocols (PEP 3333 ``SERVER_PROTOCOL``) whose messages may carry ``Connection``.
_CONNECTION_PROTOCOLS: Final = frozenset({"HTTP/1.0", "HTTP/1.1"})


def close_headers(protocol: str) -> tuple[tuple[bytes, bytes], ...]:
    """Return the headers that ask the server to close the connection after a response.

    ``(CONNECTION_CLOSE,)`` on HTTP/1.x (RFC 9112 section 9.6); nothing on HTTP/2
    and HTTP/3, which forbid connection-specific fields (RFC 9113 section 8.2.2,
    RFC 9114 section 4.2): there the server ends the stream instead. hypercorn,
    granian and ``h2`` (daphne's HTTP/2 stack) drop such a field on the way out;
    a server that passed it on would send a malformed HTTP/2 response.

    :param protocol: the request's ``SERVER_PROTOCOL``, e.g. ``"HTTP/1.1"`` or ``"HTTP/2"``.
    """
    return (CONNECTION_CLOSE,) if protocol in _CONNECTION_PROTOCOLS else ()


# Caches are bounded so that an app producing endless distinct status lines or
# header names cannot grow them without limit.
_CACHE_LIMIT = 1024

#: Status line -> status code.
_STATUS_CACHE: dict[str, int] = {}

#: WSGI response header name -> lowercase bytes for ``http.response.start``.
_NAME_CACHE: dict[str, bytes] = {}

#: A checked ``(name, value)`` tuple of ``str`` -> its ASGI byte pair. Most
#: responses repeat the same few pairs (``Content-Type``, small
#: ``Content-Length`` values), so one lookup replaces the checks and encodings.
_PAIR_CACHE: dict[tuple[str, str], tuple[bytes, bytes]] = {}

#: Header names a PEP 3333 application must not send ("Other HTTP Features"): the
#: hop-by-hop headers of RFC 2616 section 13.5.1, which PEP 3333 refers to (lower case).
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

#: :data:`HOP_BY_HOP` as the lowercase byte names :func:`encode_headers` produces.
_HOP_BY_HOP_NAMES: Final = frozenset(name.encode("ascii") for name in HOP_BY_HOP)

#: A checked ASGI ``(name, value)`` tuple of ``bytes`` -> its PEP 3333 pair of
#: ``str``: the same shortcut in the other direction, for ``decode_headers``.
_TEXT_PAIR_CACHE: dict[tuple[bytes, bytes], tuple[str, str]] = {}

#: Values longer than this are not kept in :data:`_PAIR_CACHE` or
#: :data:`_TEXT_PAIR_CACHE` (cookies, ETags and dates rarely repeat and would fill them).
_PAIR_VALUE_LIMIT = 64

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Characters that would split or truncate a header line (response splitting).
_BAD_VALUE = re.compile(r"[\r\n\x00]")

#: Reason phrases where Python's :class:`http.HTTPStatus` still uses an older
#: name than RFC 9110 (413 and 422 were renamed in RFC 9110 section 15.5).
_REASONS = {413: "Content Too Large", 422: "Unprocessable Content"}


def body_allowed(status: int, method: str) -> bool:
    """Return whether a response to ``method`` with ``status`` carries a body.

    A response to HEAD never does (RFC 9110 section 9.3.2), nor do 1xx, 204
    and 304 responses (sections 15.2, 15.3.5, 15.4.5), whatever the app yields.

    :param status: the status code (100-999).
    :param method: the request method, upper case (``"HEAD"``).
    """
    return method != "HEAD" and status not in NO_BODY_STATUSES


def reason_phrase(status: int) -> str:
    """Return the RFC 9110 reason phrase for ``status``, ``""`` for an unknown code."""
    reason = _REASONS.get(status)
    if reason is not None:
        return reason
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_line(status: int) -> str:
    """Return the PEP 3333 status line for ``status``, such as ``"404 Not Found"``.

    :param status: a status code (100-999).
    :raise InvalidResponse: for a code outside 100-999 or not an ``int``.
    """
    if type(status) is not int or not 100 <= status <= 999:
        raise InvalidResponse(f"status must be an int from 100 to 999, got {status!r}")
    reason = reason_phrase(status)
    return f"{status} {reason}" if reason else str(status)


def check_status(status: object) -> int:
    """Validate a PEP 3333 status line such as ``"200 OK"`` and return its code.

    :param status: what the app passed to ``start_response``.
    :return: the status code (100-999).
    :raise InvalidResponse: if ``status`` is not a ``str`` of three digits,
        optionally followed by a space and a reason phrase without CR, LF or NUL.
    """
    code = _STATUS_CACHE.get(status) if type(status) is str else None
    if code is not None:
        return code
    if not isinstance(status, str):
        raise InvalidResponse(f"status must be a str like '200 OK', got {status!r}")
    digits = status[:3]
    if (
        len(digits) != 3
        or not (digits.isascii() and digits.isdigit())
        or (len(status) > 3 and status[3] != " ")
        or digits[0] == "0"
        or _BAD_VALUE.search(status)
    ):
        raise InvalidResponse(f"status must look like '200 OK', got {status!r}")
    code = int(digits)
    if len(_STATUS_CACHE) < _CACHE_LIMIT:
        _STATUS_CACHE[status] = code
    return code


def encode_headers(headers: object) -> list[tuple[bytes, bytes]]:
    """Validate WSGI response headers and encode them for ``http.response.start``.

    PEP 3333 asks for a list of ``(str, str)`` tuples; like gunicorn, uvicorn's
    WSGI mode and a2wsgi, any list or tuple of two-item sequences is accepted
    (``[["X-Colour", "Blue"]]``), because apps that ran under those servers
    pass them. Names are lowercased as the ASGI HTTP spec requires; values are
    kept as they are. PEP 3333 allows latin-1 text only. Hop-by-hop headers
    (:data:`HOP_BY_HOP`: ``Connection``, ``Transfer-Encoding``, ``Keep-Alive``
    ...), which PEP 3333 ("Other HTTP Features") forbids an application to send,
    are checked and then left out, as gunicorn does: the connection and the
    body's framing are the server's (passed on, a copied ``Transfer-Encoding``
    made uvicorn send it beside ``Content-Length`` and granian drop the
    connection). They are never cached, so :data:`encode_start`'s C build hands
    such a response to :func:`python_encode_start`.

    :param headers: what the app passed to ``start_response``.
    :return: a new list of ``(name, value)`` byte pairs.
    :raise InvalidResponse: for a container that is not a list or tuple, an
        item that is not a two-item sequence of ``str``, a name that is not an
        RFC 9110 token, a value containing CR, LF or NUL (response splitting),
        or text outside latin-1.
    """
    if not isinstance(headers, (list, tuple)):
        raise InvalidResponse(f"response headers must be a list, got {type(headers).__name__}")
    names = _NAME_CACHE
    pairs = _PAIR_CACHE
    out: list[tuple[bytes, bytes]] = []
    for item in headers:
        if type(item) is tuple:
            try:
                pair = pairs.get(item)
            except TypeError:  # an unhashable name or value: refused below
                pair = None
            if pair is not None:
                out.append(pair)
                continue
        if isinstance(item, (tuple, list)) and len(item) == 2:
            name, value = item
        else:
            raise InvalidResponse(f"each response header must be a (name, value) pair: {item!r}")
        bname = names.get(name) if type(name) is str else None
        if bname is None:
            if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                raise InvalidResponse(f"invalid response header name {name!r}")
            bname = name.lower().encode("ascii")
            if len(names) < _CACHE_LIMIT:
                names[name] = bname
        if not isinstance(value, str):
            raise InvalidResponse(f"response header {name!r} value must be str, got {value!r}")
        # isprintable() is a fast pre-check: the regex runs only for values
        # with tabs, control or non-ASCII characters.
        if not value.isprintable() and _BAD_VALUE.search(value):
            raise InvalidResponse(f"response header {name!r} contains CR, LF or NUL: {value!r}")
        try:
            bvalue = value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidResponse(
                f"response header {name!r} is not latin-1 (PEP 3333 'Unicode Issues'): {value!r}"
            ) from None
        if bname in _HOP_BY_HOP_NAMES:
            continue  # never cached: the cache holds pairs that are sent
        pair = (bname, bvalue)
        _keep(pairs, item, str, pair)
        out.append(pair)
    return out


#: What :func:`python_encode_start` returns: the status code, the encoded headers,
#: whether a body may follow, and the declared ``Content-Length`` (bytes) or ``None``.
ResponseStart = tuple[int, list[tuple[bytes, bytes]], bool, "int | None"]


def python_encode_start(status: object, headers: object, method: str) -> ResponseStart:
    """Check a ``start_response`` call and encode it for ``http.response.start``.

    PEP 3333 "The start_response() Callable" and the ASGI HTTP spec, "Response
    Start": :func:`check_status`, :func:`encode_headers`, :func:`body_allowed`,
    and :func:`content_length` in one call. A response that may carry no body
    (HEAD aside) loses its ``Content-Length`` (:func:`without_content_length`).

    :param status: what the app passed as the status line (``"200 OK"``).
    :param headers: what the app passed as the header list.
    :param method: the request method, upper case.
    :return: ``(code, headers, has_body, declared)``: the status code
        (100-999), a new list of ``(name, value)`` byte pairs, whether a body
        may follow, and the declared ``Content-Length`` (bytes, ``None``: none).
    :raise InvalidResponse: as :func:`check_status`, :func:`encode_headers` and
        :func:`content_length` do, and for an informational (1xx) status: it is
        interim, a final response must follow (RFC 9110 section 15.2), and a
        PEP 3333 app has no way to send both (passed on, uvicorn and daphne wrote
        a 1xx head followed by bytes the client read as a malformed status line).
    """
    code = check_status(status)
    if code < 200:
        raise InvalidResponse(
            f"status {status!r} is informational (1xx) and cannot be a final response "
            "(RFC 9110 section 15.2)"
        )
    encoded = encode_headers(headers)
    has_body = body_allowed(code, method)
    if not has_body and method != "HEAD":
        encoded = without_content_length(encoded)
    return code, encoded, has_body, content_length(encoded)


#: Check a ``start_response`` call and encode it: :func:`python_encode_start` (its
#: signature, errors and result). ``_cresponse.c`` checks nothing itself: it answers
#: from the caches this module fills once a status line or header pair has passed
#: its checks, and hands anything not in them, HEAD and the statuses without a body
#: to :func:`python_encode_start`; without the extension this is that function (see
#: :mod:`._accel`).
encode_start: Callable[[object, object, str], ResponseStart] = accelerated(
    "_cresponse", python_encode_start, _STATUS_CACHE, _PAIR_CACHE
)


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Turn ASGI response headers into PEP 3333 ``(str, str)`` tuples (latin-1).

    Hop-by-hop headers (:data:`HOP_BY_HOP`: ``Connection``, ``Transfer-Encoding``
    ...) are left out: PEP 3333 ("Other HTTP Features") forbids a WSGI
    application to send them, strict servers (``wsgiref``) refuse the response,
    and the connection is the WSGI server's to manage.

    :param headers: the ``headers`` of an ``http.response.start`` message
        (byte pairs; ASGI HTTP spec).
    :raise InvalidResponse: for an item that is not a pair of bytes, a name
        that is not an RFC 9110 token, or a value with CR, LF or NUL.
    """
    pairs = _TEXT_PAIR_CACHE
    out: list[tuple[str, str]] = []
    for item in headers:
        if type(item) is tuple:
            try:
                pair = pairs.get(item)
            except TypeError:  # an unhashable name or value: checked below
                pair = None
            if pair is not None:
                out.append(pair)
                continue
        try:
            name, value = item
            text_name = bytes(name).decode("latin-1")
            text_value = bytes(value).decode("latin-1")
        except (TypeError, ValueError):
            raise InvalidResponse(
                f"each ASGI response header must be a pair of bytes: {item!r}"
            ) from None
        if not _TOKEN.fullmatch(text_name):
            raise InvalidResponse(f"invalid response header name {text_name!r}")
        if _BAD_VALUE.search(text_value):
            raise InvalidResponse(
                f"response header {text_name!r} contains CR, LF or NUL: {text_value!r}"
            )
        if text_name.lower() in HOP_BY_HOP:
            continue  # never cached: the cache holds pairs that are sent
        pair = (text_name, text_value)
        _keep(pairs, item, bytes, pair)
        out.append(pair)
    return out


def _keep(cache: dict[Any, Any], item: object, kind: type, checked: tuple[Any, Any]) -> None:
    """Keep ``checked``, the checked form of the header ``item``, in ``cache`` for next time.

    Only a tuple of two ``kind`` objects (``str`` or ``bytes``, so never a subclass
    whose value could change) with a value of at most ``_PAIR_VALUE_LIMIT``
    characters is kept, and only while the cache has room.
    """
    if type(item) is tuple and len(cache) < _CACHE_LIMIT:
        name, value = item
        if type(name) is kind and type(value) is kind and len(value) <= _PAIR_VALUE_LIMIT:
            cache[item] = checked


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """Return the declared ``Content-Length`` (bytes), ``None`` when there is none.

    The same value given twice counts once; a client or proxy cannot tell where
    a response with any other ``Content-Length`` ends (RFC 9110 section 8.6),
    and some servers pass it on as it is, so such a response is refused.

    :param headers: lowercase-named byte pairs (ASGI form).
    :raise InvalidResponse: for a value that is not a decimal number, or two
        different values.
    """
    declared: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():  # bytes: ASCII digits only
                raise InvalidResponse(f"Content-Length is not a decimal number: {value!r}")
            length = int(value)
            if declared is not None and length != declared:
                raise InvalidResponse(
                    f"two different Content-Length values: {declared} and {length}"
                )
            declared = length
    return declared


def without_content_length(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Return ``headers`` minus ``Content-Length``, for a status that has no body.

    RFC 9110 section 8.6 forbids ``Content-Length`` on 1xx and 204; on 304 it
    is allowed, but uvicorn's httptools protocol then waits for that many body
    bytes and drops the connection. No body follows anyway.
    """
    return [(name, value) for name, value in headers if name != b"content-length"]


def must_close(remaining: int | None, drain_limit: int) -> bool:
    """Decide, as the response starts, whether an unread request body closes the connection.

    The rest of an unread body is read and dropped after the response when it
    is small (at most ``drain_limit`` bytes), so the keep-alive connection
    stays usable, as gunicorn and Werkzeug's server do. A body of unknown
    length (chunked, HTTP/2) or a larger one is not read: the response says
    ``Connection: close`` (RFC 9112 section 9.6) instead.

    :param remaining: body bytes the client still has to send (``None``: unknown).
    :param drain_limit: the most bytes worth draining (``drain_body_size``).
    """
    return remaining is None or remaining > drain_limit
