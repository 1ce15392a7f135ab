"""``ASGIToWSGI``: run an ASGI 3 app under any PEP 3333 (WSGI) server.

The WSGI server calls :class:`ASGIToWSGI` from its own thread. The app runs as
a task on this process's event-loop thread (:mod:`._loop_thread`); its
messages are checked and translated by the pure modules :mod:`._scope` and
:mod:`._asgi_events`, and cross between the threads: :mod:`._asgi_exchange` is
the loop's half of a request, :mod:`._asgi_wsgi_side` the server thread's half
(and the response iterable). This module holds the callable itself: process
setup (loop thread, lifespan), the scope, the small-body read, the hand-off.

One request, small response::

    WSGI thread                          loop thread
    build_scope(environ)
    read a small body up front
    loop.call(side.start)  ──────────▶   task: app(scope, receive, send)
    outbox.get()           ◀──────────   [START, BODY, END, DONE]  (one batch)
    start_response(); return [body]
"""

from __future__ import annotations

import contextvars
import logging
import os
from typing import Any

from asgishift._types import ASGIApp, Environ, Message, StartResponse
from asgishift.bridge._asgi_exchange import LoopSide
from asgishift.bridge._asgi_lifespan import (
    FAILED,
    READY,
    SERVING,
    UNSUPPORTED,
    Lifespan,
    LifespanSettings,
)
from asgishift.bridge._asgi_options import ASGIToWSGIOptions
from asgishift.bridge._asgi_wsgi_side import Batch, ResponseAborted, WSGISide, error_response
from asgishift.bridge._loop_thread import LoopThread, process_lock, process_loop
from asgishift.bridge._outbox import Outbox, new_outbox
from asgishift.bridge._scope import ScopeError, build_scope, request_body_length
from asgishift.bridge._uwsgi import ChunkedInput, reads_chunked_bodies, under_uwsgi

__all__ = ["ASGIToWSGI", "ASGIToWSGIOptions", "ResponseAborted"]

logger = logging.getLogger("asgishift.bridge")


def _file_extensions() -> dict[str, Any]:
    """Return ``scope["extensions"]`` when the server offers ``wsgi.file_wrapper`` (fresh:
    an app or middleware may change its scope)."""
    return {"http.response.pathsend": {}, "http.response.zerocopysend": {}}


def _note_upgrade(environ: Environ, upgrade: str) -> None:
    """Log a WebSocket handshake: WSGI cannot upgrade a connection (ASGI WebSocket spec)."""
    if "websocket" in upgrade.lower():
        logger.warning(
            "ASGIToWSGI: a WebSocket handshake for %s %s reached a WSGI server, which cannot "
            "upgrade the connection; the app gets it as a plain HTTP request (a Starlette or "
            "FastAPI WebSocket route answers 404). Serve WebSocket routes from an ASGI server "
            "(asgishift serve).",
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        )


class _Process:
    """What one process needs to serve requests: its loop thread and the app's lifespan."""

    __slots__ = ("lifespan", "loop_thread", "pid")

    def __init__(self, loop_thread: LoopThread, lifespan: Lifespan) -> None:
        self.pid = os.getpid()
        self.loop_thread = loop_thread
        self.lifespan = lifespan


