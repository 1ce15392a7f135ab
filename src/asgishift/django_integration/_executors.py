"""Long-lived one-thread executors lent per task, and the lean loop → thread hop.

Django's stock ASGI handler enters ``ThreadSensitiveContext()`` per request,
which makes a new one-thread executor (a new thread, a new database
connection) for every request. asgiref ≥ 3.13 lets the context take an
executor instead (``ThreadSensitiveContext(executor=...)``): the ORM wrappers
(:mod:`asgishift.django_integration.db`) borrow one of
:class:`ExecutorPool`'s executors, so every
``sync_to_async(thread_sensitive=True)`` call made under it runs on that
executor's one thread, and the thread (with its database connection) lives on.
Idle executors are handed out last-in first-out, so a lightly loaded server
keeps reusing the same few threads and connections.

:class:`ThreadHop` runs one function on such an executor or, for the bounded
handler, on the next free thread of a
:class:`~asgishift.django_integration._threads.HopThreads` (one shared queue:
a thread that finishes a request takes the next without a context switch).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor, wait
from time import monotonic
from typing import Any, Final, TypeVar

from asgiref.sync import SyncToAsync

from asgishift.bridge._inbox import Inbox
from asgishift.bridge._waiter import InlineFuture
from asgishift.django_integration._threads import HopThreads, take_lease

logger = logging.getLogger("asgishift.django")

try:  # asgiref's own context hand-over (re-homes ``Local`` storage on asgiref >= 3.13)
    from asgiref.sync import _restore_context as _adopt_context
except ImportError:  # pragma: no cover - every supported asgiref has it
    _adopt_context = None  # type: ignore[assignment]

_R = TypeVar("_R")

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


class HopPhase(enum.Enum):
    """Where a hop stands, as the loop sees it."""

    WAITING = "waiting"  # queued or running; its outcome has not reached the loop
    DELIVERED = "delivered"  # the loop has its outcome


# Read on every hop: module constants, since reading ``HopPhase.WAITING`` through
# the class costs about 100 ns on Python 3.10 and 3.11 (the enum metaclass's hook).
_WAITING: Final = HopPhase.WAITING
_DELIVERED: Final = HopPhase.DELIVERED


class _Hop:
    """One hop: the job a thread runs and the :class:`Inbox` item the loop gets back.

    ``claim`` holds one token; whoever pops it first decides: the thread
    (it runs ``func``) or a cancelled caller (``func`` never runs).
    ``list.pop`` is atomic, so no lock is needed.
    """

    __slots__ = (
        "args",
        "claim",
        "context",
        "finished",
        "func",
        "future",
        "inbox",
        "loop",
        "outcome",
        "phase",
        "started",
        "task_context",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        inbox: Inbox,
        func: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.loop = loop
        self.inbox = inbox
        self.func = func
        self.args = args
        # Resumes the caller inside the inbox's drain, not one loop iteration later.
        self.future: asyncio.Future[Any] = InlineFuture(loop)
        self.context = contextvars.copy_context()
        task = asyncio.current_task(loop)
        self.task_context: list[asyncio.Task[Any]] = [task] if task is not None else []
        self.claim = [True]
        self.phase = _WAITING
        self.finished: asyncio.Future[None] | None = None  # set by a cancelled caller
        self.outcome: tuple[Any, BaseException | None] = (None, None)
        self.started = 0.0  # when run() began (time.monotonic(), seconds)

    def run(self) -> Callable[[], None] | None:
        """Run ``func`` on this thread; return the step that posts the outcome (worker side).

        :class:`~asgishift.django_integration._threads.HopThreads` runs the
        returned :meth:`post` once this thread counts as free again, so the
        loop, woken by it, never sees the pool one job busier than it is and
        starts no needless thread. A job whose ``claim`` a cancelled caller
        took is skipped. If ``func`` asked to hold the thread
        (:meth:`ThreadLease.hold`), the outcome is posted here and the thread
        serves that lease, still counted busy, until the loop releases it.
        """
        try:
            self.claim.pop()
        except IndexError:
            return None  # the caller was cancelled while this waited in the queue
        local = SyncToAsync.threadlocal
        local.main_event_loop = self.loop
        local.main_event_loop_pid = os.getpid()
        local.task_context = self.task_context
        self.started = monotonic()
        try:
            self.outcome = (self.context.run(_adopted, self.context, self.func, self.args), None)
        except BaseException as error:  # handed to the caller, re-raised there
            self.outcome = (None, error)
        lease = take_lease()
        if lease is None:
            return self.post
        self.post()
        lease.serve()
        return None

    def __call__(self) -> None:
        """Run the hop and post its outcome (the job given to an ``Executor``)."""
        post = self.run()
        if post is not None:
            post()

    def post(self) -> None:
        """Hand the outcome to the loop (worker side).

        Batched with other hops' outcomes, or spaced out when the hop held its
        thread long (a view blocked on I/O): :meth:`Inbox.post_finished`.
        """
        try:
            self.inbox.post_finished(self, self.outcome, self.started)
        except RuntimeError:
            logger.debug("event loop closed before a thread hop could report back")

    def wake(self, item: tuple[Any, ...]) -> None:
        """Settle the caller's future with the outcome (the inbox calls this on the loop)."""
        self.phase = _DELIVERED
        finished = self.finished
        if finished is not None and not finished.done():
            finished.set_result(None)
        future = self.future
        if future.done():  # the caller was cancelled
            return
        result, error = item
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class ThreadHop:
    """One loop → thread hop: a lean ``sync_to_async``.

    ``await hop(threads, func, *args)`` runs ``func(*args)`` on a thread of
    ``threads`` (a :class:`~asgishift.django_integration._threads.HopThreads`:
    the next free one; an :class:`~concurrent.futures.Executor`: its
    ``submit``) in a copy of the caller's context and returns its result (or
    raises its exception). On that thread it sets the thread state asgiref's
    ``SyncToAsync`` sets (asgiref docs, "sync_to_async"), so ``async_to_sync``
    called by ``func`` runs its coroutine on the caller's event loop and
    ``sync_to_async(thread_sensitive=True)`` inside that coroutine comes back
    to this thread. Context variables are handed over both ways as asgiref
    does.

    It skips asgiref's per-call executor lookup, ``asyncio.shield`` and
    future chaining, and wakes the loop through the bridge's
    :class:`~asgishift.bridge._inbox.Inbox` (one wake-up for every hop that
    finishes before the loop runs again). Cancelling the caller before a
    thread took the job drops it (``func`` never runs); after, it calls
    ``on_cancel`` (when given: it may ask ``func`` to end sooner, e.g. by
    cancelling the tasks ``func`` waits for), waits for ``func`` to return, then
    re-raises ``CancelledError`` (``func`` itself cannot be interrupted).
    """

    __slots__ = ("_inbox",)

    def __init__(self) -> None:
        self._inbox: Inbox | None = None

    async def __call__(
        self,
        threads: HopThreads | Executor,
        func: Callable[..., _R],
        *args: Any,
        copy_back: bool = True,
        on_cancel: Callable[[], object] | None = None,
    ) -> _R:
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = Inbox(loop)  # the loop's worker -> loop channel
        hop = _Hop(loop, inbox, func, args)
        if isinstance(threads, HopThreads):
            threads.put(hop.run)
        else:
            threads.submit(hop)
        try:
            result: _R = await hop.future
            return result
        except asyncio.CancelledError:
            try:
                hop.claim.pop()  # not started: it never will be
            except IndexError:
                if hop.phase is _WAITING:  # func cannot be stopped: wait for it
                    hop.finished = loop.create_future()
                    if on_cancel is not None:
                        on_cancel()
                    await hop.finished
            raise
        finally:
            if copy_back:
                adopt_context(hop.context)


def _adopted(context: contextvars.Context, func: Callable[..., _R], args: tuple[Any, ...]) -> _R:
    """Inside ``context`` on the worker thread: take over its values, then call ``func``."""
    adopt_context(context)
    return func(*args)


def adopt_context(context: contextvars.Context) -> None:
    """Set in the current context every variable whose value differs in ``context``
    (asgiref's hand-over, which also moves ``asgiref.local.Local`` data to this thread)."""
    if _adopt_context is not None:
        _adopt_context(context)
        return
    for var, value in context.items():
        try:
            if var.get() is value:
                continue
        except LookupError:
            pass
        var.set(value)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["DEFAULT_MAX_THREADS", "ExecutorPool", "HopPhase", "ThreadHop", "adopt_context"]
