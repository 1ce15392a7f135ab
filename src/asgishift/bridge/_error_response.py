"""The short plain-text error responses the bridges send on their own behalf.

This module is pure: no I/O, no threads, no logging. It builds the same
response in either shape: :func:`error_messages` as ASGI HTTP messages (for
``WSGIToASGI``) and :func:`error_page` as a PEP 3333 status line, headers and
body (for the ASGI→WSGI direction). The statuses used are 400 (bad request),
413 (body too large), 500 (the app failed), 503 (no worker free) and 504 (the
app did not answer in time); any other code works too.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgishift._types import Message
from asgishift.bridge._response import body_allowed, reason_phrase, status_line

__all__ = ["error_messages", "error_page"]


def _body(status: int) -> bytes:
    reason = reason_phrase(status)
    return f"{status} {reason}\n".encode() if reason else f"{status}\n".encode()


def error_messages(
    status: int,
    method: str,
    extra: Iterable[tuple[bytes, bytes]] = (),
    body: bytes | None = None,
) -> list[Message]:
    """Return ``http.response.start`` and ``http.response.body`` for an error response.

    The body is ``"<status> <reason>\\n"`` (or ``body``) as ``text/plain``,
    left out when :func:`~asgishift.bridge._response.body_allowed` says so
    (HEAD). Fresh dicts on every call: a server may keep or change what it is
    sent.

    :param status: the status code, e.g. 503.
    :param method: the request method (``"HEAD"`` gets no body).
    :param extra: more ASGI header pairs, e.g. ``(b"retry-after", b"1")``.
    :param body: the UTF-8 text body instead of the status line (bytes).
    :return: two ASGI messages (ASGI HTTP spec, "Response Start" and "Response Body").
    """
    if body is None:
        body = _body(status)
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body}
        if body_allowed(status, method)
        else {"type": "http.response.body"},
    ]


def error_page(status: int, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Return the same error response for a WSGI server: status line, headers, body.

    :param status: the status code, e.g. 500.
    :param method: the request method (``"HEAD"`` gets an empty body).
    :return: ``(status_line, headers, body)`` as PEP 3333 ``start_response``
        arguments and the single body block.
    """
    body = _body(status)
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return status_line(status), headers, body if body_allowed(status, method) else b""
