"""WebSocket routes for Flask, served on the event loop (ASGI WebSocket spec).

A route is a Werkzeug rule with ``websocket=True`` (``@app.route("/ws/<room>",
websocket=True)``, on blueprints too, or :meth:`ASGI.websocket`), so
converters, blueprints and ``url_for`` work. Its view is ``async def
view(ws, **view_args)`` and runs with Flask's request context pushed: cookies,
``session`` (read-only: no response carries it back), ``g`` and
``current_app`` work, and ``before_request`` functions run first. One that
returns a response refuses the handshake: the response is sent when the server
offers the ``websocket.http.response`` extension, otherwise the connection is
closed before it is accepted (the server answers ``403``). An exception from a
``before_request`` function or from URL matching is turned into the refusal by
the app's error handlers, as for an HTTP request.

A view that sends twice without receiving in between gets a watcher task
(:class:`_Watcher`) that reads the server's messages for it, so that
``send()`` raises :class:`WebSocketDisconnect` once the client has gone even on
servers whose ``send`` stays silent on a closed connection; the view's
``receive()`` then takes the watcher's messages, in order.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from flask.ctx import RequestContext
from flask.globals import request_ctx
from flask.signals import got_request_exception, request_started
from werkzeug.exceptions import BadRequest, NotFound

from asgishift._types import Environ, Message, Receive, Scope, Send
from asgishift.flask_integration._loop import awaited_by_caller, tearing_down
from asgishift.flask_integration._pipeline import call, send_signal
from asgishift.flask_integration._routes import wrapped_coroutine_function
from asgishift.flask_integration._wire import asgi_headers

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Response

    from asgishift.flask_integration._pipeline import AsyncPipeline

logger = logging.getLogger("asgishift.flask")

__all__ = [
    "WebSocket",
    "WebSocketDisconnect",
    "prepare_handshake_environ",
    "refuse_websocket_rule_over_http",
    "serve_websocket",
]

#: The environ key marking a handshake served here (value ``True``), as opposed
#: to one that reached the app as a plain HTTP request.
HANDSHAKE_KEY: Final = "asgishift.websocket"


def prepare_handshake_environ(environ: Environ) -> None:
    """Mark ``environ`` as a served WebSocket handshake and spell its scheme for Werkzeug.

    Werkzeug's ``Map.bind_to_environ`` turns the scheme of a request carrying
    ``Connection: upgrade`` and ``Upgrade: websocket`` (RFC 6455 §4.1) into
    ``wss`` only from ``https``, and into ``ws`` from anything else, ``wss``
    included. Such a handshake gets the HTTP spelling (``http``/``https``), as a
    WSGI server would give it, so ``url_for(_external=True)`` builds ``wss://``
    (and ``https://``) URLs on a secure connection; one without those headers
    (HTTP/2, RFC 8441) keeps ``ws``/``wss``, which Werkzeug leaves alone.

    :param environ: built from a ``websocket`` scope, with ``wsgi.url_scheme``
        ``ws``/``wss`` (or ``http``/``https`` when the app's ``ProxyFix`` set it
        from ``X-Forwarded-Proto``).
    """
    environ[HANDSHAKE_KEY] = True
    secure = environ.get("wsgi.url_scheme") in ("https", "wss")
    upgrade = environ.get("HTTP_UPGRADE", "").lower() == "websocket" and any(
        part.strip(" \t") == "upgrade"
        for part in environ.get("HTTP_CONNECTION", "").lower().split(",")
    )
    if upgrade:
        environ["wsgi.url_scheme"] = "https" if secure else "http"
    else:
        environ["wsgi.url_scheme"] = "wss" if secure else "ws"


class WebSocketDisconnect(Exception):
    """The client closed the connection; :attr:`code` is its close code (RFC 6455 §7.4).

    Raised by :meth:`WebSocket.receive` and :meth:`WebSocket.send`; a view may
    let it propagate, which ends the connection normally.
    """

    def __init__(self, code: int = 1005, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocketState(enum.Enum):
    """Where a :class:`WebSocket` is in the handshake and close sequence."""

    CONNECTING = "connecting"
    ACCEPTED = "accepted"
    CLOSED = "closed"


# Read on every message: module constants, since reading ``WebSocketState.CLOSED``
# through the class costs about 100 ns on Python 3.10 and 3.11 (the enum metaclass's hook).
_CONNECTING: Final = WebSocketState.CONNECTING
_ACCEPTED: Final = WebSocketState.ACCEPTED
_CLOSED: Final = WebSocketState.CLOSED


class Reading(enum.Enum):
    """Who reads a :class:`WebSocket`'s messages from the server: the single state
    of its receiving side.

    ``IDLE``: nobody, and the view has not sent since it last received;
    ``VIEW``: a :meth:`WebSocket.receive` call awaits the server; ``SENT``: the
    view sent since it last received; ``WATCHER``: a :class:`_Watcher` reads
    (for the rest of the connection).
    """

    IDLE = "idle"
    VIEW = "view"
    SENT = "sent"
    WATCHER = "watcher"


_IDLE: Final = Reading.IDLE
_VIEW: Final = Reading.VIEW
_SENT: Final = Reading.SENT
_WATCHER: Final = Reading.WATCHER

#: Messages a watcher holds for a view that does not receive; past it the
#: watcher waits for the view, and the server's own flow control applies.
WATCHER_BUFFER = 32


class _Watcher:
    """Read the server's messages while a view only sends (ASGI WebSocket spec:
    the server delivers ``websocket.disconnect`` to ``receive()``).

    :param receive: the ASGI receive callable.
    :param limit: the most messages held before the view takes them.
    """

    def __init__(self, receive: Receive, limit: int = WATCHER_BUFFER) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue(limit)
        #: The ``websocket.disconnect`` message once the server sent it.
        self.disconnect: Message | None = None
        self._task = asyncio.ensure_future(self._run(receive))

    async def _run(self, receive: Receive) -> None:
        while self.disconnect is None:
            try:
                message = await receive()
            except Exception:
                logger.debug("WebSocket receive() failed; taken as a disconnect", exc_info=True)
                message = {"type": "websocket.disconnect", "code": 1006}
            if message["type"] == "websocket.disconnect":
                self.disconnect = message
            await self._queue.put(message)

    async def next(self) -> Message:
        """Return the next message in the server's order; after the disconnect, it again."""
        if self._queue.empty() and self.disconnect is not None:
            return self.disconnect
        return await self._queue.get()

    def stop(self) -> None:
        """Stop reading (the connection is over): cancel the task."""
        self._task.cancel()


