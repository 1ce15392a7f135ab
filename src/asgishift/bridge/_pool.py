"""A bounded pool of worker threads with a bounded wait queue.

Strategy: :class:`concurrent.futures.ThreadPoolExecutor` allocates a Future
(with its own Condition) per call and has no queue bound. The bridge needs
neither result objects nor cancellation, only "run this callable on some
thread, or tell me right away that there is no room". So jobs are plain
zero-argument callables, and one lock guards the pool's state. Threads start
lazily, one per job that finds no idle worker, up to ``max_workers``.

Idle threads form a stack, each waiting on a lock of its own, and a job goes
to the thread that became idle last. Jobs that find no idle thread wait in a
first in, first out backlog, which finishing threads drain before they go idle.

At most one idle thread is on its way to a job at any time (the *waking*
thread); a job submitted meanwhile waits in the backlog, and the waking thread,
once it runs, wakes the next idle thread if jobs still wait. Threads that are
running take those jobs as they finish, without sleeping and waking. This is
what :class:`queue.SimpleQueue` did for the pool up to Python 3.12 (a getter
that took an item woke the next one); from 3.13 it hands each item to a
sleeping getter, and 50 requests at once then cost ten times the context
switches and 1.5 times the bridge's time per request (``benchmarks/RESULTS.md``).

Two costs are avoided this way. Idle threads woken first in, first out, as
the kernel wakes waiters on one shared queue, make requests that come one at a
time after a burst rotate over every thread the burst started, each with its
stack and frames gone from the CPU's caches (Flask paid 6-10 µs a request,
``benchmarks/after_burst.py``); and waking a thread per job makes a burst of
short jobs pay two context switches each.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable

__all__ = ["WorkerPool"]

logger = logging.getLogger("asgishift.bridge")


class _Slot:
    """An idle thread's hand-off: the lock it waits on and the job it is given."""

    __slots__ = ("exit", "job", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()  # released once per job handed over
        self.job: Job | None = None
        self.exit = False  # set with the release that tells the thread to end


#: Every live pool, reset in a child process after ``fork`` (see
#: :meth:`WorkerPool._reset_after_fork`).
_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _set_off(helper: _Slot | threading.Thread) -> None:
    """Wake the idle thread of ``helper``'s slot, or start ``helper`` (mutex not held)."""
    if isinstance(helper, _Slot):
        helper.lock.release()
    else:
        helper.start()


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
        self._mutex = threading.Lock()
        self._reset_state()
        self._closing = False
        self._started = 0  # threads ever started (numbers their names)
        _POOLS.add(self)

    def _reset_state(self) -> None:
        """Set the state of a pool with no thread and no job (the mutex is not held)."""
        self._backlog: deque[Job] = deque()  # jobs no thread has taken yet, oldest first
        self._idle: list[_Slot] = []  # idle threads' slots; the last went idle last
        self._waking = False  # an idle thread was woken and has not run yet
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._generation = 0  # stop_threads() ends the threads of earlier generations
        self._idle_callbacks: list[Callable[[], object]] = []

    def _reset_after_fork(self) -> None:
        """Forget the parent's threads, jobs and locks (in a child process after ``fork``).

        Only the thread that forked survives in the child: a pool used before a
        fork (a ``gunicorn --preload`` master that served a request, say) would
        otherwise count threads that do not exist, hand jobs to idle threads
        that are gone, and never run them. The parent's jobs belong to the
        parent's requests and are dropped; new jobs start new threads.
        """
        self._mutex = threading.Lock()
        self._reset_state()

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
        slot: _Slot | None = None
        helper: _Slot | threading.Thread | None = None
        with self._mutex:
            if self._closing or self._in_flight >= self._capacity:
                return False
            self._in_flight += 1
            idle = self._idle
            if idle and not self._waking and not self._backlog:
                # The common case, spelled out: the last idle thread takes it.
                slot = idle.pop()
                slot.job = job
                self._waking = True
            else:
                self._backlog.append(job)
                helper = self._helper()
        if slot is not None:
            slot.lock.release()
        elif helper is not None:
            _set_off(helper)
        return True

    def _helper(self) -> _Slot | threading.Thread | None:
        """Find a thread for the waiting jobs, unless one is on its way (mutex held).

        :return: the slot of the idle thread that went idle last, now marked
            waking (the caller releases its lock once it has let go of the
            mutex; the thread takes the oldest waiting job when it runs, if a
            running thread has not taken it first); else a new thread to start,
            if the pool may have one more and has more jobs than threads; else
            ``None``: a thread on its way, or a running one as it finishes,
            takes the job.
        """
        if not self._backlog:
            return None
        if self._idle:
            if self._waking:
                return None  # the waking thread calls this again once it runs
            self._waking = True
            return self._idle.pop()
        if len(self._threads) < self.max_workers and self._in_flight > len(self._threads):
            self._started += 1
            thread = threading.Thread(
                target=self._work,
                args=(self._generation,),
                name=f"{self._name}-{self._started}",
                daemon=True,
            )
            self._threads.append(thread)
            return thread
        return None

    def _next(self, slot: _Slot, generation: int) -> tuple[Job | None, bool]:
        """Give a thread without a job the oldest waiting one (mutex held).

        :return: the job, or ``None`` when none waits: the thread is then idle
            (its ``slot`` is on the stack), or ends (``True``) if
            :meth:`stop_threads` ended its ``generation``.
        """
        backlog = self._backlog
        if backlog:
            return backlog.popleft(), False
        if generation != self._generation:
            return None, True
        self._idle.append(slot)
        return None, False

    def _work(self, generation: int) -> None:
        """Run jobs until the pool ends this thread's ``generation`` (each worker thread's body).

        :param generation: the pool's generation when the thread started.
        """
        mutex = self._mutex
        slot = _Slot()
        with mutex:
            job, retire = self._next(slot, generation)
            helper = self._helper()
        while True:
            if helper is not None:
                _set_off(helper)
                helper = None
            if job is None:
                if retire:
                    return
                slot.lock.acquire()  # submit(), _helper() or stop_threads() hands it over
                if slot.exit:
                    return
                job = slot.job  # None: woken to take a waiting job
                slot.job = None
                # No mutex: whoever adds to the backlog reads this flag after the
                # append, and this thread reads the backlog after the clear, so one
                # of the two sees the other and no waiting job is left without a
                # thread on its way.
                self._waking = False
                if job is None or self._backlog:
                    with mutex:
                        if job is None:
                            job, retire = self._next(slot, generation)
                        helper = self._helper()
                    continue
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
                job, retire = self._next(slot, generation)
                if job is not None:
                    helper = self._helper()
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
        """End every worker thread: idle ones now, busy ones once no job waits for them.

        Jobs already submitted still run (the threads that finish take them
        before they end); new jobs start fresh threads, so this is safe to call
        at any time.
        """
        with self._mutex:
            self._generation += 1
            self._threads = []
            idle = self._idle
            self._idle = []
        for slot in idle:
            slot.exit = True
            slot.lock.release()
