"""Thin async helpers around the ASGI server's ``send`` and ``receive``.

Shared by ``WSGIToASGI`` (its own 400/413 answers) and the request hand-off
(503, 504, the end of a response, draining an unread body).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from asgishift._types import Message, Receive, Send

__all__ = ["drain_body", "send_messages"]

logger = logging.getLogger("asgishift.bridge")


async def send_messages(send: Send, messages: Iterable[Message]) -> None:
    """Send ``messages`` in order; a client that went away is logged, not raised."""
    try:
        for message in messages:
            await send(message)
    except OSError as exc:
        logger.debug("client went away before the response was sent: %r", exc)


async def drain_body(receive: Receive, limit: int, timeout: float) -> bool:
    """Read and drop the rest of a request body, at most ``limit`` bytes in ``timeout`` seconds.

    So that the next request on a keep-alive connection is not stuck behind an
    unread body (hypercorn stops reading a connection whose body nobody
    reads), as gunicorn and Werkzeug's server drain.

    :return: ``True`` if the body ended within the bounds.
    """

    async def discard() -> bool:
        left = limit
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return False
            left -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
            if left < 0:
                return False

    try:
        return await asyncio.wait_for(discard(), timeout)
    except asyncio.TimeoutError:
        logger.debug("unread request body not drained within %s s", timeout)
    except Exception as exc:  # whatever receive() raises, the client is gone
        logger.debug("draining the request body failed: %r", exc)
    return False