def _disconnect_error(message: Message | None) -> WebSocketDisconnect:
    """Return the error for a closed connection, with the client's code if known."""
    if message is None:
        return WebSocketDisconnect(1006, "the connection is closed")
    return WebSocketDisconnect(message.get("code", 1005), message.get("reason") or "")


class WebSocket:
    """One WebSocket connection, handed to a WebSocket view as its first argument.

    :param scope: the ASGI ``websocket`` scope.
    :param receive: the ASGI receive callable (after ``websocket.connect``).
    :param send: the ASGI send callable.

    The first :meth:`receive` or :meth:`send` accepts the connection if the
    view did not call :meth:`accept` itself.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.state = _CONNECTING
        self._reading = _IDLE
        self._watcher: _Watcher | None = None

    @property
    def subprotocols(self) -> list[str]:
        """Return the subprotocols the client offered (``Sec-WebSocket-Protocol``)."""
        return list(self.scope.get("subprotocols", ()))

    async def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Accept the handshake (``websocket.accept``).

        :param subprotocol: the subprotocol chosen from :attr:`subprotocols`.
        :param headers: extra response headers, as ``(name, value)`` strings.
        :raise RuntimeError: when the connection was already accepted or closed.
        """
        if self.state is not _CONNECTING:
            raise RuntimeError(f"cannot accept a WebSocket that is {self.state.value}")
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        extra = asgi_headers(headers)
        if extra:
            message["headers"] = extra
        await self._send(message)
        self.state = _ACCEPTED

    async def receive(self) -> str | bytes:
        """Wait for the next message: ``str`` for a text frame, ``bytes`` for binary.

        :raise WebSocketDisconnect: when the client closed the connection.
        """
        if self.state is _CONNECTING:
            await self.accept()
        if self.state is _CLOSED:
            raise WebSocketDisconnect(1006, "the connection is closed")
        watcher = self._watcher
        if watcher is not None:
            message = await watcher.next()
        else:
            self._reading = _VIEW
            try:
                message = await self._receive()
            finally:
                self._reading = _IDLE
        if message["type"] == "websocket.disconnect":
            self.state = _CLOSED
            raise WebSocketDisconnect(message.get("code", 1005), message.get("reason") or "")
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        :raise TypeError: for any other type.
        :raise WebSocketDisconnect: when the connection is closed: the view
            closed it, the server's ``send`` raised ``OSError`` (ASGI: a send on
            a closed connection), or the client left while the view only sent
            (seen by the watcher).
        """
        if self.state is _CONNECTING:
            await self.accept()
        if self.state is _CLOSED:
            raise WebSocketDisconnect(1006, "the connection is closed")
        watcher = self._watcher
        if watcher is not None:
            if watcher.disconnect is not None:
                self.state = _CLOSED
                raise _disconnect_error(watcher.disconnect)
        elif self._reading is _IDLE:
            self._reading = _SENT
        elif self._reading is _SENT:
            # Sending again without receiving: read for the view from now on.
            self._reading = _WATCHER
            self._watcher = _Watcher(self._receive)
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, (bytes, bytearray, memoryview)):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(f"WebSocket.send takes str or bytes, got {type(data).__name__}")
        try:
            await self._send(message)
        except OSError as exc:
            self.state = _CLOSED
            raise _disconnect_error(None) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (``websocket.close``); closing twice does nothing.

        Before the handshake is accepted this refuses it (the server answers 403).

        :param code: the close code (RFC 6455 §7.4; 1000 is a normal close).
        :param reason: a short text sent with the close frame.
        """
        if self.state is _CLOSED:
            return
        self.state = _CLOSED
        if self._watcher is not None and self._watcher.disconnect is not None:
            return  # the client already left
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            logger.debug("WebSocket closed by the client before the close was sent")

    def release(self) -> None:
        """Stop the watcher, if any (called once the view has returned)."""
        if self._watcher is not None:
            self._watcher.stop()


