"""Thin async helpers around the ASGI server's ``send`` and ``receive``.

Shared by ``WSGIToASGI`` (its own 400/413 answers) and the request hand-off
(503, 504, the end of a response, draining an unread body, a deadline on a
client that stops reading or sending, noticing a disconnect).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from asgishift._types import Message, Receive, Send

__all__ = [
    "drain_body",
    "first_of",
    "send_all",
    "send_draining",
    "send_messages",
    "wait_disconnect",
]

logger = logging.getLogger("asgishift.bridge")

_T = TypeVar("_T")


async def send_messages(send: Send, messages: Iterable[Message]) -> None:
    """Send ``messages`` in order; a client that went away is logged, not raised."""
    try:
        await send_all(send, messages)
    except OSError as exc:
        logger.debug("client went away before the response was sent: %r", exc)


async def send_all(send: Send, messages: Iterable[Message]) -> None:
    """Send ``messages`` in order.

    :raise Exception: whatever ``send`` raises (a client that went away:
        :class:`OSError`), unlike :func:`send_messages`.
    """
    for message in messages:
        await send(message)


async def first_of(awaitable: Coroutine[Any, Any, _T], deadline: asyncio.Future[Any]) -> _T:
    """Await ``awaitable`` unless ``deadline`` completes first.

    A client that stops reading blocks ``send()`` (backpressure), and one that
    stops sending its body blocks ``receive()``; racing them against the
    request's deadline bounds both. ``deadline`` is only watched, never
    cancelled or consumed.

    :param awaitable: the ``send``/``receive`` work, run as a task.
    :param deadline: a future that completes when time is up.
    :raise TimeoutError: if ``deadline`` completed first (``awaitable`` is cancelled).
    """
    task = asyncio.get_running_loop().create_task(awaitable)
    try:
        await asyncio.wait((task, deadline), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()  # cancelled ourselves: the work must not go on alone
        raise
    if not task.done():
        task.cancel()
        raise TimeoutError("request_timeout expired while waiting for the client")
    return task.result()


async def wait_disconnect(receive: Receive) -> None:
    """Return once ``receive()`` reports ``http.disconnect`` or fails (the client is gone).

    Some servers silently drop ``send()`` calls after a disconnect, so a
    streaming response watches for it. Call it only once the request body
    has been read: every other message is dropped.
    """
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
    except Exception as exc:  # a broken receive() means the client is gone too
        logger.debug("receive() failed while watching for a disconnect: %r", exc)


async def send_draining(
    send: Send, receive: Receive, messages: list[Message], limit: int, timeout: float
) -> bool:
    """Send ``messages``, draining the unread request body before the last one.

    The last message ends the response, and hypercorn handles the end of a
    response inside that ``send()`` call by queueing ``http.disconnect`` for
    the app (see :func:`drain_body`); with its queue full of unread body
    messages, that ``send()`` would never return. Draining first frees the
    queue and, for a small rest, keeps the connection usable.

    :param limit: the most body bytes drained (bytes).
    :param timeout: the longest drain (seconds).
    :return: ``True`` if the body ended within the bounds.
    """
    drained = False
    try:
        for message in messages[:-1]:
            await send(message)
        drained = await drain_body(receive, limit, timeout)
        await send(messages[-1])
    except OSError as exc:
        logger.debug("client went away before the response was sent: %r", exc)
    return drained


async def drain_body(receive: Receive, limit: int, timeout: float) -> bool:
    """Read and drop the rest of a request body, at most ``limit`` bytes in ``timeout`` seconds.

    Called before the last message of a response, so the connection is not
    stuck behind an unread body, as gunicorn and Werkzeug's server drain.
    Needed even when the response says ``Connection: close``: hypercorn
    (0.17, 0.18) queues at most ten body messages for the app and, when the
    response ends, queues one more (``http.disconnect``) before it closes the
    connection; with the queue full and nobody reading, that never happens and
    the connection hangs. Taking one message frees a place. So ``receive()``
    is awaited directly in the calling task (no :func:`asyncio.wait_for` task,
    which would let the server refill the queue before this returns), and the
    timeout cancels the task itself.

    :param receive: the server's ``receive`` (ASGI HTTP spec).
    :param limit: the most body bytes read (bytes).
    :param timeout: the longest wait (seconds).
    :return: ``True`` if the body ended within the bounds.
    :raise asyncio.CancelledError: if the task was cancelled from outside.
    """
    task = asyncio.current_task()
    if task is None:  # not in a task: nothing can be bounded, do not read
        return False
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    left = limit
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return False
            left -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
            if left < 0:
                logger.debug("unread request body longer than %d bytes: not drained", limit)
                return False
    except asyncio.CancelledError:
        if not expired:
            raise
        # The timer can only fire while this task waits in receive(), and the
        # cancel lands there. Python 3.11+: undo our cancel(), and let one that
        # came from outside at the same time through.
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None and uncancel() > 0:
            raise
        logger.debug("unread request body not drained within %s s", timeout)
    except Exception as exc:  # whatever receive() raises, the client is gone
        logger.debug("draining the request body failed: %r", exc)
    finally:
        timer.cancel()
    return False
