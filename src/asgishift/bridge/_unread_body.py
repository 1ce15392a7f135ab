"""A request body the app has not read to its end when its response goes out.

HTTP/1.1 can carry the next request on the connection only once this one's
body has been read. So when a response starts and the body is not complete
(its :class:`~._state.BodyPhase` is not ``COMPLETE``), the bridge either keeps
the connection and reads the rest, small and of known length, before the
response's last message (``PARTIAL``), or says ``Connection: close`` (the body
becomes ``UNREAD``; a ``TOO_LARGE`` one closes too) and still drains within
the ``drain_body_size`` and ``drain_timeout`` bounds, so that hypercorn's full
queue lets the response end (:func:`~._server_io.send_draining`).

The functions act on one :class:`~._request.Request` through its public
attributes (``body``, ``received``, ``environ``, ``options``, ``send``,
``receive``, ``method``); they are its body rules, kept apart from the
hand-off between loop and worker. None runs for a request whose body was
complete at dispatch (every ``GET``): their callers test ``body`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgishift._types import Message
from asgishift.bridge._error_response import error_messages
from asgishift.bridge._response import close_headers, must_close
from asgishift.bridge._server_io import send_draining, send_messages
from asgishift.bridge._state import COMPLETE, PARTIAL, UNREAD

if TYPE_CHECKING:
    from asgishift.bridge._request import Request

__all__ = ["closes_connection", "drain_and_send", "error_response", "send_error"]


def closes_connection(request: Request) -> bool:
    """Decide whether ``request``'s response closes the connection (its body is not all read).

    Runs as the response starts (worker thread, or the loop for 503/504),
    while the other side does not touch ``request.body``. A small known rest
    stays ``PARTIAL`` and is drained after the response; otherwise the body
    becomes ``UNREAD`` and the response says ``Connection: close``
    (:func:`~._response.must_close` draws the line).
    """
    body = request.body
    if body is COMPLETE:
        return False
    if body is PARTIAL:
        length = request.environ.get("CONTENT_LENGTH")
        remaining = int(length) - request.received if length is not None else None
        if not must_close(remaining, request.options.drain_body_size):
            return False
        request.body = UNREAD
    return True


async def drain_and_send(request: Request, messages: list[Message]) -> None:
    """Send a response's last ``messages``, draining the unread body before the very last.

    A ``PARTIAL`` body's rest is small (the response keeps the connection);
    after ``Connection: close`` (``UNREAD``, ``TOO_LARGE``) the drain stops at
    the bounds too, and frees the server's queue so it can close (see
    :func:`~._server_io.send_draining`). A body drained to its end is ``COMPLETE``.
    """
    options = request.options
    if await send_draining(
        request.send, request.receive, messages, options.drain_body_size, options.drain_timeout
    ):
        request.body = COMPLETE


async def send_error(request: Request, status: int, *extra: tuple[bytes, bytes]) -> None:
    """Send a bridge error response (503, 504) on the loop, closing if the body is unread.

    :param status: the HTTP status (see :func:`~._error_response.error_messages`).
    :param extra: more response headers, e.g. ``(b"retry-after", b"1")``.
    """
    if request.body is COMPLETE:
        await send_messages(request.send, error_messages(status, request.method, extra))
        return
    if closes_connection(request):
        extra = (*extra, *close_headers(request.environ["SERVER_PROTOCOL"]))
    await drain_and_send(request, error_messages(status, request.method, extra))


def error_response(request: Request, status: int) -> list[Message]:
    """Return the messages of an error response (500, 413) for the worker to post.

    :param status: the HTTP status (see :func:`~._error_response.error_messages`).
    """
    if request.body is not COMPLETE and closes_connection(request):
        return error_messages(
            status, request.method, close_headers(request.environ["SERVER_PROTOCOL"])
        )
    return error_messages(status, request.method)
