"""Carry items from worker threads to one event loop, one wake-up per batch.

The inbox moves items only: it knows nothing of requests, just that each item
goes to a :class:`Wakeable` (anything with a ``wake(item)`` method that runs on
the loop). Both bridge directions use it: ``WSGIToASGI``'s worker threads post
their requests' items, and ``ASGIToWSGI``'s loop thread
(:meth:`~asgishift.bridge._loop_thread.LoopThread.call`) carries the WSGI
server threads' calls with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import weakref
from collections import deque
from time import monotonic
from typing import Any, Final, Protocol

from asgishift.bridge._waiter import waiter_factory

__all__ = ["SPACED_AFTER", "Inbox", "Wakeable"]

logger = logging.getLogger("asgishift.bridge")

#: Seconds a job must have held its worker thread for :meth:`Inbox.post_finished`
#: to deliver its end spaced out: such a job waited on something other than
#: the CPU (a view blocked on I/O), and a few microseconds of extra loop
#: iteration are small beside it.
SPACED_AFTER: Final = 0.005


class Wakeable(Protocol):
    """A receiver of inbox items: ``wake`` runs on the event loop, once per item."""

    def wake(self, item: tuple[Any, ...]) -> None:
        """Take one item a worker posted (runs on the loop; must not block)."""


class Inbox:
    """Carry items from worker threads to one event loop, one wake-up per batch.

    ``loop.call_soon_threadsafe`` costs a self-pipe write (a syscall, during
    which the worker drops the GIL) and, on the loop, a wake-up per call. When
    many workers finish at once (100 requests blocked in the same 0.1 s sleep)
    that is 100 writes and up to 100 loop iterations. Here a worker appends its
    item to a deque and wakes the loop only when no drain is scheduled; the
    drain clears the flag *before* it empties the deque, so an item appended
    after the clear schedules a new drain (at worst a spurious, empty one) and
    an item appended before it is seen by this drain: nothing is lost.
    ``deque.append``/``popleft`` are atomic, and a lost race on the flag only
    costs an extra drain.

    On POSIX the wake-up is a byte on the inbox's own non-blocking pipe,
    watched with ``loop.add_reader``, on every loop that has it (asyncio's
    selector loops, uvloop). ``os.write`` releases the GIL around the write, so
    the loop thread it wakes finds the GIL free and runs at once. A wake-up
    written with the GIL held, as uvloop's ``call_soon_threadsafe`` does it,
    wakes a loop thread that must wait for the GIL the worker still holds: on
    one core a sequential request then took six context switches instead of
    two, and a Flask request 10-17 µs more (``benchmarks/RESULTS.md``,
    "eleventh session"). On asyncio's own loop the pipe also avoids its
    self-pipe path, which allocates a handle per call and reads its socket
    until ``EAGAIN`` (two ``recv`` calls and an exception per wake-up). The
    pipe's descriptors are closed when the inbox is garbage-collected, which
    cannot happen while its loop still holds the reader, i.e. before the loop
    is closed. A loop without ``add_reader`` (Windows' proactor loop raises
    ``NotImplementedError``) gets ``call_soon_threadsafe``.

    Correctness does not need one inbox per loop (each drains its own
    deque); :class:`~asgishift.bridge.WSGIToASGI` keeps the last one it used
    and passes it to each request, so that concurrent requests share it, and
    each ``ASGIToWSGI`` loop thread has one of its own.

    :param loop: the running event loop the items are delivered on; create
        the inbox on that loop's thread.
    :raise OSError: if the pipe cannot be created (out of descriptors).
    """

    __slots__ = (
        "__weakref__",
        "_finalizer",
        "_read_fd",
        "_write_fd",
        "items",
        "loop",
        "new_waiter",
        "scheduled",
        "spaced",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: Makes the future a request awaits its worker's items with, the kind that
        #: is cheapest on ``loop`` (:func:`~asgishift.bridge._waiter.waiter_factory`).
        self.new_waiter = waiter_factory(loop)
        self.items: deque[tuple[Wakeable, tuple[Any, ...]]] = deque()
        self.spaced: deque[tuple[Wakeable, tuple[Any, ...]]] = deque()
        self.scheduled = False
        self._read_fd = -1
        self._write_fd = -1
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if sys.platform != "win32":
            self._watch_pipe(loop)

    def _watch_pipe(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make the wake-up pipe and watch it, unless ``loop`` cannot watch it.

        A loop whose ``add_reader`` raises (``NotImplementedError`` on the
        proactor loop; whatever a loop of another library raises) keeps
        ``call_soon_threadsafe``.
        """
        read_fd, write_fd = os.pipe()
        try:
            os.set_blocking(read_fd, False)
            # A full pipe must never block a worker: a wake-up is pending then.
            os.set_blocking(write_fd, False)
            loop.add_reader(read_fd, self._readable)
        except Exception as exc:
            _close_fds(read_fd, write_fd)
            logger.debug(
                "%r cannot watch a pipe (%r): waking it with call_soon_threadsafe", loop, exc
            )
            return
        except BaseException:
            _close_fds(read_fd, write_fd)
            raise
        # Closed with the inbox; a finalizer holds no reference to it.
        self._finalizer = weakref.finalize(self, _close_fds, read_fd, write_fd)
        self._read_fd = read_fd
        self._write_fd = write_fd

    def post(self, target: Wakeable, item: tuple[Any, ...]) -> None:
        """Queue ``item`` for ``target`` and wake the loop if needed (any thread).

        Items posted here are delivered together, all of them in the next
        drain: the cheapest order when the loop is the bottleneck.

        :raise RuntimeError: if the loop is closed.
        """
        self._post(self.items, target, item)

    def post_spaced(self, target: Wakeable, item: tuple[Any, ...]) -> None:
        """Queue ``item`` for delivery one per loop iteration (any thread).

        For the end of a job that held its thread far longer than the loop
        needs per item (a view that waited on I/O): when many such jobs end
        at once, delivering them all in one batch answers their connections
        in one burst, and each connection's next request then queues behind
        the whole burst, so the connections stay in lock step and each waits
        for all the others. One item per iteration lets the loop poll its
        sockets between them and start each next request as it arrives; the
        extra iteration costs microseconds, small beside such a job.

        :raise RuntimeError: if the loop is closed.
        """
        self._post(self.spaced, target, item)

    def post_finished(self, target: Wakeable, item: tuple[Any, ...], started: float) -> None:
        """Post the end of a job that began at ``started`` (any thread).

        Batched with :meth:`post` when the job held its thread for less than
        :data:`SPACED_AFTER` seconds (CPU-bound work: batching is cheapest),
        spaced with :meth:`post_spaced` otherwise.

        :param started: ``time.monotonic()`` when the job began, in seconds.
        :raise RuntimeError: if the loop is closed.
        """
        if monotonic() - started < SPACED_AFTER:
            self._post(self.items, target, item)
        else:
            self._post(self.spaced, target, item)

    def _post(
        self,
        queue: deque[tuple[Wakeable, tuple[Any, ...]]],
        target: Wakeable,
        item: tuple[Any, ...],
    ) -> None:
        """Append to ``queue`` and wake the loop unless a drain is already due."""
        if self._write_fd < 0:
            queue.append((target, item))
            if not self.scheduled:
                self.scheduled = True
                try:
                    self.loop.call_soon_threadsafe(self.drain)
                except BaseException:
                    self.scheduled = False
                    raise
            return
        if self.loop.is_closed():
            raise RuntimeError("Event loop is closed")
        queue.append((target, item))
        if not self.scheduled:
            self.scheduled = True
            try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
                os.write(self._write_fd, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups the loop has not read yet

    def _readable(self) -> None:
        """Consume the pipe's wake-up bytes and drain (the loop's reader callback)."""
        try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
            # 256: each wake-up is one byte, and a buffer this small comes from
            # Python's allocator, where 4096 bytes cost a malloc (0.2 µs).
            os.read(self._read_fd, 256)
        except BlockingIOError:
            pass  # readiness without data: drain anyway, it is harmless
        self.drain()

    def drain(self) -> None:
        """Deliver every item of :meth:`post` and one of :meth:`post_spaced` (on the loop).

        When spaced items remain, another drain is scheduled for the next
        loop iteration, which polls I/O first.
        """
        self.scheduled = False  # first: a later post() wakes the loop again
        items = self.items
        popleft = items.popleft
        spaced = self.spaced
        try:
            while items:
                target, item = popleft()
                try:
                    target.wake(item)
                except Exception as exc:  # one bad item must not strand the others
                    self._failed(exc)
            if spaced:
                target, item = spaced.popleft()
                try:
                    target.wake(item)
                except Exception as exc:
                    self._failed(exc)
        except BaseException:
            # KeyboardInterrupt or SystemExit out of a wake() (one may resume
            # a task inline, see _waiter.py): deliver the rest in a later drain.
            self._reschedule()
            raise
        if spaced:
            self._reschedule()

    def _reschedule(self) -> None:
        """Schedule a drain for the next loop iteration unless one is due (on the loop)."""
        if not self.scheduled:
            # A post() now sees the flag set and leaves the wake-up to us.
            self.scheduled = True
            self.loop.call_soon(self.drain)

    def _failed(self, exc: Exception) -> None:
        """Report an item whose delivery raised to the loop's exception handler."""
        message = "asgishift bridge: delivering a worker item failed"
        self.loop.call_exception_handler({"message": message, "exception": exc})


def _close_fds(*fds: int) -> None:
    """Close an :class:`Inbox`'s pipe (its finalizer)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
