"""A bounded pool of worker threads with a bounded wait queue.

Strategy: :class:`concurrent.futures.ThreadPoolExecutor` allocates a Future
(with its own Condition) per call and has no queue bound. The bridge needs
neither result objects nor cancellation, only "run this callable on some
thread, or tell me right away that there is no room". So jobs are plain
zero-argument callables, and one lock guards the counters. Threads start
lazily, one per job that finds no idle worker, up to ``max_workers``.

Idle workers form a stack: a job goes to the thread that became idle last,
so sequential requests stay on one thread whose stack, frames and
thread-locals (a Django database connection) are warm. Each idle thread blocks
on its own :class:`queue.SimpleQueue` (implemented in C), so the pool, not the
kernel, chooses which one wakes. With one queue shared by every idle thread the
kernel woke them first in, first out: after a burst of 50 requests at once,
each later sequential request ran on the next of 41 threads, with 3.5
voluntary context switches per request instead of 1.0
(``benchmarks/inprocess_bench.py`` times sequential requests after concurrent
ones). Jobs wait in a first in, first out backlog; threads that finish a job
take the next from it before they go idle, and idle threads are woken one at
a time (see :meth:`WorkerPool._helper`).
"""

from __future__ import annotations

import collections
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
#: An idle worker's own queue: ``True`` wakes it to take a job from the
#: backlog, ``None`` lets it exit.
_Slot = queue.SimpleQueue["bool | None"]
#: What a worker does after a job (module constants, read per job).
_RUN, _WAIT, _EXIT = "run", "wait", "exit"


class WorkerPool:
    """Run jobs on at most ``max_workers`` threads, with at most ``max_queue`` waiting.

    Jobs enter a first in, first out backlog. A thread that finishes a job
    takes the next from it; otherwise the thread that became idle last is
    woken for it (its caches are the warmest), or, with none idle, a new one
    starts, up to ``max_workers``.

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
        self._mutex = threading.Lock()
        self._in_flight = 0
        #: the threads of the current generation (see :meth:`stop_threads`)
        self._threads: list[threading.Thread] = []
        self._generation = 0
        self._started = 0
        self._closing = False
        #: idle threads' slots, the most recently idle last
        self._idle: list[_Slot] = []
        #: jobs not yet taken by a thread, oldest first
        self._backlog: collections.deque[Job] = collections.deque()
        #: 1 while a thread woken (or started) for the backlog has not yet looked at it
        self._waking = 0
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
        """Return whether some job waits for a thread (every thread busy, none may start)."""
        free = self._waking + len(self._idle) + self.max_workers - len(self._threads)
        return len(self._backlog) > free

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
        :raise RuntimeError: when a new thread is needed and the system
            refuses to start one (the job is not scheduled then).
        """
        with self._mutex:
            if self._closing or self._in_flight >= self._capacity:
                return False
            self._in_flight += 1
            self._backlog.append(job)
            helper = self._helper()
        if helper is not None and not self._wake(helper):
            with self._mutex:
                if job in self._backlog:
                    self._backlog.remove(job)
                    self._in_flight -= 1
                    raise RuntimeError("asgishift bridge: cannot start a worker thread")
        return True

    def _helper(self) -> _Slot | threading.Thread | None:
        """Pick the thread to wake for the backlog, unless one is on its way (mutex held).

        One at a time: a woken thread that takes a job and leaves more behind
        wakes the next. Threads that are running take the rest as they
        finish, so a burst of jobs wakes only as many threads as it keeps busy,
        as the C :class:`queue.SimpleQueue` wakes its waiters one by one.

        :return: an idle thread's slot, a new thread (not started yet), or ``None``.
        """
        if self._waking or not self._backlog:
            return None
        if self._idle:
            self._waking = 1
            return self._idle.pop()
        if len(self._threads) < self.max_workers:
            self._waking = 1
            self._started += 1
            thread = threading.Thread(
                target=self._work,
                args=(queue.SimpleQueue(), self._generation),
                name=f"{self._name}-{self._started}",
                daemon=True,
            )
            self._threads.append(thread)
            return thread
        return None

    def _wake(self, helper: _Slot | threading.Thread) -> bool:
        """Wake an idle thread or start a new one (mutex not held); ``False`` if it cannot start."""
        if not isinstance(helper, threading.Thread):
            helper.put(True)
            return True
        try:
            helper.start()
        except RuntimeError:
            logger.exception("asgishift bridge: cannot start a worker thread")
            with self._mutex:
                self._waking = 0
                if helper in self._threads:
                    self._threads.remove(helper)
            return False
        return True

    def _work(self, slot: _Slot, generation: int) -> None:
        """Take jobs from the backlog until told to exit (the body of each worker thread).

        :param slot: this thread's own queue, on which it waits while idle:
            ``True`` wakes it to look at the backlog, ``None`` lets it exit.
        :param generation: the :meth:`stop_threads` generation it belongs to;
            once that has ended, the thread exits instead of going idle.
        """
        mutex = self._mutex
        backlog = self._backlog
        finished = False  # a job has just run (else: just woken or started)
        after: Callable[[], object] | None = None
        callbacks: list[Callable[[], object]] | None = None
        while True:
            job: Job | None = None
            helper = None
            with mutex:
                if finished:
                    self._in_flight -= 1
                    if self._in_flight == 0 and self._idle_callbacks:
                        callbacks, self._idle_callbacks = self._idle_callbacks, []
                else:
                    self._waking = 0
                if backlog:
                    job = backlog.popleft()
                    step = _RUN
                    if backlog:
                        helper = self._helper()
                elif generation == self._generation:
                    self._idle.append(slot)
                    step = _WAIT
                else:
                    step = _EXIT
            if helper is not None:
                self._wake(helper)
            if after is not None:
                try:
                    after()
                except BaseException:
                    logger.exception("asgishift bridge: a worker job's follow-up raised")
                after = None
            if callbacks:
                self._call(callbacks)
                callbacks = None
            if step is _RUN:
                assert job is not None
                try:
                    after = job()
                except BaseException:  # the thread must survive whatever a job does
                    logger.exception("asgishift bridge: a worker job raised")
                job = None
                finished = True
            elif step is _WAIT:
                if slot.get() is None:
                    return
                finished = False
            else:
                return

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
        """Let every worker thread exit: idle ones now, busy ones once the backlog is empty.

        New jobs start fresh threads, so this is safe to call at any time.
        """
        with self._mutex:
            self._threads = []
            self._generation += 1
            idle, self._idle = self._idle, []
        for slot in idle:
            slot.put(None)
