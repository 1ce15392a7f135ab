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
    """
    if hook not in _registered:
        _registered.append(hook)
    return hook


def hooks() -> list[LifespanHook]:
    """Return the hooks in run order: ``ASGISHIFT_LIFESPAN`` entries, then registered ones.

    :raise django.core.exceptions.ImproperlyConfigured: (from ``import_string``'s
        ``ImportError``) when a setting entry cannot be imported.
    """
    listed = [import_string(path) for path in getattr(settings, "ASGISHIFT_LIFESPAN", ())]
    return [*listed, *(hook for hook in _registered if hook not in listed)]


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


__all__ = ["Lifespan", "LifespanHook", "hooks", "register"]
