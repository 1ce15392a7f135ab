"""One asyncio event loop per process, in its own daemon thread, for ASGIToWSGI.

A WSGI server calls the app from its own threads; the ASGI app needs an event
loop. :func:`process_loop` returns this process's :class:`LoopThread`, starting
it on first use. It is fork-safe: a gunicorn ``--preload`` master that imported
(or even called) the app hands its workers a copy of the loop object but not the
thread that runs it, so the loop is keyed by process id and a child starts a
fresh one. ``os.register_at_fork`` also drops the parent's loop in the child, so
the check on the hot path is one comparison.

Work crosses from a WSGI thread to the loop through :meth:`LoopThread.call`, which
posts to the bridge's :class:`~asgishift.bridge._inbox.Inbox`: while a wake-up of
the loop is pending, further calls only append to a deque, so a burst of
requests from many server threads costs one wake-up, and on POSIX that wake-up
is a byte on the inbox's pipe, written with the GIL released (uvloop included).
At process exit, first, before the interpreter joins the server's threads
(``threading``'s own exit hooks, which run ahead of ``atexit``), every request
still open is ended: its task is cancelled and the server's thread that waits
for it gets the end of the response. A gunicorn gthread worker retired by
SIGHUP, ``--max-requests`` or SIGQUIT with a stream still open would otherwise
wait in that join, streaming on, until gunicorn killed it. Once their tasks
have ended, still in that hook, the exit callbacks run (lifespan shutdown): it
is the last moment at which ``asyncio.to_thread`` and the loop's default
executor work. Then (``atexit``) the loop stops, the tasks still running are
cancelled and unwind, and its thread is joined.
"""

from __future__ import annotations

import asyncio
import atexit

# Imported before this module registers its exit hook with threading (below), so that
# the hook runs first: threading runs its exit hooks in reverse order, and this
# module's joins the thread pools' threads (gunicorn's gthread worker is one).
import concurrent.futures.thread  # noqa: F401
import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, Literal, Protocol, TypeVar

from asgishift.bridge._asgi_server_stop import ServerStop
from asgishift.bridge._inbox import Inbox
from asgishift.bridge._uwsgi import chain_atexit, runs_without_threads

__all__ = ["LoopKind", "LoopThread", "OpenRequest", "new_loop", "process_lock", "process_loop"]

logger = logging.getLogger("asgishift.bridge")

_T = TypeVar("_T")

#: Which event loop the thread runs.
LoopKind = Literal["auto", "asyncio", "uvloop"]


class OpenRequest(Protocol):
    """A request in :attr:`LoopThread.open_requests`: its task can be ended from the loop."""

    #: The app's task, once started.
    task: asyncio.Task[None] | None

    def cancel(self) -> None:
        """Disconnect the app and cancel its task (called on the loop's thread)."""


#: Seconds :meth:`LoopThread.stop` waits for the thread to end.
_JOIN_TIMEOUT = 5.0
#: Seconds the tasks still running at exit get to unwind once cancelled (within the join).
_LEFTOVER_WAIT = 3.0


