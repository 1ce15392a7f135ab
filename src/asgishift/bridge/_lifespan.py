"""Run startup and shutdown work in order for the ASGI lifespan protocol.

WSGI has no startup or shutdown hooks; an ASGI server sends one ``lifespan``
scope per process (ASGI lifespan spec) with ``lifespan.startup`` and, later,
``lifespan.shutdown``. This module turns that into ordered *stages*, each
with an async ``start`` and ``stop``:

* :class:`HookStage`: the ``on_startup`` callables, in order, at startup, and
  the ``on_shutdown`` callables, in order, at shutdown (sync or async,
  Starlette's shape);
* :class:`ContextStage`: an async context manager factory (Starlette's
  ``lifespan=``), entered at startup and exited at shutdown; a mapping it
  yields is merged into ``scope["state"]``;
* :class:`ChildStage`: another ASGI app's own lifespan, driven through its
  ``receive``/``send`` (what :class:`~asgishift.bridge.HybridRouter` fans out
  to);
* :class:`CallbackStage`: two coroutines functions, e.g. a bridge reopening
  and draining its worker pool.

:class:`Lifespan` starts the stages in order and stops the started ones in
reverse order, so the first stage is the outermost. A stage that fails at
startup stops those already started and fails startup with its message;
:func:`serve_lifespan` answers ``lifespan.startup.failed`` with it, which makes
uvicorn, hypercorn and granian exit instead of serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from asgishift._types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CallbackStage",
    "ChildStage",
    "ContextStage",
    "Hook",
    "HookStage",
    "Lifespan",
    "LifespanFactory",
    "LifespanFailed",
    "Stage",
    "hook_stages",
    "serve_lifespan",
]

logger = logging.getLogger("asgishift.bridge")

#: A startup or shutdown hook: a callable taking no arguments, sync or async.
Hook = Callable[[], Any]
#: Starlette's ``lifespan=``: called with the app (or nothing), returns an async
#: context manager; what it yields, when a mapping, is merged into ``scope["state"]``.
LifespanFactory = Callable[..., AbstractAsyncContextManager[Any]]


class LifespanFailed(Exception):
    """A stage failed at startup or shutdown; ``str(error)`` is the message sent to the server."""


class Stage(Protocol):
    """One step of startup and, in reverse order, of shutdown."""

    #: Names the stage in error messages and logs, e.g. ``"mount /api"``.
    name: str

    async def start(self) -> None:
        """Do the startup work; raise :class:`LifespanFailed` (or anything) to fail startup."""

    async def stop(self) -> None:
        """Undo :meth:`start`; called only when :meth:`start` succeeded."""


def _name(hook: object) -> str:
    module = getattr(hook, "__module__", None)
    qualname = getattr(hook, "__qualname__", None) or repr(hook)
    return f"{module}:{qualname}" if module else str(qualname)


async def _call(hook: Hook) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


class HookStage:
    """Call plain hooks: ``on_startup`` in order at start, ``on_shutdown`` in order at stop.

    :param on_startup: callables taking no arguments; sync ones run on the
        event loop thread (as Starlette runs them), async ones are awaited.
    :param on_shutdown: the same, for shutdown.
    """

    name = "hooks"

    def __init__(self, on_startup: Iterable[Hook] = (), on_shutdown: Iterable[Hook] = ()) -> None:
        self.on_startup = tuple(on_startup)
        self.on_shutdown = tuple(on_shutdown)

    async def start(self) -> None:
        """Run every startup hook in order; the first that raises fails startup.

        :raise LifespanFailed: naming the hook and its exception (traceback logged).
        """
        for hook in self.on_startup:
            try:
                await _call(hook)
            except Exception as exc:
                logger.exception("startup hook %s failed", _name(hook))
                raise LifespanFailed(
                    f"startup hook {_name(hook)} failed: {type(exc).__name__}: {exc}"
                ) from exc

    async def stop(self) -> None:
        """Run every shutdown hook in order, even after one raises.

        :raise LifespanFailed: naming every hook that raised (tracebacks logged).
        """
        failures = []
        for hook in self.on_shutdown:
            try:
                await _call(hook)
            except Exception as exc:
                logger.exception("shutdown hook %s failed", _name(hook))
                failures.append(f"shutdown hook {_name(hook)} failed: {type(exc).__name__}: {exc}")
        if failures:
            raise LifespanFailed("; ".join(failures))


class ContextStage:
    """Enter an async context manager at start and exit it at stop (Starlette's ``lifespan=``).

    :param factory: called with ``app`` when it accepts one argument, else with
        none; returns an async context manager.
    :param app: passed to ``factory`` (Starlette passes the application).
    :param state: the lifespan scope's ``state`` dict, or ``None``; a mapping
        the context manager yields is merged into it, so requests see it in
        ``scope["state"]`` (ASGI lifespan spec, "Lifespan State").
    """

    name = "lifespan context"

    def __init__(self, factory: LifespanFactory, app: object, state: dict[str, Any] | None) -> None:
        self.factory = factory
        self.app = app
        self.state = state
        self._context: AbstractAsyncContextManager[Any] | None = None

    async def start(self) -> None:
        """Enter the context manager.

        :raise LifespanFailed: when entering it raises (traceback logged).
        """
        try:
            takes_app = len(inspect.signature(self.factory).parameters) >= 1
        except (TypeError, ValueError):
            takes_app = True
        context = self.factory(self.app) if takes_app else self.factory()
        try:
            value = await context.__aenter__()
        except Exception as exc:
            logger.exception("lifespan context %s failed to start", _name(self.factory))
            raise LifespanFailed(
                f"lifespan {_name(self.factory)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        self._context = context
        if isinstance(value, Mapping):
            if self.state is None:
                raise LifespanFailed(
                    f"lifespan {_name(self.factory)} yielded state, but the server does not "
                    "support lifespan state (no 'state' in the lifespan scope)"
                )
            self.state.update(value)

    async def stop(self) -> None:
        """Exit the context manager.

        :raise LifespanFailed: when exiting it raises (traceback logged).
        """
        context, self._context = self._context, None
        if context is None:
            return
        try:
            await context.__aexit__(None, None, None)
        except Exception as exc:
            logger.exception("lifespan context %s failed to stop", _name(self.factory))
            raise LifespanFailed(
                f"lifespan {_name(self.factory)} failed at shutdown: {type(exc).__name__}: {exc}"
            ) from exc


class CallbackStage:
    """Await ``start()`` at startup and ``stop()`` at shutdown.

    :param name: for messages, e.g. ``"WSGI worker pool"``.
    :param start: a coroutine function taking no arguments.
    :param stop: the same, for shutdown.
    """

    def __init__(
        self,
        name: str,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.name = name
        self._start = start
        self._stop = stop

    async def start(self) -> None:
        """Await the start callback."""
        await self._start()

    async def stop(self) -> None:
        """Await the stop callback."""
        await self._stop()


class ChildState(enum.Enum):
    """Where a child app's lifespan is."""

    IDLE = "idle"
    RUNNING = "running"
    UNSUPPORTED = "unsupported"
    DONE = "done"


class ChildStage:
    """Drive another ASGI app's lifespan: one task calling ``app(scope, receive, send)``.

    An app that raises or returns before answering ``lifespan.startup`` is
    taken not to support lifespan (as uvicorn's ``--lifespan auto`` does): it
    is logged at debug level and skipped, not a failure.

    :param name: for messages, e.g. ``"mount /api"``.
    :param app: the ASGI 3 app.
    :param scope: the lifespan scope to give it (shared ``state`` included).
    """

    def __init__(self, name: str, app: ASGIApp, scope: Scope) -> None:
        self.name = name
        self.app = app
        self.scope = scope
        self.state = ChildState.IDLE
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._replies: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _send(self, message: Message) -> None:
        await self._replies.put(message)

    async def _reply(self) -> Message | None:
        """Return the app's next message, or ``None`` when its task ended first."""
        assert self._task is not None
        getter = asyncio.ensure_future(self._replies.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        return None

    async def start(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        :raise LifespanFailed: when the app answers ``lifespan.startup.failed``
            (with its message) or an unexpected message.
        """
        self._task = asyncio.ensure_future(self.app(self.scope, self._inbox.get, self._send))
        await self._inbox.put({"type": "lifespan.startup"})
        try:
            reply = await self._reply()
        except asyncio.CancelledError:
            # Whoever waited gave up on the startup (a server stopped before it
            # listened): the app's startup must not run on with nobody to answer.
            self.state = ChildState.DONE
            self._task.cancel()
            raise
        if reply is None:
            self.state = ChildState.UNSUPPORTED
            exc = None if self._task.cancelled() else self._task.exception()
            logger.debug("%s does not support lifespan (%r); skipping it", self.name, exc)
            return
        if reply["type"] == "lifespan.startup.complete":
            self.state = ChildState.RUNNING
            return
        self.state = ChildState.DONE
        await self._finish()
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanFailed(f"{self.name} failed to start: {reply.get('message', '')}")
        raise LifespanFailed(f"{self.name} answered lifespan.startup with {reply['type']!r}")

    async def stop(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the answer and for the app to return.

        :raise LifespanFailed: when the app answers ``lifespan.shutdown.failed``,
            or returns or raises without answering.
        """
        if self.state is not ChildState.RUNNING:
            return
        self.state = ChildState.DONE
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await self._reply()
        await self._finish()
        if reply is None:
            raise LifespanFailed(f"{self.name} ended without answering lifespan.shutdown")
        if reply["type"] == "lifespan.shutdown.failed":
            raise LifespanFailed(f"{self.name} failed to shut down: {reply.get('message', '')}")

    async def _finish(self) -> None:
        """Let the app's lifespan call return (its ``receive`` then has nothing to give)."""
        task = self._task
        if task is None:
            return
        if not task.done():
            # Apps return after answering shutdown; one that waits for more
            # messages would wait for ever, so it is cancelled after a moment.
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task


class Lifespan:
    """Start stages in order and stop the started ones in reverse order.

    :param stages: the first is started first and stopped last (outermost).
    """

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self._started: list[Stage] = []

    async def startup(self) -> None:
        """Start every stage in order.

        :raise LifespanFailed: with the failing stage's message, after stopping
            the stages started before it (reverse order).
        """
        for stage in self.stages:
            try:
                await stage.start()
            except Exception as exc:
                message = str(exc) if isinstance(exc, LifespanFailed) else _describe(stage, exc)
                if not isinstance(exc, LifespanFailed):
                    logger.exception("%s failed at startup", stage.name)
                with contextlib.suppress(LifespanFailed):
                    await self.shutdown()
                raise LifespanFailed(message) from exc
            self._started.append(stage)

    async def shutdown(self) -> None:
        """Stop every started stage in reverse order, even after one fails.

        :raise LifespanFailed: joining the messages of the stages that failed.
        """
        failures = []
        while self._started:
            stage = self._started.pop()
            try:
                await stage.stop()
            except Exception as exc:
                if not isinstance(exc, LifespanFailed):
                    logger.exception("%s failed at shutdown", stage.name)
                failures.append(
                    str(exc) if isinstance(exc, LifespanFailed) else _describe(stage, exc)
                )
        if failures:
            raise LifespanFailed("; ".join(failures))


def _describe(stage: Stage, exc: BaseException) -> str:
    return f"{stage.name} failed: {type(exc).__name__}: {exc}"


def hook_stages(
    on_startup: Iterable[Hook],
    on_shutdown: Iterable[Hook],
    lifespan: LifespanFactory | None,
    app: object,
    scope: Scope,
) -> list[Stage]:
    """Return the stages for Starlette-shaped hooks: plain hooks first, then ``lifespan``.

    :param app: what a one-argument ``lifespan`` factory is called with.
    :param scope: the lifespan scope (its ``state``, when present, receives
        what ``lifespan`` yields).
    """
    stages: list[Stage] = []
    startup, shutdown = tuple(on_startup), tuple(on_shutdown)
    if startup or shutdown:
        stages.append(HookStage(startup, shutdown))
    if lifespan is not None:
        stages.append(ContextStage(lifespan, app, scope.get("state")))
    return stages


async def serve_lifespan(receive: Receive, send: Send, lifespan: Lifespan) -> None:
    """Answer one ASGI ``lifespan`` scope by running ``lifespan``'s startup and shutdown.

    Follows the ASGI lifespan spec: ``lifespan.startup`` gets
    ``lifespan.startup.complete`` or ``lifespan.startup.failed`` with the
    message (then this returns: the server will not serve); ``lifespan.shutdown``
    gets ``lifespan.shutdown.complete`` or ``lifespan.shutdown.failed``.

    :param receive: the server's ``receive`` for the lifespan scope.
    :param send: the server's ``send``.
    :param lifespan: the stages to run.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await lifespan.startup()
            except LifespanFailed as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await lifespan.shutdown()
            except LifespanFailed as exc:
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return
