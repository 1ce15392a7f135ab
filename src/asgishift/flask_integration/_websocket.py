"""WebSocket routes for Flask, served on the event loop (ASGI WebSocket spec).

A route is a Werkzeug rule with ``websocket=True`` (``@app.route("/ws/<room>",
websocket=True)``, on blueprints too, or :meth:`ASGI.websocket`), so
converters, blueprints and ``url_for`` work. Its view is ``async def
view(ws, **view_args)`` and runs with Flask's request context pushed: cookies,
``session`` (read-only: no response carries it back), ``g`` and
``current_app`` work, and ``before_request`` functions run first. One that
returns a response refuses the handshake: the response is sent when the server
offers the ``websocket.http.response`` extension, otherwise the connection is
closed before it is accepted (the server answers ``403``).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from flask.ctx import RequestContext
from werkzeug.exceptions import HTTPException, NotFound

from asgishift._types import Environ, Receive, Scope, Send
from asgishift.flask_integration._pipeline import call
from asgishift.flask_integration._wire import asgi_headers

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Response

    from asgishift.flask_integration._pipeline import AsyncPipeline

logger = logging.getLogger("asgishift.flask")

__all__ = ["WebSocket", "WebSocketDisconnect", "serve_websocket"]


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
        message = await self._receive()
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
        :raise WebSocketDisconnect: when the connection is closed.
        """
        if self.state is _CONNECTING:
            await self.accept()
        if self.state is _CLOSED:
            raise WebSocketDisconnect(1006, "the connection is closed")
        if isinstance(data, str):
            await self._send({"type": "websocket.send", "text": data})
        elif isinstance(data, (bytes, bytearray, memoryview)):
            await self._send({"type": "websocket.send", "bytes": bytes(data)})
        else:
            raise TypeError(f"WebSocket.send takes str or bytes, got {type(data).__name__}")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (``websocket.close``); closing twice does nothing.

        Before the handshake is accepted this refuses it (the server answers 403).

        :param code: the close code (RFC 6455 §7.4; 1000 is a normal close).
        :param reason: a short text sent with the close frame.
        """
        if self.state is _CLOSED:
            return
        self.state = _CLOSED
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


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


async def serve_websocket(
    app: Flask,
    pipeline: AsyncPipeline,
    scope: Scope,
    environ: Environ,
    receive: Receive,
    send: Send,
) -> None:
    """Serve one WebSocket connection to a ``websocket=True`` rule of ``app``.

    :param environ: the environ built from ``scope`` (``wsgi.url_scheme`` is
        ``ws`` or ``wss``, so Werkzeug matches WebSocket rules only).
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
            if req.routing_exception is not None:
                raise req.routing_exception
            rule = req.url_rule
            if rule is None or rule.endpoint is None or not rule.websocket:
                raise NotFound()
            rv = await pipeline.preprocess_request()
        except HTTPException as exc:
            await _deny(scope, send, exc.get_response(environ), environ)  # type: ignore[arg-type]
            return
        except Exception as exc:
            error = exc
            app.log_exception((type(exc), exc, exc.__traceback__))  # type: ignore[arg-type]
            await _deny(scope, send, app.make_response(("Internal Server Error", 500)), environ)
            return
        if rv is not None:
            await _deny(scope, send, app.make_response(rv), environ)
            return
        view = app.view_functions[rule.endpoint]
        try:
            await call(view, ws, **(req.view_args or {}))
        except WebSocketDisconnect:
            pass
        except Exception as exc:
            error = exc
            app.log_exception((type(exc), exc, exc.__traceback__))  # type: ignore[arg-type]
            if ws.state is _CONNECTING:
                await _deny(scope, send, app.make_response(("Internal Server Error", 500)), environ)
                ws.state = _CLOSED
            else:
                await ws.close(1011)
        await ws.close(1000)
    finally:
        ctx.pop(error)
