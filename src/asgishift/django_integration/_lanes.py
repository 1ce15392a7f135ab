"""A bounded pool of long-lived single-thread executors ("lanes") for ORM work.

Django keeps one database connection per thread and alias. Running ORM calls
from async code outside a request (lifespan hooks, background tasks, WebSocket
consumers) on asgiref's one process-wide thread serialises all of them; running
them on a fresh thread per call opens a connection per call. A lane is one
thread that lives as long as the process: work leased to it runs there one call
at a time, so a block of calls can share one connection and one transaction,
and the pool holds at most ``size`` threads and therefore at most ``size``
connections per database alias.

Waiting for a free lane happens on the event loop (an :class:`asyncio.Future`
per waiter, first come first served); a lane released from any thread is
handed to the oldest waiter that has not been cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger("asgishift.django.db")

#: Default number of lanes when the ``ASGISHIFT_ORM_THREADS`` setting is absent.
DEFAULT_LANES = min(32, (os.cpu_count() or 1) + 4)


class ThreadLanes:
    """At most ``size`` single-thread executors, leased one caller at a time.

    :param size: the number of lanes (threads), at least 1.
    :param name: prefix of the worker threads' names, for logs and debuggers.
    :raise ValueError: when ``size`` is below 1.
    """

    def __init__(self, size: int, name: str = "asgishift-orm") -> None:
        if size < 1:
            raise ValueError(f"ThreadLanes needs at least one lane, got size={size}")
        self.size = size
        self.name = name
        self._lock = threading.Lock()
        self._idle: deque[ThreadPoolExecutor] = deque()
        self._all: list[ThreadPoolExecutor] = []
        self._waiters: deque[asyncio.Future[ThreadPoolExecutor]] = deque()
        self._closed = False

    @property
    def busy(self) -> int:
        """Number of lanes leased right now."""
        with self._lock:
            return len(self._all) - len(self._idle)

    async def acquire(self) -> ThreadPoolExecutor:
        """Wait for a free lane and lease it to the caller.

        :return: a single-thread executor; give it back with :meth:`release`.
        :raise RuntimeError: after :meth:`shutdown`.
        :raise asyncio.CancelledError: when the waiting task is cancelled (no
            lane is leased then).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError("ThreadLanes has been shut down")
            if self._idle:
                return self._idle.popleft()
            if len(self._all) < self.size:
                lane = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-{len(self._all)}")
                self._all.append(lane)
                return lane
            waiter: asyncio.Future[ThreadPoolExecutor] = loop.create_future()
            self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            raise

    def release(self, lane: ThreadPoolExecutor) -> None:
        """Give a leased lane back: to the oldest live waiter, else to the idle set.

        Safe to call from any thread.

        :param lane: an executor returned by :meth:`acquire`.
        """
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.done():
                    continue
                waiter.get_loop().call_soon_threadsafe(self._hand_over, waiter, lane)
                return
            self._idle.append(lane)

    def _hand_over(
        self, waiter: asyncio.Future[ThreadPoolExecutor], lane: ThreadPoolExecutor
    ) -> None:
        if waiter.done():  # cancelled between release() and this callback
            self.release(lane)
        else:
            waiter.set_result(lane)

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[ThreadPoolExecutor]:
        """Lease a lane for the ``async with`` block and give it back afterwards."""
        lane = await self.acquire()
        try:
            yield lane
        finally:
            self.release(lane)

    def run_on_every_lane(self, func: Callable[[], object]) -> None:
        """Run ``func()`` once on every lane thread started so far and wait for it.

        Used to close each thread's database connections (they are
        thread-local). Errors are logged, not raised.
        """
        with self._lock:
            lanes = list(self._all)
        for lane in lanes:
            try:
                lane.submit(func).result()
            except Exception:
                logger.exception("closing work on ORM lane %s failed", self.name)

    def shutdown(self) -> None:
        """Stop every lane thread after its queued work; later :meth:`acquire` raises."""
        with self._lock:
            self._closed = True
            lanes = list(self._all)
            waiters = list(self._waiters)
            self._waiters.clear()
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(waiter.cancel)
        for lane in lanes:
            lane.shutdown(wait=True)
