"""A future that resumes the task awaiting it at once, inside the callback that sets it.

An ``asyncio.Future`` never runs its done callbacks when its result is set: it
schedules them with ``loop.call_soon``. A task awaiting it therefore resumes in
the *next* loop iteration, one more pass of the loop (on asyncio's pure-Python
loop, a ``select`` with no timeout and the bookkeeping around it) between a
worker's result arriving and the request going on. Every ``WSGIToASGI`` request
waits on the loop at least once (for the end of its app), so that pass is paid
per request. Counted under valgrind (``benchmarks/instructions.py``), it was
about 22,000 of the bridge's 138,000 instructions per Flask request on asyncio.

:class:`InlineFuture` keeps an awaiting task's wake-up to itself and, when its
result is set from a plain loop callback (the :class:`~._inbox.Inbox` drain, a
timer), runs it there and then. Resuming a task inline is what the task's own
wake-up does anyway once it is called; the only difference is *when*. Where
inline is not safe, it falls back to scheduling, exactly as a plain future:

- set from inside a running task (a task cannot start while another runs on
  the same loop: ``asyncio`` refuses it);
- cancelled (``Task.cancel()`` may be called from anywhere, mid-step);
- callbacks added without a context (``asyncio.wait``'s, which expect the
  ordinary order) and callbacks added after the result was set.

Only the bridge uses it, for futures of its own that one task awaits; it is
not a general replacement for ``loop.create_future()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from asyncio import current_task
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["InlineFuture", "waiter_factory"]

_T = TypeVar("_T")

_Callback = Callable[["InlineFuture[Any]"], object]


class InlineFuture(asyncio.Future[_T]):
    """An ``asyncio.Future`` whose ``set_result`` resumes the awaiting task inline.

    The awaiting task's wake-up (``Task`` adds it with its ``context``) runs
    inside :meth:`set_result`/:meth:`set_exception` when no task is running on
    the loop at that moment, instead of in the next loop iteration. Everything
    else behaves as an ``asyncio.Future`` (the ``asyncio`` docs, "Future
    Object"): results, exceptions, cancellation, ``await``.

    :param loop: the event loop the future belongs to (its thread only).
    """

    __slots__ = ("_inline",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._inline: list[tuple[_Callback, contextvars.Context]] = []

    def add_done_callback(
        self, fn: _Callback, /, *, context: contextvars.Context | None = None
    ) -> None:
        """Keep a task's wake-up (given with a ``context``) to run inline; schedule others.

        :param fn: called with this future once it is done.
        :param context: the ``contextvars`` context ``fn`` runs in.
        """
        if context is None or self.done():
            super().add_done_callback(fn, context=context)
        else:
            self._inline.append((fn, context))

    def remove_done_callback(self, fn: _Callback, /) -> int:
        """Remove every registration of ``fn``; return how many there were."""
        kept = [entry for entry in self._inline if entry[0] != fn]
        removed = len(self._inline) - len(kept)
        self._inline = kept
        return removed + super().remove_done_callback(fn)

    def set_result(self, result: _T, /) -> None:
        """Set the result and resume the awaiting task (inline when safe).

        :raise asyncio.InvalidStateError: if the future is already done.
        """
        super().set_result(result)
        self._resume()

    def set_exception(self, exception: type | BaseException, /) -> None:
        """Set the exception and resume the awaiting task (inline when safe).

        :raise asyncio.InvalidStateError: if the future is already done.
        :raise TypeError: for ``StopIteration``, as ``asyncio.Future`` does.
        """
        super().set_exception(exception)
        self._resume()

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the future; the awaiting task is woken in the next loop iteration.

        :return: ``False`` if the future was already done.
        """
        if not super().cancel(msg):
            return False
        self._schedule()
        return True

    def _resume(self) -> None:
        """Run the kept wake-ups now, or schedule them if a task is running."""
        inline = self._inline
        if not inline:
            return
        if current_task(self.get_loop()) is not None:
            self._schedule()
            return
        self._inline = []
        for index, (fn, context) in enumerate(inline):
            try:
                context.run(fn, self)
            except BaseException:
                # KeyboardInterrupt out of a task's step: the rest still run.
                self._inline = inline[index + 1 :]
                self._schedule()
                raise

    def _schedule(self) -> None:
        """Schedule the kept wake-ups as ``asyncio.Future`` would."""
        inline = self._inline
        self._inline = []
        loop = self.get_loop()
        for fn, context in inline:
            loop.call_soon(fn, self, context=context)


def waiter_factory(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.Future[Any]]:
    """Return what makes the bridge's waiters on ``loop``: :class:`InlineFuture` or not.

    On asyncio's own loops (``asyncio.BaseEventLoop``, whose iterations are Python)
    an :class:`InlineFuture`, which saves a loop iteration per wait. On any other
    loop (uvloop, written in Cython) ``loop.create_future()``: there an iteration
    costs less than the Python-level ``add_done_callback``/``set_result`` overrides
    of :class:`InlineFuture`, which counted about 8,600 instructions more per Flask
    request than a plain future (``benchmarks/RESULTS.md``, fifteenth session).

    :param loop: the event loop the waiters belong to.
    :return: a callable of no arguments returning a new future of ``loop``.
    """
    if isinstance(loop, asyncio.BaseEventLoop):
        return functools.partial(InlineFuture, loop)
    return loop.create_future