class ASGIToWSGI:
    """A PEP 3333 application that runs an ASGI 3 HTTP app (FastAPI, Starlette, Django ASGI).

    >>> from asgishift.bridge import ASGIToWSGI
    >>> application = ASGIToWSGI(asgi_app)  # doctest: +SKIP

    Serve ``application`` with gunicorn (sync or gthread workers), waitress,
    uWSGI, mod_wsgi or wsgiref. Lifespan startup runs before the first request of each
    process (call :meth:`startup` from a gunicorn ``post_fork`` hook to run it
    at worker start), shutdown at process exit. Each request's task runs in a copy
    of the calling server thread's :mod:`contextvars` context, so what WSGI
    middleware around the bridge binds (a request id) reaches the app, and what
    the app binds stays in its request. See docs/asgi_to_wsgi.md.

    :param app: an ASGI 3 application ``app(scope, receive, send)``.
    :param options: settings; the defaults of :class:`ASGIToWSGIOptions` when ``None``.
    """

    def __init__(self, app: ASGIApp, options: ASGIToWSGIOptions | None = None) -> None:
        self.app = app
        self.options = options or ASGIToWSGIOptions()
        self._lifespan_settings = LifespanSettings(
            self.options.lifespan, self.options.startup_timeout, self.options.shutdown_timeout
        )
        self._process: _Process | None = None

    def __repr__(self) -> str:
        return f"ASGIToWSGI({self.app!r})"

    # --- lifespan ------------------------------------------------------------------
    def _current_process(self) -> _Process:
        with process_lock():  # concurrent first requests must share one lifespan
            process = self._process
            if process is None or process.pid != os.getpid():
                loop_thread = process_loop(self.options.loop)
                process = self._process = _Process(
                    loop_thread, Lifespan(self.app, loop_thread, self._lifespan_settings)
                )
                loop_thread.watch_server_stop(self.options.exit_reserve)
        return process

    def startup(self) -> bool:
        """Run the app's lifespan startup in this process now, if it has not run yet.

        Call it at worker start (gunicorn's ``post_fork`` hook) so the first
        request does not wait for startup; otherwise the first request runs it.
        ASGI lifespan spec, "Startup".

        :return: ``False`` when startup failed (the app's message is logged and
            every request will be answered 500), else ``True`` (also for an app
            without lifespan support).
        """
        return self._current_process().lifespan.startup() is not FAILED

    def shutdown(self) -> None:
        """Run lifespan shutdown now instead of at process exit (ASGI lifespan spec, "Shutdown")."""
        process = self._process
        if process is not None and process.pid == os.getpid():
            process.lifespan.shutdown()

    # --- a request ---------------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        """Serve one request (PEP 3333, "The Application/Framework Side").

        :return: the response iterable: a list when the whole response was ready
            at once, ``wsgi.file_wrapper(...)`` for ``http.response.pathsend``,
            else an iterator that yields each body chunk as the app sends it.
        """
        process = self._process
        if process is None or process.pid != os.getpid():
            process = self._current_process()
        lifespan = process.lifespan
        phase = lifespan.phase
        if phase is not READY and phase is not UNSUPPORTED and lifespan.startup() not in SERVING:
            return error_response(start_response, 500, environ)
        options = self.options
        upgrade = environ.get("HTTP_UPGRADE")
        if upgrade is not None:
            _note_upgrade(environ, upgrade)
        stream = environ["wsgi.input"]
        try:
            try:
                length = request_body_length(environ)
            except ScopeError as exc:
                if exc.error_status_hint != 411 or not (
                    under_uwsgi(environ) and reads_chunked_bodies()
                ):
                    raise
                # A chunked body under uWSGI: its wsgi.input cannot find the end, but
                # uwsgi.chunked_read() can.
                length, stream = None, ChunkedInput()
            extensions = _file_extensions() if "wsgi.file_wrapper" in environ else None
            scope = build_scope(environ, state=lifespan.state, extensions=extensions)
        except ScopeError as exc:
            logger.warning("ASGIToWSGI: bad request: %s", exc)
            return error_response(start_response, exc.error_status_hint, environ)
        first: Message | None = None
        if length == 0:
            first = {"type": "http.request", "body": b"", "more_body": False}
            left: int | None = 0
        elif length is not None and length <= options.chunk_size:
            body = stream.read(length)
            if len(body) < length:
                return error_response(start_response, 400, environ)
            first = {"type": "http.request", "body": body, "more_body": False}
            left = 0
        else:
            left = length
        outbox: Outbox[Batch] = new_outbox()
        side = LoopSide(
            process.loop_thread.loop,
            self.app,
            scope,
            outbox,
            first,
            options.send_buffer,
            options.disconnect_grace,
            process.loop_thread.open_requests,
            contextvars.copy_context(),
        )
        exchange = WSGISide(side, process.loop_thread, outbox, stream, left, options)
        process.loop_thread.call(side.start)
        return exchange.respond(environ, start_response)