class LoopThread:
    """An asyncio event loop running forever in a daemon thread of this process.

    Use :func:`process_loop` rather than constructing one: there is one per process.

    :param kind: ``"asyncio"``, ``"uvloop"`` or ``"auto"`` (uvloop when it is
        installed, as uvicorn does); see :func:`new_loop`.
    :param name: the thread's name (shown by ``py-spy``, ``/proc``, debuggers).
    :raise RuntimeError: when the thread does not start within 10 seconds.
    :raise ImportError: for ``kind="uvloop"`` without uvloop installed.
    """

    def __init__(self, kind: LoopKind = "auto", name: str = "asgishift-asgi-loop") -> None:
        self.pid = os.getpid()
        self.kind = kind
        self.loop = new_loop(kind)
        self._inbox: Inbox | None = None  # made on the loop's thread, before it runs
        #: The requests whose task runs on this loop: each adds itself when its task
        #: starts and removes itself when it ends (both on the loop's thread).
        self.open_requests: set[OpenRequest] = set()
        #: Watches a gunicorn worker's graceful stop (see :meth:`watch_server_stop`).
        self._server_stop = ServerStop(self.loop, self.open_requests)
        self._exit_callbacks: list[Callable[[], None]] = []
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), name=name, daemon=True)
        self.thread.start()
        if not started.wait(10.0):
            raise RuntimeError("the asgishift event-loop thread did not start within 10 s")
        _run_stop_first_at_exit()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._inbox = Inbox(self.loop)
        self.loop.call_soon(started.set)
        try:
            self.loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self._cancel_leftovers()
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def _cancel_leftovers(self) -> None:
        """Cancel the tasks still running once the loop has stopped, and let them unwind.

        As ``asyncio.run`` does: their clean-up (``finally``, ``async with``) runs in
        their own task before ``shutdown_asyncgens`` closes what is left, at most
        :data:`_LEFTOVER_WAIT` seconds.
        """
        self._server_stop.close()
        self._end_open_requests()  # each says why, so the app is not blamed
        tasks = asyncio.all_tasks(self.loop)
        if not tasks:
            return
        logger.warning(
            "asgishift: %d task(s) still ran on the event loop at process exit; cancelling them",
            len(tasks),
        )
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.wait(tasks, timeout=_LEFTOVER_WAIT))

    def _end_open_requests(self) -> None:
        requests = list(self.open_requests)
        if requests:
            logger.warning(
                "asgishift: %d request(s) still open at process exit; cancelling them",
                len(requests),
            )
        for request in requests:
            request.cancel()

    def end_open_requests(self) -> None:
        """Cancel the task of every request still open, from any thread; returns at once.

        Each server thread waiting for such a request then gets the end of it (a
        stream is cut short, a response not yet started is a 500) and can end.
        """
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.call(self._end_open_requests)

    def before_thread_joins(self) -> None:
        """At process exit, before the interpreter joins threads: end requests, run exit callbacks.

        Cancels every request still open and waits for their tasks (at most
        :data:`_LEFTOVER_WAIT` seconds), then runs the exit callbacks (lifespan
        shutdown). This is the last moment at which thread pools take work: right
        after it, ``concurrent.futures`` refuses new work for the rest of the exit
        ("cannot schedule new futures after interpreter shutdown"), so a lifespan
        shutdown run from ``atexit`` could not use ``asyncio.to_thread``,
        ``loop.run_in_executor`` or ``loop.getaddrinfo``, as it can under uvicorn.
        Called from the exiting thread, never from the loop's.
        """
        if self.loop.is_closed() or threading.get_ident() == self.thread.ident:
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            self.run(self._end_open_requests_and_wait(), _LEFTOVER_WAIT + 1.0)
        self._run_exit_callbacks()

    async def _end_open_requests_and_wait(self) -> None:
        tasks = [request.task for request in self.open_requests]
        self._end_open_requests()
        waiting = [task for task in tasks if task is not None and not task.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=_LEFTOVER_WAIT)

    def watch_server_stop(self, reserve: float) -> None:
        """Watch the gunicorn worker of this process for a graceful stop; from any thread.

        Once the worker stops (``SIGTERM``, ``--max-requests``), the requests still
        open ``max(graceful_timeout - reserve, graceful_timeout / 2)`` seconds later
        are cancelled, so the worker exits, and runs lifespan shutdown, before
        gunicorn's master kills it at ``graceful_timeout`` (see
        :mod:`~asgishift.bridge._asgi_server_stop`). Does nothing outside gunicorn.

        :param reserve: seconds of ``graceful_timeout`` kept for the exit.
        """
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.call(self._server_stop.arm, reserve)

    def kill_deadline(self) -> float | None:
        """Return when gunicorn's master kills this stopping worker, or ``None``.

        :return: a ``time.monotonic()`` value, once the worker's stop has been seen
            (see :meth:`watch_server_stop`); ``None`` before, and outside gunicorn.
        """
        return self._server_stop.deadline()

    # --- WSGI thread -> loop ---------------------------------------------------
    def call(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; safe from any thread, never blocks.

        Calls from all threads run in the order they were made. An exception from
        ``fn`` is logged and does not stop the others.

        :raise RuntimeError: when the loop has been closed.
        """
        inbox = self._inbox
        if inbox is None:
            raise RuntimeError("the asgishift event-loop thread has not started")
        inbox.post(self, (fn, args))

    def wake(self, item: tuple[Any, ...]) -> None:
        """Run one :meth:`call` on the loop (the inbox delivers it; see ``Wakeable``).

        :param item: ``(fn, args)`` as :meth:`call` posted it; an exception from
            ``fn`` is logged, not raised, so the inbox's other items still run.
        """
        fn, args = item
        try:
            fn(*args)
        except Exception:
            logger.exception("asgishift: a hand-off to the event loop failed in %r", fn)

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        """Run ``coro`` on the loop and wait for its result from another thread.

        For the slow paths only (lifespan); requests use :meth:`call`. ``coro``
        runs in an empty :mod:`contextvars` context, not the caller's: lifespan
        startup, run by the first request, must not take that request's context
        variables (a request id set by WSGI middleware) into the app's lifespan
        task and every task the app starts from it.

        :param timeout: seconds; ``None`` waits for ever.
        :raise TimeoutError: when ``coro`` does not finish in time (it is cancelled).
        :raise RuntimeError: when called from the loop's own thread.
        """
        if threading.get_ident() == self.thread.ident:
            coro.close()
            raise RuntimeError("LoopThread.run() would deadlock on the loop's own thread")
        future: Future[_T] = contextvars.Context().run(
            asyncio.run_coroutine_threadsafe, coro, self.loop
        )
        try:
            return future.result(timeout)
        except (TimeoutError, FutureTimeoutError):
            # Before Python 3.11 the futures' TimeoutError is not the builtin one.
            future.cancel()
            raise TimeoutError(f"{coro!r} did not finish within {timeout} s") from None

    # --- process exit ------------------------------------------------------------
    def at_exit(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (in the exiting thread) before the loop stops at exit.

        Callbacks run in reverse order of registration, as ``atexit`` does.
        """
        self._exit_callbacks.append(callback)

    def _run_exit_callbacks(self) -> None:
        callbacks, self._exit_callbacks = self._exit_callbacks, []
        for callback in reversed(callbacks):
            try:
                callback()
            except Exception:
                logger.exception("asgishift: an at-exit callback failed: %r", callback)

    def stop(self) -> None:
        """Run the exit callbacks, stop the loop and join its thread (at most 5 s).

        Called by ``atexit`` for this process's loop; safe to call twice.
        """
        self._run_exit_callbacks()
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.get_ident() != self.thread.ident:
            self.thread.join(_JOIN_TIMEOUT)


def new_loop(kind: LoopKind) -> asyncio.AbstractEventLoop:
    """Return a new event loop of ``kind``: ``"asyncio"``, ``"uvloop"`` or ``"auto"``.

    :raise ImportError: for ``"uvloop"`` when uvloop is not installed.
    """
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


_current: LoopThread | None = None
_lock = threading.RLock()


def process_lock() -> threading.RLock:
    """Return this process's setup lock (reentrant), a fresh one after ``fork()``.

    For one-time, per-process setup such as an app's lifespan: a lock held by
    another thread of the parent at fork time would never be released in the child.
    """
    return _lock


def process_loop(kind: LoopKind = "auto") -> LoopThread:
    """Return this process's :class:`LoopThread`, starting it on first use.

    After a ``fork()`` the child gets a new loop and thread of its own (gunicorn
    ``--preload``); the parent's loop object is left alone in the child, since
    its thread does not exist there.

    :param kind: the loop to start if none runs yet; the first caller in a
        process chooses, later callers share its loop whatever they ask for.
    """
    current = _current
    if current is not None and current.pid == os.getpid():
        return current
    return _start(kind)


def _start(kind: LoopKind) -> LoopThread:
    global _current
    with _lock:
        current = _current
        if current is None or current.pid != os.getpid():
            _warn_about_the_process(forked_without_hooks=current is not None)
            current = _current = LoopThread(kind)
            chain_atexit(_exit_now)
    return current


def _exit_now() -> None:
    """End this process's requests and run its exit callbacks and loop stop, now.

    What the interpreter's exit hooks do (:func:`_end_requests_before_thread_joins`,
    then :func:`_stop_at_exit`), for a server that ends a process without them
    (uWSGI's ``--skip-atexit-teardown``); both do nothing when run again.
    """
    _end_requests_before_thread_joins()
    _stop_at_exit()


def _warn_about_the_process(*, forked_without_hooks: bool) -> None:
    """Log what in this process will keep the event loop from working as it should.

    :param forked_without_hooks: the parent's loop is still recorded here, so the
        process was forked without Python's fork handlers (:func:`os.register_at_fork`
        never ran): uWSGI forks that way unless ``--py-call-osafterfork``.
    """
    if runs_without_threads():
        logger.warning(
            "uWSGI runs without Python threads: the bridge's event loop runs only while "
            "a request is served, so tasks left running after a response stall; start "
            "uWSGI with --enable-threads (its default since 2.0.27)"
        )
    if forked_without_hooks:
        logger.warning(
            "this process was forked without Python's fork handlers (uWSGI without "
            "--py-call-osafterfork): threads the parent started, such as a thread pool "
            "its lifespan startup used, do not exist here and can hang this process's "
            "exit; start uWSGI with --py-call-osafterfork or --lazy-apps"
        )


def _after_fork_in_child() -> None:
    global _current, _lock
    _current = None
    # The lock may have been held by another thread of the parent at fork time.
    _lock = threading.RLock()


def _end_requests_before_thread_joins() -> None:
    current = _current
    if current is not None and current.pid == os.getpid():
        current.before_thread_joins()


# threading's exit hooks run before it joins the non-daemon threads, and before
# atexit (a private hook of the standard library's, used by concurrent.futures).
_register_thread_exit = getattr(threading, "_register_atexit", None)
if _register_thread_exit is not None:
    with contextlib.suppress(RuntimeError):  # first imported while the interpreter exits
        _register_thread_exit(_end_requests_before_thread_joins)


def _stop_at_exit() -> None:
    current = _current
    if current is not None and current.pid == os.getpid():
        current.stop()


def _run_stop_first_at_exit() -> None:
    """(Re-)register :func:`_stop_at_exit` so that it runs before the exit hooks there are.

    ``atexit`` runs its hooks in reverse order of registration. ``weakref.finalize``
    registers one of its own (with the first finalizer of the process), which closes
    the inbox's pipe (its finalizer): registered before it, the loop's stop (and the
    lifespan shutdown it runs) came after the pipe was closed, while the loop still
    watched it. Called once the loop thread has made its inbox.
    """
    atexit.unregister(_stop_at_exit)
    atexit.register(_stop_at_exit)


atexit.register(_stop_at_exit)


os.register_at_fork(after_in_child=_after_fork_in_child)
