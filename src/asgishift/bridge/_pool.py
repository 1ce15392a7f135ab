"""A bounded pool of worker threads with a bounded wait queue.

Strategy: :class:`concurrent.futures.ThreadPoolExecutor` allocates a Future
(with its own Condition) per call and has no queue bound. The bridge needs
neither result objects nor cancellation, only "run this callable on some
thread, or tell me right away that there is no room". So jobs are plain
zero-argument callables put on one :class:`queue.SimpleQueue` (implemented in
C) that idle workers block on; one lock guards the counters. Threads start
lazily, one per job that finds no idle worker, up to ``max_workers``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["WorkerPool"]

logger = logging.getLogger("asgishift.bridge")

#: A job runs on a worker thread. It may return a follow-up callable, which the
#: worker runs after it has counted itself free again: a job whose last act
#: tells another thread that it is done (posts to an event loop) returns that
#: notification instead of making it, so that the thread it notifies never
#: sees the pool one job busier than it is (see :meth:`WorkerPool.submit`).
Job = Callable[[], "Callable[[], object] | None"]


class WorkerPool:
    """Run jobs on at most ``max_workers`` threads, with at most ``max_queue`` waiting.

    :param max_workers: the most threads ever started (≥ 1).
    :param max_queue: the most jobs allowed to wait for a free thread (≥ 0).
    :param name: thread name prefix, shown in tracebacks and ``py-spy`` dumps.
    :raise ValueError: for ``max_workers < 1`` or ``max_queue < 0``.
    """

    def __init__(self, max_workers: int, max_queue: int, name: str = "asgishift-bridge") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        self.max_workers = max_workers
        self.max_queue = max_queue
        self._name = name
        self._capacity = max_workers + max_queue
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._mutex = threading.Lock()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._started = 0
        self._closing = False
        self._idle_callbacks: list[Callable[[], object]] = []

    @property
    def in_flight(self) -> int:
        """Return how many jobs are running or waiting."""
        return self._in_flight

    @property
    def threads(self) -> int:
        """Return how many worker threads are alive (started and not stopped)."""
        return len(self._threads)

    @property
    def queued(self) -> bool:
        """Return whether some job waits for a thread (more jobs than threads)."""
        return self._in_flight > len(self._threads)

    @property
    def closing(self) -> bool:
        """Return whether :meth:`close` refused new jobs."""
        return self._closing

    def submit(self, job: Job) -> bool:
        """Schedule ``job`` on a worker thread unless the pool is full or closing.

        :param job: a callable taking no arguments; it must handle its own
            exceptions (any that escape are logged). It may return a
            follow-up callable (or ``None``), which runs on the same thread
            once the job no longer counts in :attr:`in_flight`. The bridge
            posts the end of a response that way: posted from inside the job,
            the event loop could take it and submit the next request while
            the finishing thread still counted as busy (it waits for the GIL
            after the pipe write), and the pool would start a thread for
            every such race, handing sequential requests to a rotation of
            cache-cold threads.
        :return: ``True`` if scheduled; ``False`` if ``max_workers`` jobs run
            and ``max_queue`` already wait, or the pool is closing.
        """
        thread = None
        with self._mutex:
            if self._closing or self._in_flight >= self._capacity:
                return False
            self._in_flight += 1
            # More jobs than threads means none is idle: start one if allowed.
            if self._in_flight > len(self._threads) and len(self._threads) < self.max_workers:
                self._started += 1
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{self._started}", daemon=True
                )
                self._threads.append(thread)
        if thread is not None:
            thread.start()
        self._jobs.put(job)
        return True

    def _work(self) -> None:
        """Run jobs until a ``None`` sentinel arrives (the body of each worker thread)."""
        get = self._jobs.get
        mutex = self._mutex
        while True:
            job = get()
            if job is None:
                return
            after = None
            try:
                after = job()
            except BaseException:  # the thread must survive whatever a job does
                logger.exception("asgishift bridge: a worker job raised")
            del job
            with mutex:
                self._in_flight -= 1
                callbacks = self._idle_callbacks if self._in_flight == 0 else None
                if callbacks:
                    self._idle_callbacks = []
            if after is not None:
                try:
                    after()
                except BaseException:
                    logger.exception("asgishift bridge: a worker job's follow-up raised")
                after = None
            if callbacks:
                self._call(callbacks)

    @staticmethod
    def _call(callbacks: list[Callable[[], object]]) -> None:
        """Run idle callbacks; one that fails (a closed loop) must not kill a worker."""
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.debug("asgishift bridge: an idle callback failed", exc_info=True)

    def when_idle(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once no job runs or waits (now, if that is already so).

        :param callback: called from whichever thread finishes the last job; it
            must be thread-safe (e.g. ``loop.call_soon_threadsafe(...)``).
        """
        with self._mutex:
            if self._in_flight:
                self._idle_callbacks.append(callback)
                return
        self._call([callback])

    def close(self) -> None:
        """Refuse new jobs; running and waiting jobs still complete."""
        with self._mutex:
            self._closing = True

    def reopen(self) -> None:
        """Accept jobs again after :meth:`close` (an ASGI lifespan restart)."""
        with self._mutex:
            self._closing = False

    def stop_threads(self) -> None:
        """Let every idle worker thread exit once the queue ahead of it is done.

        New jobs start fresh threads, so this is safe to call at any time.
        """
        with self._mutex:
            count = len(self._threads)
            self._threads = []
        for _ in range(count):
            self._jobs.put(None)
