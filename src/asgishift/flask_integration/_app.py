"""The ASGI application serving one Flask app with the extension installed.

``http`` requests to ``async def`` endpoints run on the server's loop
(:mod:`._http`); every other ``http`` request goes to
:class:`asgishift.bridge.WSGIToASGI`, whose bounded thread pool, streaming and
error handling serve Flask's sync views. ``websocket`` scopes go to
:mod:`._websocket`; ``lifespan`` runs the serving hooks (:mod:`._lifespan`)
and the bridge's own lifespan (pool start and drain).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from asgishift._types import Message, Receive, Scope, Send
from asgishift.bridge import BridgeOptions, WSGIToASGI
from asgishift.flask_integration._fresh_context import in_fresh_context, inherited_flask_context
from asgishift.flask_integration._http import BodyThreads, send_plain, serve_async_request
from asgishift.flask_integration._lifespan import ServingPhase
from asgishift.flask_integration._proxy import ProxyHeaders
from asgishift.flask_integration._routes import RouteTable, route_key
from asgishift.flask_integration._websocket import prepare_handshake_environ, serve_websocket
from asgishift.flask_integration._wire import BadRequest, build_environ, new_base_environ

if TYPE_CHECKING:
    from flask import Flask

    from asgishift.flask_integration._lifespan import ServingHooks
    from asgishift.flask_integration._loop import LoopBinding
    from asgishift.flask_integration._pipeline import AsyncPipeline

logger = logging.getLogger("asgishift.flask")

__all__ = ["FlaskASGIApp"]


class _BridgeLifespan:
    """Drive the bridge's own ASGI lifespan through two queues (its public interface)."""

    def __init__(self, bridge: WSGIToASGI) -> None:
        self._bridge = bridge
        self._to_bridge: asyncio.Queue[Message] = asyncio.Queue()
        self._from_bridge: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _exchange(self, message_type: str) -> Message:
        await self._to_bridge.put({"type": message_type})
        return await self._from_bridge.get()

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self._task = asyncio.ensure_future(
            self._bridge(scope, self._to_bridge.get, self._from_bridge.put)
        )
        reply = await self._exchange("lifespan.startup")
        if reply["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the WSGI bridge failed to start: {reply.get('message', '')}")

    async def shutdown(self) -> None:
        if self._task is None:
            return
        await self._exchange("lifespan.shutdown")
        await self._task
        self._task = None


class FlaskASGIApp:
    """The ASGI 3 application for one Flask app and one set of bridge options.

    Made by :meth:`asgishift.flask_integration.ASGIState.asgi_app_for`; call
    it as ``await app(scope, receive, send)`` (ASGI 3).

    :param app: the Flask app.
    :param options: the bridge's options (pool, queue, body limit, timeouts).
    :param binding: where the server's loop is recorded.
    :param hooks: the app's serving hooks and background tasks.
    :param routes: the app's async endpoint table.
    :param pipeline: Flask's pipeline with async steps awaited.
    """

    def __init__(
        self,
        app: Flask,
        options: BridgeOptions,
        *,
        binding: LoopBinding,
        hooks: ServingHooks,
        routes: RouteTable,
        pipeline: AsyncPipeline,
    ) -> None:
        self.flask_app = app
        self.options = options
        self.bridge = WSGIToASGI(app, options)
        self._binding = binding
        self._hooks = hooks
        self._routes = routes
        self._pipeline = pipeline
        self._base = new_base_environ()
        # The app's ProxyFix, applied to what runs on the loop as to sync views.
        self._proxy = ProxyHeaders(app)
        # Sync response bodies of async views are read here, as many at once as
        # the bridge runs sync views (its threads start on first use).
        self._body_threads = BodyThreads(options.max_workers)
        self._late_start: asyncio.Future[None] | None = None
        self._lifespan_seen = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (``http``, ``websocket`` or ``lifespan``).

        A call whose context carries another request's Flask contexts is served
        in a task of its own without them (:func:`~._fresh_context.inherited_flask_context`).

        :raise ValueError: for any other scope type (ASGI spec).
        """
        if inherited_flask_context():
            await in_fresh_context(self._serve(scope, receive, send))
            return
        await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        binding = self._binding
        if binding.loop is None or not binding.loop.is_running():
            binding.bind(asyncio.get_running_loop())
        if kind == "lifespan":
            self._lifespan_seen = True
        elif not self._lifespan_seen and (
            self._late_start is not None or self._hooks.phase is ServingPhase.IDLE
        ):
            await self._start_without_lifespan()
        if kind == "http":
            routes = self._routes
            proxy = self._proxy
            key = route_key(scope, proxy.matching_headers) if routes.any_async else None
            if key is not None and not routes.known_sync(key):
                try:
                    environ = build_environ(scope, self._base)
                except BadRequest as exc:
                    logger.info("400 Bad Request: %s", exc)
                    await send_plain(send, 400, scope["method"], "Bad Request")
                    return
                proxy.apply(environ)
                req = routes.async_request(environ, key)
                if req is not None:
                    await serve_async_request(
                        self.flask_app,
                        self._pipeline,
                        req,
                        environ,
                        receive,
                        send,
                        self.options,
                        self._body_threads,
                    )
                    return
            await self.bridge(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            raise ValueError(
                f"asgishift's Flask integration cannot serve ASGI scope type {kind!r}; "
                "route only 'http', 'websocket' and 'lifespan' scopes to it"
            )

    async def _start_without_lifespan(self) -> None:
        """Run the startup hooks before the first request on a server that sends
        no lifespan scope (daphne); ``after_serving`` then never runs."""
        if self._late_start is None:
            self._late_start = asyncio.ensure_future(self._hooks.startup())
        await asyncio.shield(self._late_start)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        http_scope: dict[str, Any] = dict(scope)
        http_scope["method"] = "GET"
        scheme = scope.get("scheme") or "ws"
        http_scope["scheme"] = scheme if scheme in ("ws", "wss") else "ws"
        try:
            environ = build_environ(http_scope, self._base)
        except BadRequest as exc:
            logger.info("refusing WebSocket handshake: %s", exc)
            await receive()
            await send({"type": "websocket.close", "code": 1002})
            return
        environ["wsgi.input"] = _EMPTY
        self._proxy.apply(environ)
        prepare_handshake_environ(environ)
        await serve_websocket(self.flask_app, self._pipeline, scope, environ, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI lifespan: start the bridge then the hooks; stop in reverse order."""
        bridge = _BridgeLifespan(self.bridge)
        timeout = self.options.shutdown_timeout
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await bridge.startup()
                    await self._hooks.startup()
                except Exception as exc:
                    logger.exception("Flask app %r failed to start", self.flask_app.name)
                    await bridge.shutdown()
                    await send(
                        {
                            "type": "lifespan.startup.failed",
                            "message": f"{type(exc).__name__}: {exc}",
                        }
                    )
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._hooks.shutdown(timeout)
                finally:
                    await bridge.shutdown()
                    self._body_threads.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _EmptyInput:
    """``wsgi.input`` of a WebSocket handshake: no body."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""


_EMPTY = _EmptyInput()
