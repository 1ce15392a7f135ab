"""Carry items from worker threads to one event loop, one wake-up per batch.

The inbox moves items only: it knows nothing of requests, just that each item
goes to a :class:`Wakeable` (anything with a ``wake(item)`` method that runs on
the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import weakref
from collections import deque
from typing import Any, Protocol

__all__ = ["Inbox", "Wakeable"]


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

    On a pure-asyncio selector loop (POSIX) the wake-up is a byte on the
    inbox's own non-blocking pipe, watched with ``loop.add_reader``: asyncio's
    own self-pipe path allocates a handle per call and reads its socket until
    ``EAGAIN`` (two ``recv`` calls and an exception per wake-up), which costs
    about 2.5 µs more per round trip. The pipe's descriptors are closed when
    the inbox is garbage-collected, which cannot happen while its loop's
    selector still holds the reader, i.e. before the loop is closed. Other
    loops (uvloop, whose ``call_soon_threadsafe`` is already cheap, Windows'
    proactor) use ``call_soon_threadsafe``.

    Correctness does not need one inbox per loop (each drains its own
    deque); :class:`~asgishift.bridge.WSGIToASGI` keeps the last one it used
    and passes it to each request, so that concurrent requests share it.

    :param loop: the running event loop the items are delivered on; create
        the inbox on that loop's thread.
    :raise OSError: if the pipe cannot be created (out of descriptors).
    """

    __slots__ = ("__weakref__", "_finalizer", "_read_fd", "_write_fd", "items", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: deque[tuple[Wakeable, tuple[Any, ...]]] = deque()
        self.scheduled = False
        self._read_fd = -1
        self._write_fd = -1
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if sys.platform != "win32" and isinstance(loop, asyncio.SelectorEventLoop):
            read_fd, write_fd = os.pipe()
            # Closed with the inbox; a finalizer holds no reference to it.
            self._finalizer = weakref.finalize(self, _close_fds, read_fd, write_fd)
            os.set_blocking(read_fd, False)
            # A full pipe must never block a worker: a wake-up is pending then.
            os.set_blocking(write_fd, False)
            loop.add_reader(read_fd, self._readable)
            self._read_fd = read_fd
            self._write_fd = write_fd

    def post(self, target: Wakeable, item: tuple[Any, ...]) -> None:
        """Queue ``item`` for ``target`` and wake the loop if needed (any thread).

        :raise RuntimeError: if the loop is closed.
        """
        if self._write_fd < 0:
            self.items.append((target, item))
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
        self.items.append((target, item))
        if not self.scheduled:
            self.scheduled = True
            try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
                os.write(self._write_fd, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups the loop has not read yet

    def _readable(self) -> None:
        """Consume the pipe's wake-up bytes and drain (the loop's reader callback)."""
        try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass  # readiness without data: drain anyway, it is harmless
        self.drain()

    def drain(self) -> None:
        """Deliver every queued item to its target's ``wake`` (runs on the loop)."""
        self.scheduled = False  # first: a later post() wakes the loop again
        items = self.items
        popleft = items.popleft
        while items:
            target, item = popleft()
            try:
                target.wake(item)
            except Exception as exc:  # one bad item must not strand the others
                message = "asgishift bridge: delivering a worker item failed"
                self.loop.call_exception_handler({"message": message, "exception": exc})


def _close_fds(*fds: int) -> None:
    """Close an :class:`Inbox`'s pipe (its finalizer)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
