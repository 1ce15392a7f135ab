"""Run Flask's ``async def`` hooks on the ASGI server's own event loop.

Flask documents :meth:`flask.Flask.async_to_sync` as the hook that decides how
an ``async def`` view, error handler or request hook is run from Flask's
synchronous pipeline ("Using async and await" in Flask's docs). Stock Flask
starts a new event loop per call (asgiref). :class:`LoopBinding` replaces that
hook on one app instance:

* on a worker thread of a served app (a sync route with async hooks), the
  coroutine runs on the server's loop and the worker waits for it, so objects
  created at startup (an ``httpx.AsyncClient``, a pool) are usable;
* with no served loop (``app.test_client()``, ``flask shell``, a WSGI
  server), stock Flask's hook runs unchanged, except inside an ``async def``
  view, where asgiref refuses to nest loops: there a helper thread runs it;
* on the loop thread itself nothing can wait for the loop. While a context
  is being torn down there (:func:`tearing_down`: async teardown functions and
  signal receivers, whose return values Flask ignores) the coroutine is
  scheduled as a task on the loop. Anywhere else the caller needs the result
  (an async context processor while ``render_template`` runs in an async view,
  Flask's test client driven from the loop's thread), so the coroutine runs to
  completion on a loop of its own in a helper thread, as stock Flask runs it,
  and the server's loop waits meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger("asgishift.flask")

__all__ = ["LoopBinding", "awaited_by_caller", "tearing_down"]

CoroutineFunction = Callable[..., Coroutine[Any, Any, Any]]

_TEARING_DOWN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "asgishift_flask_tearing_down", default=False
)
#: Set inside a coroutine run by :meth:`LoopBinding._in_helper_thread`: the
#: server's loop waits for it, so what it calls must not wait for that loop.
_IN_HELPER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "asgishift_flask_in_helper", default=False
)


class _Deferral:
    """The coroutine function whose coroutines :func:`awaited_by_caller` hands back
    unstarted, and the coroutines made so far."""

    def __init__(self, target: CoroutineFunction) -> None:
        self.target = target
        self.made: list[Coroutine[Any, Any, Any]] = []

    def make(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        coro = self.target(*args, **kwargs)
        self.made.append(coro)
        return coro


_DEFERRAL: contextvars.ContextVar[_Deferral | None] = contextvars.ContextVar(
    "asgishift_flask_deferral", default=None
)


@contextlib.contextmanager
def tearing_down() -> Iterator[None]:
    """Mark a Flask context being popped on the loop: async callbacks Flask calls
    meanwhile (teardowns, signal receivers) are scheduled instead of awaited."""
    token = _TEARING_DOWN.set(True)
    try:
        yield
    finally:
        _TEARING_DOWN.reset(token)


@contextlib.contextmanager
def awaited_by_caller(target: CoroutineFunction) -> Iterator[list[Coroutine[Any, Any, Any]]]:
    """While the block runs on the loop, ``app.ensure_sync(target)`` returns
    ``target`` itself, so calling it makes a coroutine without running it; the
    caller awaits the coroutines (the yielded list holds them, in order).

    For a plain ``def`` decorator around an ``async def`` WebSocket view
    (Flask-Login's ``login_required``): the decorator calls
    ``current_app.ensure_sync(view)(ws)`` synchronously on the loop, which can
    neither wait for the loop nor hand the connection to another one. Only
    ``target`` (the view at the end of the ``__wrapped__`` chain) is deferred;
    other coroutine functions the decorator runs (an async permission check
    whose result it reads) run to completion as anywhere else.
    """
    deferral = _Deferral(target)
    token = _DEFERRAL.set(deferral)
    try:
        yield deferral.made
    finally:
        _DEFERRAL.reset(token)


class LoopBinding:
    """The event loop one Flask app is served on, and the hook that uses it.

    :param stock: the app class's own ``async_to_sync`` bound to the app (the
        behaviour kept when no server loop runs).
    """

    def __init__(self, stock: Callable[[CoroutineFunction], Callable[..., Any]]) -> None:
        self._stock = stock
        self.loop: asyncio.AbstractEventLoop | None = None
        #: :func:`threading.get_ident` of the thread running :attr:`loop`.
        self.loop_thread: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Record ``loop`` as the server's loop (called on startup and per connection).

        Call it on ``loop``'s own thread, which is recorded too.
        """
        self.loop = loop
        self.loop_thread = threading.get_ident()

    def serving_loop(self) -> asyncio.AbstractEventLoop | None:
        """Return the bound loop if it is running, else ``None``."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return None
        return loop

    def async_to_sync(self, func: CoroutineFunction) -> Callable[..., Any]:
        """Return a sync callable running ``func`` (the :meth:`flask.Flask.async_to_sync` hook).

        :param func: an ``async def`` function.
        :return: a function taking ``func``'s arguments and returning its result.
        """
        loop = self.serving_loop()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None:
            # Stock Flask. Inside an async view asgiref's loop runs on this
            # thread and asgiref refuses to nest another: a helper runs it.
            return self._stock(func) if running is None else self._in_helper_thread(func)
        if _IN_HELPER.get():
            return self._in_helper_thread(func)
        if running is loop:
            deferral = _DEFERRAL.get()
            if deferral is not None and func is deferral.target:
                return deferral.make
            if _TEARING_DOWN.get():
                return self._scheduler(loop, func)
            return self._in_helper_thread(func)

        def run_on_loop(*args: Any, **kwargs: Any) -> Any:
            _guard_body(self.loop_thread)
            future = asyncio.run_coroutine_threadsafe(func(*args, **kwargs), loop)
            return future.result()

        return run_on_loop

    def _in_helper_thread(self, func: CoroutineFunction) -> Callable[..., Any]:
        """Return a function running ``func`` with the stock hook in a helper thread.

        The stock hook is made in that thread, which runs no loop, so asgiref
        starts a loop of its own there; Flask's contexts are copied along.
        """

        def run_elsewhere(*args: Any, **kwargs: Any) -> Any:
            context = contextvars.copy_context()
            with ThreadPoolExecutor(1, thread_name_prefix="asgishift-flask-async") as pool:
                future = pool.submit(context.run, self._run_stock, func, args, kwargs)
                return future.result()

        return run_elsewhere

    def _run_stock(
        self, func: CoroutineFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        _IN_HELPER.set(True)  # in the helper's copied context only
        return self._stock(func)(*args, **kwargs)

    def _scheduler(
        self, loop: asyncio.AbstractEventLoop, func: CoroutineFunction
    ) -> Callable[..., None]:
        def schedule(*args: Any, **kwargs: Any) -> None:
            task = loop.create_task(func(*args, **kwargs))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

        return schedule

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "async Flask callback %r scheduled on the server loop failed",
                task.get_coro(),
                exc_info=task.exception(),
            )


def _guard_body(loop_thread: int | None) -> None:
    """Make a streamed request body refuse reads on the loop's thread (:mod:`._body_guard`).

    Imported here, not at module level: this module imports no Flask.
    """
    from asgishift.flask_integration._body_guard import guard_streamed_body

    if loop_thread is not None:
        guard_streamed_body(loop_thread)
