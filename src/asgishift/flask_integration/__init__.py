"""Serve a Flask app on an ASGI server with async views on the server's loop,
WebSocket routes and lifespan hooks.

>>> from asgishift.flask_integration import ASGI
>>> asgi_app = ASGI(app)  # doctest: +SKIP

See the docs page "Migrating a Flask app" (``docs/flask.md``). This package
imports Flask; ``import asgishift`` does not import it.
"""

from __future__ import annotations

from asgishift.flask_integration._app import FlaskASGIApp
from asgishift.flask_integration._extension import ASGI, EXTENSION_KEY, ASGIState
from asgishift.flask_integration._lifespan import ServingHooks, ServingPhase
from asgishift.flask_integration._testing import AsyncTestClient, TestWebSocket, WebSocketRejected
from asgishift.flask_integration._websocket import WebSocket, WebSocketDisconnect, WebSocketState

__all__ = [
    "ASGI",
    "EXTENSION_KEY",
    "ASGIState",
    "AsyncTestClient",
    "FlaskASGIApp",
    "ServingHooks",
    "ServingPhase",
    "TestWebSocket",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRejected",
    "WebSocketState",
]

for _obj in (
    ASGI,
    ASGIState,
    AsyncTestClient,
    FlaskASGIApp,
    ServingHooks,
    ServingPhase,
    TestWebSocket,
    WebSocket,
    WebSocketDisconnect,
    WebSocketRejected,
    WebSocketState,
):
    _obj.__module__ = "asgishift.flask_integration"
del _obj
