"""What ``WSGIToASGI`` does when the WSGI app raises: answer, log line, re-raise.

This module is pure: no I/O, no threads, no logging. :func:`app_failure`
takes the exception and where the response stands, and returns a
:class:`Failure` record; the request hand-off (:mod:`._request`) sends the
error response it names, writes its log line and re-raises what it says.

The policy, in the order it is decided:

1. :class:`~._errors.ClientDisconnected`: the client is gone; nothing is sent,
   nothing re-raised, a debug line.
2. The request body went past ``max_body_size`` and the response has not
   started: 413 (the app may have caught :class:`~._errors.RequestBodyTooLarge`
   and raised something else).
3. Not an :class:`Exception` (``SystemExit``, ``KeyboardInterrupt`` raised by
   the app): 500 if nothing was sent, logged with its traceback, never passed
   to the server, which would take it for its own.
4. Any other exception: 500 if nothing was sent (else the response is cut
   short), and the exception goes on to the ASGI server, as Starlette's
   ``ServerErrorMiddleware`` does, so the server logs the traceback once and
   test clients (httpx's ``ASGITransport``, Starlette's ``TestClient``)
   re-raise it. The bridge's own line names the request but leaves the
   traceback to the server.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from asgishift.bridge._errors import ClientDisconnected

__all__ = ["Failure", "app_failure"]


class Failure(NamedTuple):
    """The bridge's answer to an app failure (see the module documentation).

    :ivar status: the error response to send (413 or 500), or ``None`` to
        send nothing more (the client is gone, or the response had started
        and is cut short).
    :ivar reraise: the exception to pass on to the ASGI server, or ``None``.
    :ivar level: the :mod:`logging` level of the bridge's line.
    :ivar message: the line itself, naming the request.
    :ivar traceback: whether the line carries the exception's traceback
        (only when the exception is not passed on, so it is printed once).
    """

    status: int | None
    reraise: BaseException | None
    level: int
    message: str
    traceback: bool


def app_failure(exc: BaseException, where: str, *, sent: bool, too_large: bool) -> Failure:
    """Decide the answer to an app that raised ``exc`` (PEP 3333 "Error Handling").

    :param exc: what the app (its call, its iterable or the bridge's checks of
        what it returned) raised.
    :param where: the request, e.g. ``"GET /shop/cart"``, for the log line.
    :param sent: whether the response start has reached the server.
    :param too_large: whether the request body went past ``max_body_size``.
    :return: the :class:`Failure` to carry out. Never raises.
    """
    if isinstance(exc, ClientDisconnected):
        message = f"client disconnected during {where}: {exc}"
        return Failure(None, None, logging.DEBUG, message, False)
    if too_large and not sent:
        return Failure(413, None, logging.INFO, f"413 Content Too Large: {where}", False)
    status = None if sent else 500
    if not isinstance(exc, Exception):  # not the server's to handle
        return Failure(status, None, logging.ERROR, f"the WSGI app failed ({where})", True)
    if sent:
        message = (
            f"the WSGI app failed after the response started ({where}): {exc!r}; the response "
            "is cut short and the exception passed to the ASGI server"
        )
    else:
        message = (
            f"the WSGI app failed ({where}): {exc!r}; answered 500 and passed the exception "
            "to the ASGI server"
        )
    return Failure(status, exc, logging.ERROR, message, False)
