"""Carry an ``ASGIToWSGI`` request's batches from the event loop to its WSGI server thread.

The loop thread posts (:meth:`PipeOutbox.put`); the WSGI server's thread that
serves the request waits for them (:meth:`PipeOutbox.get`). The outbox moves
items only and knows nothing of what they mean.

Why not ``queue.SimpleQueue``: its ``put`` wakes the waiting thread while the
loop thread holds the GIL. On a busy core the woken thread runs at once, finds
the GIL taken, and sleeps again until the loop thread lets go of it: two
context switches per wake-up that do nothing. Here ``put`` writes a byte to a
pipe the waiting thread reads, and ``os.write`` and ``os.read`` release the
GIL around the system call, so the woken thread finds the GIL free. Requests
one at a time to the benchmark's Starlette app cost 35 µs instead of 41-43
(``benchmarks/asgi_to_wsgi_bench.py --in-process --threads 1``; the numbers are
in ``benchmarks/RESULTS.md``, "sixteenth session").

The pipe belongs to the waiting thread, not to the request: each thread makes
one, on its first request, and keeps it, so a request costs no ``pipe()`` or
``close()``. The bytes are only wake-ups. A waiting thread looks at the
outbox's items first and reads the pipe only while there are none; ``put``
appends the item *before* it writes the byte. So a waiter never sleeps past an
item, and a byte left over (an item taken before its byte was read, or a byte
of an earlier request whose waiter stopped waiting) costs one extra look at an
empty deque later, nothing more.

The pipe is closed once its thread has ended *and* no outbox refers to it any
more (an outbox holds its pipe), so a loop callback of a finished request never
writes to a descriptor that was closed and reused; at interpreter exit it is left
to the process's end, since the requests ended then still post. A process forked from one
that used the pipe (a ``gunicorn --preload`` master) makes its own. A server
that iterates a response on another thread than the one that called the app
moves the outbox to that thread's pipe on its first wait there.

Where ``os.pipe`` cannot be polled (Windows), :func:`new_outbox` gives a
``queue.SimpleQueue``, which has the same ``put``/``get`` interface.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import select
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Outbox", "PipeOutbox", "new_outbox"]

_T = TypeVar("_T")

#: Bytes read from the pipe at once: every pending wake-up, never more than a few.
_READ_SIZE = 64


class Outbox(Protocol[_T]):
    """What the two halves of an ``ASGIToWSGI`` request need of their channel."""

    def put(self, item: _T) -> None:
        """Post ``item`` (from the loop thread); never blocks."""

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Return the oldest item, waiting for one at most ``timeout`` seconds.

        :raise queue.Empty: when none came in time.
        """


class _WakePipe:
    """A thread's wake-up pipe: a blocking read end, a non-blocking write end."""

    __slots__ = ("__weakref__", "owner", "poller", "read_fd", "write_fd")

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            # A full pipe (64 KiB of unread wake-ups) must never block the loop.
            os.set_blocking(write_fd, False)
        except BaseException:
            _close_fds(read_fd, write_fd)
            raise
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.owner = threading.get_ident()
        self.poller: Any = None  # select.poll(), made at the first timed wait
        closer = weakref.finalize(self, _close_fds, read_fd, write_fd)
        # Not at interpreter exit: requests ended then (process exit, a stopping
        # gunicorn worker) still post, and the process's end closes them anyway.
        closer.atexit = False

    def wait(self, timeout: float) -> bool:
        """Wait until the pipe is readable, at most ``timeout`` seconds; ``True`` if it is."""
        poller = self.poller
        if poller is None:
            poller = self.poller = select.poll()
            poller.register(self.read_fd, select.POLLIN)
        return bool(poller.poll(math.ceil(timeout * 1000)))


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


_local = threading.local()


def _forget_pipes_after_fork() -> None:
    """Give a forked child pipes of its own (the parent's would be shared with it)."""
    global _local
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pipes_after_fork)


def _thread_pipe() -> _WakePipe:
    """Return the calling thread's wake-up pipe, made on first use."""
    pipe: _WakePipe | None = getattr(_local, "pipe", None)
    if pipe is None:
        pipe = _local.pipe = _WakePipe()
    return pipe


class PipeOutbox(Generic[_T]):
    """A one-reader channel from the event loop to a WSGI server thread (POSIX).

    Made on the thread that will wait for its items (see the module's docstring
    for why a pipe, and why a pipe per thread).

    :raise OSError: when the thread's first pipe cannot be made (out of descriptors).
    """

    __slots__ = ("_items", "_pipe", "_write_fd")

    def __init__(self) -> None:
        self._items: deque[_T] = deque()
        pipe = self._pipe = _thread_pipe()
        self._write_fd = pipe.write_fd

    def put(self, item: _T) -> None:
        """Append ``item`` and wake the waiting thread (any thread; never blocks)."""
        self._items.append(item)
        try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
            os.write(self._write_fd, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups: the reader has one to read anyway

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Return the oldest item, waiting at most ``timeout`` seconds (``None``: for ever).

        Called by one thread at a time (the one serving the request).

        :param block: ``False`` returns at once (as ``queue.SimpleQueue.get``).
        :raise queue.Empty: when no item came in time.
        """
        items = self._items
        if items:
            return items.popleft()
        pipe = self._pipe
        if pipe.owner != threading.get_ident():
            pipe = self._move()
            if items:
                return items.popleft()
        if not block:
            raise queue.Empty
        read_fd = pipe.read_fd
        if timeout is None:
            while not items:
                os.read(read_fd, _READ_SIZE)
            return items.popleft()
        deadline = time.monotonic() + timeout
        while not items:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not pipe.wait(remaining):
                if items:
                    break
                raise queue.Empty
            os.read(read_fd, _READ_SIZE)
        return items.popleft()

    def _move(self) -> _WakePipe:
        """Wait on the calling thread's pipe from now on (the server changed threads).

        The write end changes before the caller looks at the items again, so an
        item put after that look wakes the new pipe.
        """
        pipe = self._pipe = _thread_pipe()
        self._write_fd = pipe.write_fd
        return pipe


def new_outbox() -> Outbox[Any]:
    """Return an outbox for the calling WSGI server thread to wait on.

    A :class:`PipeOutbox` on POSIX, a ``queue.SimpleQueue`` on Windows.

    :raise OSError: when the thread's wake-up pipe cannot be made.
    """
    if sys.platform == "win32":
        return queue.SimpleQueue()
    return PipeOutbox()
