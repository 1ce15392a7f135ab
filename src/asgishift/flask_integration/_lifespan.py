"""Serving hooks and background tasks with Quart's names (ASGI lifespan spec).

``before_serving`` functions run when the server starts (ASGI
``lifespan.startup``), ``after_serving`` functions when it stops
(``lifespan.shutdown``); a ``while_serving`` async generator runs up to its
``yield`` at startup and past it at shutdown. Tasks from
:meth:`ServingHooks.add_background_task` run on the server's loop in an
application context; at shutdown they are awaited for ``shutdown_timeout``
seconds, then cancelled, before the ``after_serving`` functions run. Every
hook runs inside ``app.app_context()``, so ``current_app`` and ``g`` work in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from asgishift.flask_integration._loop import tearing_down

if TYPE_CHECKING:
    from flask import Flask

    from asgishift.flask_integration._loop import LoopBinding

logger = logging.getLogger("asgishift.flask")

__all__ = ["ServingHooks", "ServingPhase"]

F = TypeVar("F", bound=Callable[..., Any])
WhileServing = Callable[[], AsyncGenerator[None, None]]


class ServingPhase(enum.Enum):
    """Where one app's lifespan is: the single state of :class:`ServingHooks`."""

    IDLE = "idle"
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"


async def _call(func: Callable[..., Any], *args: Any) -> Any:
    """Await ``func(*args)`` if it is ``async def``; call it directly otherwise."""
    result = func(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


@contextlib.contextmanager
def _loop_app_context(app: Flask) -> Iterator[None]:
    """``app.app_context()`` on the server's loop: its pop is a teardown
    (:func:`~._loop.tearing_down`), so async teardown functions are scheduled."""
    ctx = app.app_context()
    ctx.push()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        with tearing_down():
            ctx.pop(error)


class ServingHooks:
    """The lifespan hooks and background tasks of one Flask app.

    :param app: the Flask app (hooks run in its application context).
    :param binding: where the server's loop is recorded.
    """

    def __init__(self, app: Flask, binding: LoopBinding) -> None:
        self._app = app
        self._binding = binding
        self.before: list[Callable[[], Any]] = []
        self.after: list[Callable[[], Any]] = []
        self.during: list[WhileServing] = []
        self.phase = ServingPhase.IDLE
        self._running: list[AsyncGenerator[None, None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- registration ------------------------------------------------------
    def before_serving(self, func: F) -> F:
        """Register ``func`` (sync or ``async def``, no arguments) to run at server startup."""
        self.before.append(func)
        return func

    def after_serving(self, func: F) -> F:
        """Register ``func`` (sync or ``async def``, no arguments) to run at server shutdown."""
        self.after.append(func)
        return func

    def while_serving(self, func: F) -> F:
        """Register an async generator function: code before its one ``yield`` runs at
        startup, code after it at shutdown.

        :raise TypeError: when ``func`` is not an async generator function.
        """
        if not inspect.isasyncgenfunction(func):
            raise TypeError(
                f"while_serving needs an async generator function (async def with one yield), "
                f"got {func!r}"
            )
        self.during.append(func)
        return func

    def add_background_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` in the background, in an application context.

        On a served app the task runs on the server's loop (``async def``) or in
        a thread (plain functions), whichever thread calls this; shutdown waits
        for it up to ``shutdown_timeout`` seconds and then cancels it. With no
        server loop (Flask's test client, a WSGI server) it runs to completion
        before this returns, as nothing would wait for it later (in a thread of its
        own when called from an ``async def`` view, whose loop cannot wait).

        :param func: the function; its arguments follow.
        """
        loop = self._binding.serving_loop()
        if loop is None:
            self._run_inline(func, args, kwargs)
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._start_task(loop, func, args, kwargs)
        else:
            context = contextvars.copy_context()
            loop.call_soon_threadsafe(self._start_task, loop, func, args, kwargs, context=context)

    def _run_inline(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Run the task to completion now, in an application context (no server loop).

        Stock Flask runs an ``async def`` view in an event loop of asgiref's on
        the request's thread, where nothing can wait for another coroutine; the
        task then runs in a thread of its own, which this one waits for.

        :raise Exception: whatever the task raises.
        """

        def run() -> None:
            with self._app.app_context():
                if inspect.iscoroutinefunction(func):
                    self._app.ensure_sync(func)(*args, **kwargs)
                else:
                    func(*args, **kwargs)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            run()
            return
        context = contextvars.copy_context()
        with ThreadPoolExecutor(1, thread_name_prefix="asgishift-flask-inline") as pool:
            pool.submit(context.run, run).result()

    def _start_task(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        task = loop.create_task(self._background(func, args, kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _background(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            with _loop_app_context(self._app):
                if inspect.iscoroutinefunction(func):
                    await func(*args, **kwargs)
                else:
                    await asyncio.to_thread(func, *args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background task %r of Flask app %r failed", func, self._app.name)

    @property
    def background_tasks(self) -> int:
        """Return how many background tasks are still running."""
        return len(self._tasks)

    # -- the lifespan ----------------------------------------------------
    async def startup(self) -> None:
        """Run ``before_serving`` functions, then ``while_serving`` generators to their yield.

        :raise Exception: whatever a hook raises (the server's startup then fails).
        """
        self._binding.bind(asyncio.get_running_loop())
        self.phase = ServingPhase.STARTING
        with _loop_app_context(self._app):
            for func in self.before:
                await _call(func)
            for gen_func in self.during:
                gen = gen_func()
                await gen.__anext__()
                self._running.append(gen)
        self.phase = ServingPhase.SERVING

    async def shutdown(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds for background tasks and cancel the rest,
        then run ``after_serving`` functions and finish ``while_serving`` generators
        (Quart's order: what the hooks close is still open for the tasks).

        :param timeout: seconds, ``None`` to wait for the tasks without limit.

        Every hook runs even if an earlier one fails; failures are logged.
        """
        self.phase = ServingPhase.STOPPING
        await self._wait_tasks(timeout)
        with _loop_app_context(self._app):
            for func in self.after:
                await self._logged(_call(func), f"after_serving function {func!r}")
            while self._running:
                gen = self._running.pop()
                await self._logged(self._finish(gen), f"while_serving generator {gen!r}")
        self.phase = ServingPhase.IDLE

    @staticmethod
    async def _finish(gen: AsyncGenerator[None, None]) -> None:
        try:
            await gen.__anext__()
        except StopAsyncIteration:
            return
        await gen.aclose()
        raise RuntimeError(f"while_serving generator {gen!r} yielded more than once")

    @staticmethod
    async def _logged(awaitable: Awaitable[Any], what: str) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("%s failed during shutdown", what)

    async def _wait_tasks(self, timeout: float | None) -> None:
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, still = await asyncio.wait(pending, timeout=timeout)
        if still:
            logger.warning(
                "cancelling %d background task(s) still running after %s s", len(still), timeout
            )
            for task in still:
                task.cancel()
            await asyncio.wait(still)
