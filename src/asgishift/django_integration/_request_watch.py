"""Cancel a request's async code when its client leaves, as Django's ``ASGIHandler`` does.

Django's own handler (Django >= 5.0, "Asynchronous support: Handling
disconnects") runs the middleware chain and the view as one task, listens for
the client's ``http.disconnect`` (ASGI HTTP spec, "Disconnect - receive
event") meanwhile and cancels that task: the async middleware or ``async def``
view awaiting at that moment gets ``asyncio.CancelledError``, which then
passes out through the code around it.

The bounded handler runs the middleware chain in Django's sync mode on a pool
thread. Every async part of it (an async-only middleware, its
``process_view``/``process_exception``/``process_template_response`` hooks,
an ``async def`` view) is called from that thread with ``async_to_sync``,
which runs it as a task of its own on the event loop. The handler puts each
such part under the request's :class:`RequestWatch` (:func:`watched`): the
watch keeps the tasks of the parts now running, outermost first, and, once a
part has not finished within its first loop turn, a listener task awaits
``receive()``. At ``http.disconnect`` it cancels
the innermost running part, the one whose code awaits (the outer ones await
it through the pool thread), so the cancellation starts where Django's would
land and passes outwards through the parts as a ``CancelledError``. A part
that starts after the client left gets ``CancelledError`` before it runs.
Parts that answer without giving up the loop (the common short request) cost
one ``loop.call_soon`` and its cancellation, no task.

The handler reads the whole request body before the chain runs, so the only
message ``receive()`` can give the listener is ``http.disconnect``: no body
message is taken from the app. The handler stops the listener with
:meth:`RequestWatch.stop` once the chain returned, before it sends or streams.

What must finish is not a part and is never cancelled: the handler's
``request_finished`` signal, ``response.close()`` and with them database
connection cleanup run on the pool thread after the chain. Sync code is not
interrupted either (a thread cannot be): a sync middleware or view runs to its
end, and the part awaiting it gets ``CancelledError`` at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from asgishift._types import Receive

logger = logging.getLogger("asgishift.django")

_R = TypeVar("_R")


class WatchState(enum.Enum):
    """Where a request's async code stands with respect to its client."""

    WAITING = "waiting"  # no part has run past its first loop turn: nobody listens yet
    LISTENING = "listening"  # a part ran past its first loop turn: a listener awaits receive()
    ENDED = "ended"  # the chain returned before the client left; the watch is over
    LEFT = "left"  # the client left while the chain ran: its running part was cancelled


# Read on every request: module constants (the enum metaclass makes class access slow).
_WAITING: Final = WatchState.WAITING
_LISTENING: Final = WatchState.LISTENING
_ENDED: Final = WatchState.ENDED
_LEFT: Final = WatchState.LEFT


class RequestWatch:
    """One request's watch over the async parts of its middleware chain and view (see
    the module doc). Used on the event loop only; :attr:`state` may be read anywhere.

    :param receive: the request's ASGI ``receive``, whose body was read whole.

    :attr:`state` is :attr:`WatchState.LEFT` once the client left while the chain
    ran; the handler then sends nothing.
    """

    __slots__ = ("_listener", "_receive", "_running", "state")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.state = _WAITING
        self._running: list[asyncio.Task[Any]] = []
        self._listener: asyncio.Task[None] | None = None

    async def run(self, part: Awaitable[_R]) -> _R:
        """Await ``part`` (an async part's coroutine) on this task, which the watch
        cancels when the client sends ``http.disconnect`` while ``part`` is the
        innermost part running.

        :return: what ``part`` returns.
        :raise asyncio.CancelledError: when the client left (``part`` got it where it
            awaited, or, when the client had left before, ``part`` was closed unrun),
            or when the task was cancelled otherwise.
        :raise Exception: what ``part`` raises.
        """
        if self.state is _LEFT:
            close = getattr(part, "close", None)
            if close is not None:
                close()
            raise asyncio.CancelledError()
        task = asyncio.current_task()
        assert task is not None  # run() is awaited by a task (async_to_sync's)
        running = self._running
        running.append(task)
        start = (
            asyncio.get_running_loop().call_soon(self._listen) if self.state is _WAITING else None
        )
        try:
            return await part
        finally:
            if start is not None:
                start.cancel()
            running.remove(task)

    def _listen(self) -> None:
        """Start the listener: a part is still running after its first loop turn."""
        if self.state is _WAITING:
            self.state = _LISTENING
            self._listener = asyncio.get_running_loop().create_task(self._until_left())

    async def _until_left(self) -> None:
        """Await ``http.disconnect``; then cancel the innermost running part, if any.

        An error from ``receive`` is logged at debug level and ends the listening
        (the request runs on).
        """
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception:
            logger.debug("receive() failed while a request's async code ran", exc_info=True)
            return
        if self.state is _LISTENING:
            self.state = _LEFT
            if self._running:
                logger.debug("client left while a request's async code ran; cancelling it")
                self._running[-1].cancel()

    def cancel(self) -> None:
        """Cancel the request's async code as a client's leaving does: the innermost
        running part now, any later part before it runs (the server cancelled the
        request's task, which the parts do not run in; on the loop). Nothing once
        the chain returned."""
        if self.state is _WAITING or self.state is _LISTENING:
            self.state = _LEFT
            if self._running:
                logger.debug("request cancelled while its async code ran; cancelling it")
                self._running[-1].cancel()

    def stop(self) -> None:
        """End the watch once the chain returned (on the loop): stop the listener."""
        if self.state is not _LEFT:
            self.state = _ENDED
        listener = self._listener
        if listener is not None:
            self._listener = None
            listener.cancel()


class ClientLeft(Exception):
    """The client left while the chain ran: the request ended and nothing is to be sent."""


#: The current request's watch, set by the handler in its hop's context.
current_watch: contextvars.ContextVar[RequestWatch | None] = contextvars.ContextVar(
    "asgishift_request_watch", default=None
)


def watched(part: Callable[..., Awaitable[_R]]) -> Callable[..., Awaitable[_R]]:
    """Return ``part`` (an ``async def`` view, an async middleware or middleware hook)
    wrapped to run under the :class:`RequestWatch` current when it is called
    (:data:`current_watch`); unwatched when there is none (outside the handler).

    :param part: an async callable; the wrapper takes and returns what it does.
    """

    async def watched_part(*args: Any, **kwargs: Any) -> _R:
        watch = current_watch.get()
        if watch is None:
            return await part(*args, **kwargs)
        return await watch.run(part(*args, **kwargs))

    return watched_part


__all__ = [
    "ClientLeft",
    "RequestWatch",
    "WatchState",
    "current_watch",
    "watched",
]
