"""The bounded handler's threads: one shared job queue, and leases for streaming responses.

:class:`~asgishift.django_integration._executors.ExecutorPool` lends each
request its own one-thread executor. Every hop then goes to a thread that is
asleep on its own queue, and the loop cannot hand a finished thread the next
request's work: under load that costs about one more context switch per
request (2.1 against 0.9 for ``WSGIToASGI``, measured with
``benchmarks/django_inprocess_bench.py``). :class:`HopThreads` keeps
``max_threads`` long-lived threads in the bridge's
:class:`~asgishift.bridge._pool.WorkerPool` with an unbounded queue: a thread
that finishes a request takes the next queued one without sleeping, and idle
threads are woken one at a time. Threads start lazily, one per job that finds
no idle thread, and live until :meth:`HopThreads.shutdown`, so each keeps its
database connection (``CONN_MAX_AGE``).

A request that needs its thread again after the hop (a streaming response,
iterated and closed from the loop with ``sync_to_async(thread_sensitive=True)``)
holds it with a :class:`ThreadLease`: the job's thread then serves only that
lease until the loop releases it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from asgishift.bridge._pool import Job, WorkerPool

__all__ = ["HopThreads", "ThreadLease", "take_lease"]

logger = logging.getLogger("asgishift.django")

_R = TypeVar("_R")

_LeaseCall = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class HopThreads:
    """At most ``max_threads`` threads running jobs from one shared FIFO queue.

    The threads are a :class:`~asgishift.bridge._pool.WorkerPool` with an
    unbounded wait queue (the handler bounds concurrency by its threads, not
    by refusing requests), plus :meth:`run_on_every_thread` for per-thread
    clean-up. A job may return a follow-up, which its thread runs once it
    counts as free again (see :meth:`WorkerPool.submit`): a hop returns its
    wake-up of the event loop that way, so the loop never sees the pool one
    job busier than it is and starts no needless thread.

    :param max_threads: the most threads ever started (≥ 1), so also the most
        database connections per alias.
    :param name: thread name prefix (tracebacks, ``py-spy`` dumps).
    :raise ValueError: when ``max_threads`` is below 1.

    Jobs beyond ``max_threads`` wait in the queue, first come first served.
    Thread-safe: jobs may come from several event loops.
    """

    def __init__(self, max_threads: int, name: str = "asgishift-django") -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.max_threads = max_threads
        self._pool = WorkerPool(max_threads, sys.maxsize, name)

    @property
    def threads_started(self) -> int:
        """How many threads are alive (started and not shut down)."""
        return self._pool.threads

    def put(self, job: Job) -> None:
        """Queue ``job`` (a callable taking no arguments) for the next free thread.

        ``job`` must handle its own exceptions; any that escape are logged. It
        may return a follow-up callable (or ``None``), run on the same thread
        once the job no longer counts as running.

        :raise RuntimeError: never in practice: the wait queue is unbounded
            and the pool is never closed.
        """
        if not self._pool.submit(job):
            raise RuntimeError("asgishift django handler: the thread pool refused a job")

    def run_on_every_thread(self, func: Callable[[], object], timeout: float = 10.0) -> None:
        """Run ``func`` once on each started thread and wait for all (at most
        ``timeout`` seconds); used to close each thread's database connections.

        Each thread takes one call and then waits at a barrier until every
        thread has one, so no thread runs two. A thread busy for longer than
        ``timeout`` (a long streaming response) is skipped.
        """
        count = self._pool.threads
        if count == 0:
            return
        barrier = threading.Barrier(count)
        done = threading.Semaphore(0)

        def once() -> None:
            try:
                func()
            except Exception:
                logger.exception("asgishift django handler: %r failed on a thread", func)
            finally:
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout)
                done.release()

        for _ in range(count):
            self.put(once)
        for _ in range(count):
            if not done.acquire(timeout=timeout):
                barrier.abort()
                return

    def shutdown(self) -> None:
        """Stop every thread once the jobs queued ahead of it are done (does not wait).

        Later :meth:`put` calls start fresh threads.
        """
        self._pool.stop_threads()


_held = threading.local()


class ThreadLease(Executor):
    """One pool thread, held by one request until :meth:`release`.

    A job calls :meth:`hold` on its thread; once the job has handed its
    result to the loop, the thread (see :func:`take_lease`) runs only what is
    :meth:`submit`-ted to this lease, in order, until :meth:`release`. Give
    it to ``ThreadSensitiveContext(executor=...)`` so the request's
    ``sync_to_async(thread_sensitive=True)`` calls land on the thread that ran
    its view (SQLite cursors and connections are bound to their thread).
    """

    __slots__ = ("_jobs", "_released")

    def __init__(self) -> None:
        # Made by hold(): most requests never hold a thread, and pay nothing for it.
        self._jobs: queue.SimpleQueue[_LeaseCall | None] | None = None
        self._released = False

    def hold(self) -> None:
        """Keep the calling pool thread for this lease after its current job (worker side).

        Call it before the job's result reaches the loop, which then may
        :meth:`submit` and must :meth:`release`.
        """
        self._jobs = queue.SimpleQueue()
        _held.lease = self

    def submit(self, fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> Future[_R]:
        """Run ``fn(*args, **kwargs)`` on the held thread (``Executor.submit``).

        :raise RuntimeError: after :meth:`release`, or before :meth:`hold`.
        """
        if self._released:
            raise RuntimeError("cannot submit to a released ThreadLease")
        if self._jobs is None:
            raise RuntimeError("cannot submit to a ThreadLease no thread holds")
        future: Future[_R] = Future()
        call = fn if not kwargs else (lambda *a: fn(*a, **kwargs))
        self._jobs.put((future, call, args))
        return future

    def release(self) -> None:
        """Give the thread back to the pool once the calls submitted so far are done.

        Idempotent; safe before the thread started serving the lease.
        """
        if not self._released:
            self._released = True
            if self._jobs is not None:
                self._jobs.put(None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``Executor.shutdown``: release the thread (``wait`` and ``cancel_futures`` ignored)."""
        self.release()

    def serve(self) -> None:
        """Run submitted calls until :meth:`release` (on the held thread, after :meth:`hold`)."""
        if self._jobs is None:
            return
        get = self._jobs.get
        while True:
            item = get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as error:  # handed to the caller's future
                future.set_exception(error)
            else:
                future.set_result(result)
            del item, future, fn, args


def take_lease() -> ThreadLease | None:
    """Return and forget the lease the current job asked to hold, if any (worker side)."""
    lease: ThreadLease | None = _held.__dict__.pop("lease", None)
    return lease
