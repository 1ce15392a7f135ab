"""Serve a PEP 3333 (WSGI) application to an ASGI 3 server.

Strategy: the cost of a bridge is the number of times a request crosses
between the event loop and a worker thread, so a small request crosses
exactly once each way:

1. On the loop, the environ is built and the first ``http.request`` message is
   awaited (and, for a declared ``Content-Length`` of at most ``buffer_size``,
   the rest of the body). If the body is then complete, ``wsgi.input`` is an
   in-memory :class:`io.BytesIO`.
2. A worker thread runs the app in a copy of the request's
   :mod:`contextvars` context and drains the response iterable into a buffer
   of up to ``buffer_size`` bytes, as long as holding a block back cannot
   delay it (PEP 3333 "Buffering and Streaming"): the iterable already holds
   the whole body (a sized iterable, a non-streaming Django response), or the
   block completes the declared ``Content-Length`` (Flask's responses). It
   closes the iterable and hands one ``http.response.start`` and one
   ``http.response.body`` back to the loop.

Everything else streams, with backpressure both ways: when the app reads past
the first message, or a response outgrows the buffer or may still be produced, the
worker posts a request to the loop (``_SEND`` or ``_RECEIVE``) and blocks on a
lock until the loop has awaited ``send()``/``receive()`` and replied. All
``send``/``receive`` calls happen in one coroutine, ``Request.serve`` in
``_request.py``, so a disconnect, a timeout or a cancellation is handled in one
place and always releases a waiting worker.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterable
from typing import Any, Final

from asgishift._types import Receive, Scope, Send, WSGIApp
from asgishift.bridge._environ import base_environ, build_environ, server_protocol
from asgishift.bridge._error_response import error_messages
from asgishift.bridge._errors import BadRequest
from asgishift.bridge._files import ErrorStream, FileWrapper
from asgishift.bridge._inbox import Inbox
from asgishift.bridge._input import StreamInput
from asgishift.bridge._lifespan import (
    CallbackStage,
    Hook,
    Lifespan,
    LifespanFactory,
    hook_stages,
    serve_lifespan,
)
from asgishift.bridge._options import BridgeOptions
from asgishift.bridge._pool import WorkerPool
from asgishift.bridge._request import Request
from asgishift.bridge._response import close_headers, must_close
from asgishift.bridge._server_io import send_draining, send_messages
from asgishift.bridge._state import PARTIAL

__all__ = ["WSGIToASGI"]

logger = logging.getLogger("asgishift.bridge")

#: Seconds a refusal drains the body of a client that waits for ``100 Continue``.
#: uvicorn says ``100 Continue`` only when the app reads before it answers, so
#: such a client sends nothing and a longer wait only delays the refusal;
#: hypercorn and granian say it by themselves, the body then arrives at once,
#: and a first message read frees hypercorn's queue (see ``_server_io.drain_body``).
_CONTINUE_DRAIN: Final = 0.1

_NOT_ASYNCIO = (
    "asgishift's WSGIToASGI needs an asyncio event loop (uvloop is fine); this server runs "
    "another one: with hypercorn use --worker-class asyncio or uvloop, not trio"
)


class WSGIToASGI:
    """Run a WSGI application under an ASGI server.

    Use it as the ASGI application object (``uvicorn module:application``)
    where ``application = WSGIToASGI(wsgi_app)``.

    Each HTTP request runs the app on a bounded pool of worker threads, in a
    copy of the context of the server's request task (:mod:`contextvars`):
    values ASGI middleware set are visible, and whatever the app sets is
    dropped with the copy, so nothing leaks into the next keep-alive request.
    Request and response bodies stream with backpressure. A response of at
    most ``buffer_size`` bytes that is already complete when the app hands it
    over (a list, a non-streaming Django response, or one block that fills the
    declared ``Content-Length``, as Flask returns) is sent in one message, so a
    small request costs one event-loop crossing each way; any other response
    (a generator, server-sent events, ``write()`` calls) is sent block by block
    as the app produces it, never held back (PEP 3333 "Buffering and Streaming").

    :param wsgi_app: the PEP 3333 application.
    :param options: a :class:`~asgishift.bridge.BridgeOptions` (worker and
        queue sizes, body and buffer limits in bytes, timeouts in seconds,
        drain bounds); the defaults when ``None``.
    :param on_startup: callables taking no arguments, sync or async, run in
        order at ASGI lifespan startup before requests are served (Starlette's
        ``on_startup``); one that raises fails startup with its message.
    :param on_shutdown: the same, run in order at lifespan shutdown after the
        running requests have drained.
    :param lifespan: an async context manager factory (Starlette's
        ``lifespan=``), entered after ``on_startup`` and exited before
        ``on_shutdown``; a mapping it yields joins ``scope["state"]``.
    :param changes: the same names as keywords (``max_workers=8``), applied on
        top of ``options``.
    :raise ValueError: for an out-of-range option (the message names it).
    :raise TypeError: for an unknown keyword.

    The options are fixed at construction (the pool is sized from them); the
    read-only attributes ``max_body_size``, ``request_timeout``,
    ``retry_after``, ``buffer_size`` and ``shutdown_timeout`` mirror them.

    Follows PEP 3333 and the ASGI 3 HTTP and lifespan specifications;
    ``websocket`` scopes are refused by closing the handshake.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        wsgi_app: WSGIApp,
        options: BridgeOptions | None = None,
        *,
        on_startup: Iterable[Hook] = (),
        on_shutdown: Iterable[Hook] = (),
        lifespan: LifespanFactory | None = None,
        **changes: Any,
    ) -> None:
        if options is None:
            options = BridgeOptions(**changes)
        elif changes:
            options = options.replace(**changes)
        self.wsgi_app = wsgi_app
        self.on_startup = tuple(on_startup)
        self.on_shutdown = tuple(on_shutdown)
        self.lifespan = lifespan
        self._options = options
        self._pool = WorkerPool(options.max_workers, options.max_queue)
        self._base = base_environ(ErrorStream(), FileWrapper, options.multiprocess)
        # The worker->loop channel of the loop last served (see Inbox).
        self._inbox: Inbox | None = None

    @property
    def options(self) -> BridgeOptions:
        """Return the options (frozen: build a new bridge to change them)."""
        return self._options

    @property
    def max_body_size(self) -> int | None:
        """Return :attr:`BridgeOptions.max_body_size` (bytes; read-only)."""
        return self._options.max_body_size

    @property
    def request_timeout(self) -> float | None:
        """Return :attr:`BridgeOptions.request_timeout` (seconds; read-only)."""
        return self._options.request_timeout

    @property
    def retry_after(self) -> int:
        """Return :attr:`BridgeOptions.retry_after` (seconds; read-only)."""
        return self._options.retry_after

    @property
    def buffer_size(self) -> int:
        """Return :attr:`BridgeOptions.buffer_size` (bytes; read-only)."""
        return self._options.buffer_size

    @property
    def shutdown_timeout(self) -> float | None:
        """Return :attr:`BridgeOptions.shutdown_timeout` (seconds; read-only)."""
        return self._options.shutdown_timeout

    @property
    def pool(self) -> WorkerPool:
        """Return the worker pool (for metrics: ``in_flight``, ``threads``)."""
        return self._pool

    @property
    def draining(self) -> bool:
        """Return whether the bridge refuses new requests (after :meth:`shutdown`)."""
        return self._pool.closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope.

        :param scope: an ``http``, ``lifespan`` or ``websocket`` scope.
        :raise ValueError: for any other scope type (ASGI spec: apps must
            raise on scope types they do not support).
        """
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif kind == "websocket":
            # A WSGI app cannot speak WebSocket: refuse the handshake (the
            # server answers 403) instead of raising into the server's log.
            logger.debug(
                "refusing websocket connection to %s: WSGI apps are HTTP only", scope.get("path")
            )
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(
                f"asgishift WSGIToASGI cannot serve ASGI scope type {kind!r}; "
                "route only 'http', 'websocket' and 'lifespan' scopes to it"
            )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (ASGI HTTP spec)."""
        options = self._options
        try:
            environ = build_environ(scope, self._base)
        except BadRequest as exc:
            logger.info("400 Bad Request: %s", exc)
            await self._refuse(receive, send, scope, 400, None)
            return
        limit = options.max_body_size
        length = environ.get("CONTENT_LENGTH")
        if limit is not None and length is not None and int(length) > limit:
            # A client that sent "Expect: 100-continue" sends its body only once told
            # to: wait for it only as long as a server that says so by itself needs.
            waiting = environ.get("HTTP_EXPECT", "").lower() == "100-continue"
            await self._refuse(receive, send, scope, 413, int(length), waiting)
            return
        message = await receive()
        if message["type"] != "http.request":
            # The client left before its body, or the server refused the body:
            # granian reports a malformed chunked body as http.disconnect, and
            # answers 500 itself to an app that sends nothing. A client still
            # there gets 400; the servers drop the answer to one that has gone.
            logger.info(
                "400 Bad Request: %s %s ended before its body (the client left, or the "
                "server refused the body)",
                scope["method"],
                environ["PATH_INFO"],
            )
            closing = close_headers(environ["SERVER_PROTOCOL"])
            await send_messages(send, error_messages(400, scope["method"], closing))
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if more and length is not None and int(length) <= options.buffer_size:
            # A small body split over messages (hypercorn always ends a body
            # with an empty message): collect it here, bounded by
            # buffer_size, so the app gets an in-memory input and no crossing.
            parts = [body]
            size = len(body)
            while more and size <= options.buffer_size:
                message = await receive()
                if message["type"] != "http.request":
                    return  # http.disconnect mid-body: nobody to answer
                chunk = message.get("body", b"")
                parts.append(chunk)
                size += len(chunk)
                more = message.get("more_body", False)
            body = b"".join(parts)
        if limit is not None and len(body) > limit:
            if not more:
                remaining: int | None = 0
            elif length is not None:
                remaining = int(length) - len(body)
            else:
                remaining = None
            await self._refuse(receive, send, scope, 413, remaining)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(_NOT_ASYNCIO) from None
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            # The worker->loop channel of this loop, shared by its requests.
            inbox = self._inbox = Inbox(loop)
        if more:
            request = Request(
                self.wsgi_app, options, self._pool, inbox, scope, environ, receive, send,
                PARTIAL, len(body),
            )  # fmt: skip
            environ["wsgi.input"] = request.stream = StreamInput(body, request.fetch)
        else:
            request = Request(
                self.wsgi_app, options, self._pool, inbox, scope, environ, receive, send
            )
            if body and length is None:
                # A chunked or HTTP/2 body that arrived whole: its length is
                # known now, and apps that ignore wsgi.input_terminated
                # (Django reads CONTENT_LENGTH bytes) would otherwise see none.
                environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
        await request.serve()

    async def _refuse(
        self,
        receive: Receive,
        send: Send,
        scope: Scope,
        status: int,
        remaining: int | None,
        waiting: bool = False,
    ) -> None:
        """Answer ``status`` without calling the app; drain or close for an unread body.

        :param scope: the request's HTTP scope (its method and ``http_version``).
        :param remaining: request body bytes not read yet (``None``: unknown).
        :param waiting: the client waits for ``100 Continue`` before it sends
            the body (RFC 9110 section 10.1.1): the connection closes, and the
            drain lasts at most :data:`_CONTINUE_DRAIN` seconds.
        """
        options = self._options
        close = remaining != 0 and (waiting or must_close(remaining, options.drain_body_size))
        method = scope["method"]
        messages = error_messages(
            status, method, close_headers(server_protocol(scope)) if close else ()
        )
        if remaining == 0:
            await send_messages(send, messages)
        else:
            timeout = (
                min(options.drain_timeout, _CONTINUE_DRAIN) if waiting else options.drain_timeout
            )
            await send_draining(send, receive, messages, options.drain_body_size, timeout)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the ASGI lifespan protocol: the hooks, then :meth:`_startup`; in reverse
        at shutdown (see :mod:`asgishift.bridge._lifespan`)."""
        stages = hook_stages(self.on_startup, self.on_shutdown, self.lifespan, self, scope)
        stages.append(CallbackStage("WSGI worker pool", self._startup, self._shutdown))
        await serve_lifespan(receive, send, Lifespan(stages))

    async def _startup(self) -> None:
        """Run at ``lifespan.startup``: accept requests (again, after a restart)."""
        self._pool.reopen()

    async def _shutdown(self) -> None:
        """Run at ``lifespan.shutdown``: refuse new requests and drain running ones."""
        timeout = self._options.shutdown_timeout
        if not await self.drain(timeout):
            logger.warning(
                "lifespan shutdown: %d WSGI request(s) still running after %s s",
                self._pool.in_flight,
                timeout,
            )

    async def drain(self, timeout: float | None = None) -> bool:
        """Refuse new requests (503), wait for running ones, then stop the threads.

        Await this from the event loop; :meth:`shutdown` is the blocking twin.

        :param timeout: the longest wait (seconds); ``None`` waits for ever.
        :return: ``True`` if every request finished in time.
        """
        self._pool.close()
        loop = asyncio.get_running_loop()
        idle = loop.create_future()

        def wake() -> None:
            if not idle.done():
                idle.set_result(None)

        self._pool.when_idle(lambda: loop.call_soon_threadsafe(wake))
        try:
            await asyncio.wait_for(idle, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            self._pool.stop_threads()
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Refuse new requests (503), block until running ones finish, stop the threads.

        Call it from a thread that is not running the event loop; on the loop,
        ``await`` :meth:`drain` instead. The ASGI lifespan shutdown does that.

        :param timeout: the longest wait (seconds); ``None`` waits for ever.
        :return: ``True`` if every request finished in time.
        """
        self._pool.close()
        idle = threading.Event()
        self._pool.when_idle(idle.set)
        done = idle.wait(timeout)
        self._pool.stop_threads()
        return done
