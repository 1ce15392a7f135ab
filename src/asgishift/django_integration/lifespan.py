"""Lifespan hooks for Django under ASGI (ASGI lifespan spec).

Hooks are callables that take the lifespan ``state`` dict and return an async
context manager; the code before ``yield`` runs at startup, the code after at
shutdown. Register them from ``AppConfig.ready()`` with :func:`register`, or
list their dotted paths in the ``ASGISHIFT_LIFESPAN`` setting::

    @contextlib.asynccontextmanager
    async def http_client(state):
        async with httpx.AsyncClient() as client:
            state["http"] = client          # request.state.http in views
            yield

Startup enters the hooks in order (setting first, then registered), then
sends :data:`~asgishift.django_integration.signals.asgi_startup`. Shutdown
exits them in reverse, sends ``asgi_shutdown`` and closes every database
connection the server's threads hold. A hook that raises at startup fails
startup: the server reports the error and stops.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from asgishift._types import Receive, Scope, Send
from asgishift.django_integration.signals import asgi_shutdown, asgi_startup

logger = logging.getLogger("asgishift.django")

#: A lifespan hook: ``hook(state)`` returns an async context manager.
LifespanHook = Callable[[MutableMapping[str, Any]], AbstractAsyncContextManager[object]]

_registered: list[LifespanHook] = []


def register(hook: LifespanHook) -> LifespanHook:
    """Register ``hook`` to run at every server's startup and shutdown (usable as a decorator).

    Call it from ``AppConfig.ready()``; registering the same hook twice keeps one.

    :param hook: ``hook(state) -> async context manager``.
    :return: ``hook`` unchanged.
    :raise TypeError: when ``hook`` is not callable, or is an ``async def`` or
        (async) generator function not made a context manager (the message names
        the fix, ``@contextlib.asynccontextmanager``).
    """
    problem = _hook_problem(hook)
    if problem is not None:
        raise TypeError(f"register() takes a lifespan hook; {hook!r} {problem}")
    if hook not in _registered:
        _registered.append(hook)
    return hook


def hooks() -> list[LifespanHook]:
    """Return the hooks in run order: ``ASGISHIFT_LIFESPAN`` entries, then registered ones.

    :raise django.core.exceptions.ImproperlyConfigured: when the setting is not a
        list or tuple of dotted paths of hooks (the message is the one system check
        ``asgishift.E002`` reports; an import error is chained).
    """
    listed, problems = load_setting()
    if problems:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(problems[0].text) from problems[0].cause
    return [*listed, *(hook for hook in _registered if hook not in listed)]


class SettingProblem:
    """One thing wrong with ``ASGISHIFT_LIFESPAN``: a sentence naming the setting and the
    entry (``text``), and the exception behind it, if any (``cause``)."""

    def __init__(self, text: str, cause: BaseException | None = None) -> None:
        self.text = text
        self.cause = cause


#: Why an entry that imports is still no hook, by what it is.
_NOT_A_HOOK = (
    (inspect.isasyncgenfunction, "an async generator function"),
    (inspect.iscoroutinefunction, "an async function"),
    (inspect.isgeneratorfunction, "a generator function"),
)


def _hook_problem(hook: object) -> str | None:
    """Why ``hook`` is no lifespan hook (a phrase to follow its name), or ``None``."""
    if not callable(hook):
        return f"is not callable (it is a {type(hook).__name__})"
    kind = next((kind for test, kind in _NOT_A_HOOK if test(hook)), None)
    if kind is not None:
        return (
            f"is {kind}, which returns no async context manager; decorate it with "
            "@contextlib.asynccontextmanager"
        )
    return None


def load_setting() -> tuple[list[LifespanHook], list[SettingProblem]]:
    """Import the hooks ``ASGISHIFT_LIFESPAN`` lists, without running them.

    An entry must be a dotted path (``str``) to a callable that is not itself an
    async function or (async) generator function: ``hook(state)`` must return an
    async context manager, which a function gets from
    ``@contextlib.asynccontextmanager``.

    :return: the hooks that loaded, in order, and one :class:`SettingProblem` per
        entry that did not (or one for a setting that is not a list or tuple).
    """
    value = getattr(settings, "ASGISHIFT_LIFESPAN", ())
    if not isinstance(value, list | tuple):
        problem = (
            f"ASGISHIFT_LIFESPAN must be a list or tuple of dotted paths, not "
            f"{type(value).__name__} ({value!r})"
        )
        return [], [SettingProblem(problem)]
    loaded: list[LifespanHook] = []
    problems: list[SettingProblem] = []
    for entry in value:
        where = f"ASGISHIFT_LIFESPAN entry {entry!r}"
        if not isinstance(entry, str):
            problems.append(SettingProblem(f"{where} is not a dotted path (a string)"))
            continue
        try:
            hook = import_string(entry)
        except Exception as exc:  # ImportError, or whatever the module raised on import
            cause = f"{type(exc).__name__}: {exc}"
            problems.append(SettingProblem(f"{where} cannot be imported ({cause})", exc))
            continue
        why = _hook_problem(hook)
        if why is not None:
            problems.append(SettingProblem(f"{where} {why}"))
            continue
        loaded.append(hook)
    return loaded, problems


async def _send(signal: Any, sender: type, state: MutableMapping[str, Any]) -> None:
    if hasattr(signal, "asend"):  # Django >= 5.0 runs async receivers natively
        await signal.asend(sender=sender, state=state)
    else:
        await sync_to_async(signal.send)(sender=sender, state=state)


class Lifespan:
    """Runs the hooks, signals and connection clean-up for one server process.

    :param sender: the handler class, sent as the signals' ``sender``.
    :param close_thread_connections: called at shutdown to close the database
        connections held by the handler's own threads.
    """

    def __init__(self, sender: type, close_thread_connections: Callable[[], None]) -> None:
        self._sender = sender
        self._close_thread_connections = close_thread_connections
        self._stack: contextlib.AsyncExitStack | None = None

    async def startup(self, state: MutableMapping[str, Any]) -> None:
        """Enter every hook, then send ``asgi_startup``.

        :raise Exception: whatever a hook or receiver raised (hooks already
            entered are exited first).
        """
        stack = contextlib.AsyncExitStack()
        try:
            for hook in hooks():
                await stack.enter_async_context(hook(state))
            await _send(asgi_startup, self._sender, state)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def shutdown(self, state: MutableMapping[str, Any]) -> None:
        """Exit the hooks in reverse order, send ``asgi_shutdown``, close DB connections."""
        try:
            if self._stack is not None:
                stack, self._stack = self._stack, None
                await stack.aclose()
            await _send(asgi_shutdown, self._sender, state)
        finally:
            await sync_to_async(self._close_thread_connections, thread_sensitive=False)()
            # Connections opened by hooks and receivers live on asgiref's
            # process-wide thread-sensitive thread.
            await sync_to_async(connections.close_all)()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``lifespan`` scope: startup, wait for shutdown, shutdown."""
        state: MutableMapping[str, Any] = scope.get("state", {})
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - spec violation
            return
        try:
            await self.startup(state)
        except Exception as exc:
            logger.exception("lifespan startup failed")
            await send({"type": "lifespan.startup.failed", "message": f"{exc!r}"})
            return
        logger.info("lifespan startup complete")
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        try:
            await self.shutdown(state)
        except Exception as exc:
            logger.exception("lifespan shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": f"{exc!r}"})
            return
        logger.info("lifespan shutdown complete")
        await send({"type": "lifespan.shutdown.complete"})


__all__ = ["Lifespan", "LifespanHook", "SettingProblem", "hooks", "load_setting", "register"]
