"""A bounded pool of long-lived one-thread executors, handed out one per request.

Django's stock ASGI handler enters ``ThreadSensitiveContext()`` per request,
which makes a new one-thread executor (a new thread, a new database
connection) for every request. asgiref ≥ 3.13 lets the context take an
executor instead (``ThreadSensitiveContext(executor=...)``): the handler
borrows one of :class:`ExecutorPool`'s executors for the request, so every
``sync_to_async(thread_sensitive=True)`` call of that request runs on that
executor's one thread, and the thread (with its database connection) lives on
for the next request.

Idle executors are handed out last-in first-out, so a lightly loaded server
keeps reusing the same few threads and connections.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

#: Default number of threads (and at most database connections) per process.
DEFAULT_MAX_THREADS = 16


class ExecutorPool:
    """``max_threads`` one-thread executors; a request waits when all are lent out.

    :param max_threads: number of executors (≥ 1), each with one thread that
        is started on first use and kept until :meth:`shutdown`.
    :raise ValueError: when ``max_threads`` is below 1.

    Thread-safe: requests may come from several event loops.
    """

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.max_threads = max_threads
        self._lock = threading.Lock()
        self._idle: list[ThreadPoolExecutor] = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"asgishift-django-{n}")
            for n in reversed(range(max_threads))
        ]
        self._all = tuple(reversed(self._idle))
        self._used: set[ThreadPoolExecutor] = set()
        self._waiters: deque[asyncio.Future[ThreadPoolExecutor]] = deque()

    @property
    def threads_started(self) -> int:
        """How many executors have been lent out at least once (threads started)."""
        with self._lock:
            return len(self._used)

    async def acquire(self) -> ThreadPoolExecutor:
        """Borrow an executor, waiting (first come, first served) while all are lent out.

        Give it back with :meth:`release`. Cancelling the wait loses nothing.
        """
        with self._lock:
            if self._idle and not self._waiters:
                executor = self._idle.pop()
                self._used.add(executor)
                return executor
            waiter: asyncio.Future[ThreadPoolExecutor] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            raise

    def release(self, executor: ThreadPoolExecutor) -> None:
        """Give ``executor`` back: to the oldest waiting request, or to the idle list."""
        with self._lock:
            waiter = None
            while self._waiters:
                candidate = self._waiters.popleft()
                if not candidate.done():
                    waiter = candidate
                    self._used.add(executor)
                    break
            if waiter is None:
                self._idle.append(executor)
                return
        loop = waiter.get_loop()
        if _running_loop() is loop:
            self._hand_over(waiter, executor)  # same loop: no self-pipe wake-up needed
        else:
            loop.call_soon_threadsafe(self._hand_over, waiter, executor)

    def _hand_over(
        self, waiter: asyncio.Future[ThreadPoolExecutor], executor: ThreadPoolExecutor
    ) -> None:
        if waiter.done():  # cancelled between release() and now
            self.release(executor)
        else:
            waiter.set_result(executor)

    def run_on_every_thread(self, func: Callable[[], object], timeout: float = 10.0) -> None:
        """Run ``func`` once on each started thread and wait for all (at most ``timeout``
        seconds); used to close each thread's database connections at shutdown."""
        with self._lock:
            used = [executor for executor in self._all if executor in self._used]
        wait([executor.submit(func) for executor in used], timeout=timeout)

    def shutdown(self) -> None:
        """Stop every thread once its current call returns (does not wait)."""
        for executor in self._all:
            executor.shutdown(wait=False)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["DEFAULT_MAX_THREADS", "ExecutorPool"]