def refuse_websocket_rule_over_http() -> None:
    """Refuse an HTTP request that Werkzeug matched to a WebSocket rule (a
    ``before_request`` function the extension installs first).

    Werkzeug matches ``websocket=True`` rules for any request carrying
    ``Connection: Upgrade`` and ``Upgrade: websocket`` (RFC 6455 §4.1), even
    when it arrives as plain HTTP: from a WSGI server (``flask run``,
    gunicorn) or an ASGI server without WebSocket support (uvicorn
    ``--ws none``), which cannot hand the view a connection. Handshakes served
    by :func:`serve_websocket` are marked by :func:`prepare_handshake_environ` and pass.

    :raise werkzeug.exceptions.BadRequest: for such a request (``400``, through
        the app's error handlers), naming the rule and what serves it.
    """
    req = request_ctx.request
    rule = req.url_rule
    if rule is None or not rule.websocket:
        return
    if req.environ.get(HANDSHAKE_KEY):
        return
    logger.info("refusing a WebSocket handshake for %s that came as plain HTTP", rule.rule)
    raise BadRequest(
        f"the WebSocket route {rule.rule} needs an ASGI server with WebSocket support "
        "(flask run-asgi, asgishift serve, uvicorn); this request came over plain HTTP"
    )


async def _deny(scope: Scope, send: Send, response: Response, environ: Environ) -> None:
    """Refuse a handshake with ``response`` if the server can send it, else close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = asgi_headers(response.get_wsgi_headers(environ).to_wsgi_list())
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status_code,
                "headers": headers,
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.get_data()})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": ""})


async def _refuse_with_error(
    app: Flask,
    pipeline: AsyncPipeline,
    scope: Scope,
    send: Send,
    environ: Environ,
    exc: Exception,
) -> Exception | None:
    """Refuse the handshake with the app's answer to ``exc`` (its error handlers,
    as for an HTTP request); an unhandled error is reported (:func:`_report`)
    and refused with the app's ``errorhandler(500)`` answer, or a plain 500.

    :return: the unhandled error (for the teardown functions), else ``None``.
    """
    error: Exception | None = None
    try:
        rv = await pipeline.handle_user_exception(exc)
    except Exception as unhandled:
        error = unhandled
        await _report(app, unhandled)
        try:
            rv = await pipeline.handle_server_error(unhandled)
        except Exception:
            logger.exception("the errorhandler(500) of Flask app %r failed", app.name)
            rv = ("Internal Server Error", 500)
    await _deny(scope, send, app.make_response(rv), environ)
    return error


async def _report(app: Flask, error: Exception) -> None:
    """Report a WebSocket view's unhandled error as Flask reports an HTTP view's
    (``Flask.handle_exception``): send ``got_request_exception``, which error
    reporting tools listen to, then log it with its traceback.

    :raise Exception: whatever a signal receiver raises, as in Flask.
    """
    await send_signal(got_request_exception, app, exception=error)
    app.log_exception((type(error), error, error.__traceback__))  # type: ignore[arg-type]


async def _run_view(view: Callable[..., Any], ws: WebSocket, view_args: dict[str, Any]) -> None:
    """Run a WebSocket view on the loop, ``async def`` or behind plain ``def`` decorators.

    A decorator written for Flask's ``ensure_sync`` (``login_required``)
    calls ``current_app.ensure_sync(view)(ws)`` synchronously; there the
    coroutine is made without being run (:func:`~._loop.awaited_by_caller`)
    and awaited here, on the loop that serves the connection.
    """
    if inspect.iscoroutinefunction(view):
        await view(ws, **view_args)
        return
    target = wrapped_coroutine_function(view)
    if target is None:
        await call(view, ws, **view_args)
        return
    with awaited_by_caller(target) as made:
        try:
            result = view(ws, **view_args)
        except BaseException:
            for coro in made:
                coro.close()
            raise
    try:
        if inspect.isawaitable(result):
            await result
        for coro in made:
            if coro is not result:  # made but not handed back: still the view to run
                await coro
    finally:
        for coro in made:
            coro.close()  # no-op for the ones that ran


async def serve_websocket(
    app: Flask,
    pipeline: AsyncPipeline,
    scope: Scope,
    environ: Environ,
    receive: Receive,
    send: Send,
) -> None:
    """Serve one WebSocket connection to a ``websocket=True`` rule of ``app``.

    :param environ: the environ built from ``scope``, prepared by
        :func:`prepare_handshake_environ` (so Werkzeug matches WebSocket rules only).
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    ctx = RequestContext(app, environ)
    error: BaseException | None = None
    ws = WebSocket(scope, receive, send)
    try:
        ctx.push()
        req = ctx.request
        try:
            # Sent for every handshake, as Flask's full_dispatch_request sends it
            # for every request.
            await send_signal(request_started, app)
            if req.routing_exception is not None:
                raise req.routing_exception
            rule = req.url_rule
            if rule is None or rule.endpoint is None or not rule.websocket:
                raise NotFound()
            rv = await pipeline.preprocess_request()
        except Exception as exc:
            error = await _refuse_with_error(app, pipeline, scope, send, environ, exc)
            return
        if rv is not None:
            await _deny(scope, send, app.make_response(rv), environ)
            return
        view = app.view_functions[rule.endpoint]
        try:
            await _run_view(view, ws, req.view_args or {})
        except WebSocketDisconnect:
            pass
        except Exception as exc:
            if ws.state is _CONNECTING:
                # Not accepted yet: a refusal, as from a before_request function
                # (abort(401) from Flask-Login's login_required around the view).
                ws.state = _CLOSED
                error = await _refuse_with_error(app, pipeline, scope, send, environ, exc)
            else:
                error = exc
                try:
                    await _report(app, exc)
                finally:
                    await ws.close(1011)
        await ws.close(1000)
    finally:
        ws.release()
        with tearing_down():
            ctx.pop(error)
