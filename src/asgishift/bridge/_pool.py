"""A bounded pool of worker threads with a bounded wait queue.

Strategy: :class:`concurrent.futures.ThreadPoolExecutor` allocates a Future
(with its own Condition) per call and has no queue bound. The bridge needs
neither result objects nor cancellation, only "run this callable on some
thread, or tell me right away that there is no room". So jobs are plain
zero-argument callables put on one :class:`queue.SimpleQueue` (implemented in
C) that idle workers block on; one lock guards the counters. Threads start
lazily, one per job that finds no idle worker, up to ``max_workers``.

One idle thread is kept apart: the *hot* thread, the last one to finish while
no job waited. It waits on a lock of its own, and the next job goes straight to
it. Idle threads on the shared queue are woken first in, first out, so without
it requests that come one at a time after a burst would rotate over every
thread the burst started, each with its stack and frames gone from the CPU's
caches: that cost Flask 6-10 µs a request (``benchmarks/after_burst.py``).
A burst still spreads over the shared queue as before, since only one thread
is ever hot.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Final

__all__ = ["WorkerPool"]

logger = logging.getLogger("asgishift.bridge")

#: What the hot thread is handed to exit instead of running a job.
_EXIT: Final = None


class _HotSlot:
    """The hot thread's hand-off: a lock it waits on and the job it is given."""

    __slots__ = ("job", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()  # released once per job handed over
        self.job: Job | None = _EXIT


#: Every live pool, reset in a child process after ``fork`` (see
#: :meth:`WorkerPool._reset_after_fork`).
_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _reset_pools_after_fork() -> None:
    for pool in list(_POOLS):
        pool._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pools_after_fork)


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
        # The hot thread's slot while it waits for a job there, else None.
        self._hot: _HotSlot | None = None
        _POOLS.add(self)

    def _reset_after_fork(self) -> None:
        """Forget the parent's threads, jobs and locks (in a child process after ``fork``).

        Only the thread that forked survives in the child: a pool used before a
        fork (a ``gunicorn --preload`` master that served a request, say) would
        otherwise count threads that do not exist, hand jobs to a hot thread
        that is gone, and never run them. The parent's jobs belong to the
        parent's requests and are dropped; new jobs start new threads.
        """
        self._jobs = queue.SimpleQueue()
        self._mutex = threading.Lock()
        self._in_flight = 0
        self._threads = []
        self._idle_callbacks = []
        self._hot = None

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
            hot = self._hot
            if hot is not None:
                self._hot = None
            else:
                # Put under the lock: a finishing thread decides under it
                # whether a job waits before it becomes the hot thread.
                self._jobs.put(job)
                # More jobs than threads means none is idle: start one if allowed.
                if self._in_flight > len(self._threads) and len(self._threads) < self.max_workers:
                    self._started += 1
                    thread = threading.Thread(
                        target=self._work, name=f"{self._name}-{self._started}", daemon=True
                    )
                    self._threads.append(thread)
        if hot is not None:
            hot.job = job
            hot.lock.release()
        elif thread is not None:
            thread.start()
        return True

    def _work(self) -> None:
        """Run jobs until a ``None`` sentinel arrives (the body of each worker thread).

        A thread that finishes while no job waits becomes the hot thread if
        there is none (see the module's docstring) and waits on its own slot.
        """
        jobs = self._jobs
        get = jobs.get
        mutex = self._mutex
        slot = _HotSlot()
        job = get()
        while True:
            if job is None:
                return
            after = None
            try:
                after = job()
            except BaseException:  # the thread must survive whatever a job does
                logger.exception("asgishift bridge: a worker job raised")
            del job  # an idle thread holds nothing of the request it ran
            with mutex:
                self._in_flight -= 1
                callbacks = self._idle_callbacks if self._in_flight == 0 else None
                if callbacks:
                    self._idle_callbacks = []
                hot = self._hot is None and jobs.empty()
                if hot:
                    self._hot = slot
            if after is not None:
                try:
                    after()
                except BaseException:
                    logger.exception("asgishift bridge: a worker job's follow-up raised")
                after = None
            if callbacks:
                self._call(callbacks)
            if hot:
                slot.lock.acquire()  # submit() or stop_threads() hands a job over
                job = slot.job
                slot.job = _EXIT
            else:
                job = get()

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
            hot = self._hot
            self._hot = None
            if hot is not None:
                count -= 1
            # Under the lock: a thread finishing now sees them and does not
            # become the hot thread.
            for _ in range(count):
                self._jobs.put(None)
        if hot is not None:
            hot.job = _EXIT
            hot.lock.release()
