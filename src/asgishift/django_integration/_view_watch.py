"""Cancel an ``async def`` view when its client leaves, as Django's ``ASGIHandler`` does.

Django's own handler (Django >= 5.0, "Asynchronous support: Handling
disconnects") listens for the client's ``http.disconnect`` (ASGI HTTP spec,
"Disconnect - receive event") while the view runs and cancels the request's
task: an ``async def`` view gets ``asyncio.CancelledError`` where it awaits.

The bounded handler runs the middleware chain on a pool thread; Django calls
an ``async def`` view from there with ``async_to_sync``, which runs it as a
task on the event loop. :class:`ViewWatch` wraps that call: once the view has
not finished within its first loop turn, a listener task awaits ``receive()``
and, at ``http.disconnect``, cancels the view's task. A view that returns
without giving up the loop (the common short request) costs one
``loop.call_soon`` and its cancellation, no task.

The handler reads the whole request body before the view runs, so the only
message ``receive()`` can give the listener is ``http.disconnect``: no body
message is taken from the view.

Sync views are not watched: a thread cannot be interrupted, so the view runs
to its end.
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
    """Where a request's async view stands with respect to its client."""

    WAITING = "waiting"  # the view has not run yet, or runs within its first loop turn
    LISTENING = "listening"  # the view is past its first loop turn: a listener awaits receive()
    ENDED = "ended"  # the view returned or raised on its own
    LEFT = "left"  # the client left while the view ran: the view's task was cancelled


# Read on every request: module constants (the enum metaclass makes class access slow).
_WAITING: Final = WatchState.WAITING
_LISTENING: Final = WatchState.LISTENING
_ENDED: Final = WatchState.ENDED
_LEFT: Final = WatchState.LEFT


class ViewWatch:
    """One request's watch over its ``async def`` view (see the module doc).

    :param receive: the request's ASGI ``receive``, whose body was read whole.

    :attr:`state` is :attr:`WatchState.LEFT` once a disconnect cancelled the view;
    the handler then sends nothing.
    """

    __slots__ = ("_listener", "_receive", "_task", "state")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.state = _WAITING
        self._task: asyncio.Task[Any] | None = None
        self._listener: asyncio.Task[None] | None = None

    async def run(self, view: Awaitable[_R]) -> _R:
        """Await ``view`` (an async view's coroutine) on this task, cancelling the task
        when the client sends ``http.disconnect`` while ``view`` runs.

        :return: what ``view`` returns.
        :raise asyncio.CancelledError: when the client left (the view got it where it
            awaited), or when the task was cancelled otherwise.
        :raise Exception: what ``view`` raises.
        """
        self._task = asyncio.current_task()
        start = asyncio.get_running_loop().call_soon(self._listen)
        try:
            return await view
        finally:
            start.cancel()
            if self.state is not _LEFT:
                self.state = _ENDED
            listener = self._listener
            if listener is not None:
                self._listener = None
                listener.cancel()

    def _listen(self) -> None:
        """Start the listener: the view is still running after its first loop turn."""
        if self.state is _WAITING:
            self.state = _LISTENING
            self._listener = asyncio.get_running_loop().create_task(self._until_left())

    async def _until_left(self) -> None:
        """Await ``http.disconnect``; then, if the view still runs, cancel its task.

        An error from ``receive`` is logged at debug level and ends the watch (the
        view runs on).
        """
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception:
            logger.debug("receive() failed while an async view ran; not watching it", exc_info=True)
            return
        if self.state is _LISTENING and self._task is not None:
            self.state = _LEFT
            logger.debug("client left while an async view ran; cancelling the view")
            self._task.cancel()


class ClientLeft(Exception):
    """The client left while the view ran: the request ended and nothing is to be sent."""


#: The current request's watch, set by the handler around its one hop.
current_watch: contextvars.ContextVar[ViewWatch | None] = contextvars.ContextVar(
    "asgishift_view_watch", default=None
)


def watched(view: Callable[..., Awaitable[_R]]) -> Callable[..., Awaitable[_R]]:
    """Return ``view`` (an ``async def`` view) run under the current request's
    :class:`ViewWatch`; ``view`` itself when there is none (outside the handler)."""
    watch = current_watch.get()
    if watch is None:
        return view

    async def watched_view(*args: Any, **kwargs: Any) -> _R:
        return await watch.run(view(*args, **kwargs))

    return watched_view


__all__ = ["ClientLeft", "ViewWatch", "WatchState", "current_watch", "watched"]
