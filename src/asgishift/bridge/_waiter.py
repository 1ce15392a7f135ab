"""A one-item slot that a request's task awaits and the event loop fills.

Strategy: ``await future`` on an :class:`asyncio.Future` parks the awaiting
task; ``set_result`` then *schedules* the task's wake-up with
``loop.call_soon``, so the task runs one loop iteration later. For the bridge
that iteration is pure cost: the worker's item arrives in an inbox drain (a
loop callback, no task running), and the request's task could resume right
there. On the pure-asyncio loop the extra iteration (a ``select`` with a zero
timeout, a new handle, the scheduling bookkeeping) is several microseconds
per hand-off, the largest share of what asyncio costs over uvloop.

:class:`Waiter` is a *Future-like object* in the sense of
:func:`asyncio.isfuture` (it carries ``_asyncio_future_blocking``), which
asyncio's tasks accept wherever they accept a future: the task registers its
wake-up with :meth:`Waiter.add_done_callback`. :meth:`Waiter.set_result` runs
the registered callbacks at once, each in its own context, when no task is
running on the loop (the case in a loop callback), and schedules them with
``call_soon`` otherwise (a task cannot step while another one runs). Cancelling
always schedules, as :meth:`asyncio.Future.cancel` does.

On uvloop the saving is not there to take: its pass over the ready queue is
C code, cheaper than the Python calls a :class:`Waiter` adds, so
:func:`waiter_factory` hands out the loop's own futures there. A waiter is
for the loop thread only; workers reach the loop through the inbox.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Generator
from typing import Any, Final, Protocol

__all__ = ["Slot", "Waiter", "waiter_factory"]

_EMPTY: Final = 0
_FULL: Final = 1
_CANCELLED: Final = 2

_current_task = asyncio.current_task

Callback = Callable[["Waiter"], object]


class Slot(Protocol):
    """What a request awaits its next item in: a :class:`Waiter` or an :class:`asyncio.Future`."""

    def done(self) -> bool:
        """Return whether an item is stored (or the slot was cancelled)."""

    def set_result(self, value: Any, /) -> None:
        """Store the item and wake the awaiting task."""

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        """Call ``fn(slot)`` once an item is stored."""

    def remove_done_callback(self, fn: Callable[[Any], object], /) -> int:
        """Forget ``fn``."""

    def __await__(self) -> Generator[Any, None, Any]:
        """Wait for the item and return it."""


class Waiter:
    """Hold at most one item for the coroutine that awaits it (loop thread only).

    ``await waiter`` returns the item once :meth:`set_result` stored it; a
    waiter takes one item (make a new one for the next). It supports what
    :func:`asyncio.wait` and a task's cancellation use of a future:
    ``done``, ``cancelled``, ``result``, ``exception``,
    ``add_done_callback``, ``remove_done_callback``, ``cancel``, and the
    ``_loop`` attribute that asyncio reads when an object has no
    ``get_loop`` (a method call less per item).

    :param loop: the event loop whose tasks await it.
    """

    __slots__ = ("_asyncio_future_blocking", "_callbacks", "_loop", "_message", "_state", "_value")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # Read by asyncio's tasks: True while a task yields this waiter to them.
        self._asyncio_future_blocking = False
        self._callbacks: list[tuple[Callback, contextvars.Context]] = []
        self._state = _EMPTY
        self._value: Any = None
        self._message: str | None = None  # the cancellation message

    def done(self) -> bool:
        """Return whether an item (or a cancellation) is stored and not taken yet."""
        return self._state != _EMPTY

    def cancelled(self) -> bool:
        """Return whether the waiter was cancelled (its awaiting task was)."""
        return self._state == _CANCELLED

    def result(self) -> Any:
        """Return the stored item.

        :raise asyncio.CancelledError: if the waiter was cancelled.
        :raise asyncio.InvalidStateError: if nothing is stored.
        """
        state = self._state
        if state == _FULL:
            return self._value
        if state == _CANCELLED:
            raise asyncio.CancelledError(self._message)
        raise asyncio.InvalidStateError("no item has been stored in the waiter")

    def exception(self) -> BaseException | None:
        """Return ``None``: a waiter holds items, never an exception.

        :raise asyncio.CancelledError: if the waiter was cancelled.
        :raise asyncio.InvalidStateError: if nothing is stored.
        """
        self.result()
        return None

    def add_done_callback(
        self, fn: Callback, *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``fn(waiter)`` once an item is stored or the waiter is cancelled.

        :param fn: the callback; a task passes its wake-up here.
        :param context: the context to run ``fn`` in (default: a copy of the
            current one), as for :meth:`asyncio.Future.add_done_callback`.
        """
        if context is None:
            context = contextvars.copy_context()
        if self._state == _EMPTY:
            self._callbacks.append((fn, context))
        else:
            self._loop.call_soon(fn, self, context=context)

    def remove_done_callback(self, fn: Callback) -> int:
        """Forget every registration of ``fn``; return how many there were."""
        kept = [entry for entry in self._callbacks if entry[0] != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    def cancel(self, msg: Any = None) -> bool:
        """Cancel an empty waiter; its callbacks are scheduled (``call_soon``).

        :return: ``False`` if an item (or a cancellation) is already stored.
        """
        if self._state != _EMPTY:
            return False
        self._state = _CANCELLED
        self._message = msg
        callbacks = self._callbacks
        self._callbacks = []
        for fn, context in callbacks:
            self._loop.call_soon(fn, self, context=context)
        return True

    def set_result(self, value: Any) -> None:
        """Store ``value`` and resume whoever awaits it, in this loop pass if possible.

        :raise asyncio.InvalidStateError: if an item is stored already.
        """
        if self._state != _EMPTY:
            raise asyncio.InvalidStateError("the waiter holds an item already")
        self._state = _FULL
        self._value = value
        callbacks = self._callbacks
        if not callbacks:
            return
        self._callbacks = []
        if _current_task(self._loop) is None:
            for fn, context in callbacks:
                try:
                    context.run(fn, self)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # as a loop handle reports it
                    self._loop.call_exception_handler(
                        {"message": f"exception in waiter callback {fn!r}", "exception": exc}
                    )
        else:
            for fn, context in callbacks:
                self._loop.call_soon(fn, self, context=context)

    def __await__(self) -> Generator[Any, None, Any]:
        """Wait until an item is stored; return it (it stays stored until :meth:`take`)."""
        if self._state == _EMPTY:
            self._asyncio_future_blocking = True
            yield self
        # A cancelled waiter never gets here: the task's wake-up called
        # result(), which raised CancelledError into the awaiting coroutine.
        return self._value


def waiter_factory(loop: asyncio.AbstractEventLoop) -> Callable[[], Slot]:
    """Return what makes the one-item slots a task on ``loop`` awaits.

    :class:`Waiter` on asyncio's own loops (:class:`asyncio.BaseEventLoop`),
    whose pass over the ready queue is Python code; the loop's C future on
    others (uvloop), whose extra pass costs less than a Python-level future.

    :param loop: the event loop the slots are awaited on.
    :return: a callable taking no arguments; each call makes a new empty slot.
    """
    if isinstance(loop, asyncio.BaseEventLoop):
        return functools.partial(Waiter, loop)
    return loop.create_future
