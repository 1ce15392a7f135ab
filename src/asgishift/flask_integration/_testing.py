"""An async test client for Flask apps served through the extension.

``async with ext.test_client() as client:`` runs the ASGI lifespan (so
``before_serving`` hooks run), sends HTTP requests through
:class:`httpx.ASGITransport` (so async views run on the test's own loop, as
on a server) and opens WebSocket connections with :meth:`AsyncTestClient.websocket`.
Nothing listens on a socket; use a real server for end-to-end tests.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import Request

from asgishift._types import ASGIApp, Message
from asgishift.flask_integration._websocket import WebSocketDisconnect

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncTestClient", "TestWebSocket", "WebSocketRejected"]


class WebSocketRejected(Exception):
    """The app refused the WebSocket handshake.

    :param status: the HTTP status it answered (403 when it only closed).
    :param body: the response body, ``b""`` when it only closed.
    """

    def __init__(self, status: int, body: bytes = b"") -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class _Lifespan:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self._task = asyncio.ensure_future(self._app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        reply = await self._from_app.get()
        if reply["type"] != "lifespan.startup.complete":
            await self._task
            raise RuntimeError(f"app startup failed: {reply.get('message', '')}")

    async def shutdown(self) -> None:
        if self._task is None:
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        reply = await self._from_app.get()
        await self._task
        if reply["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"app shutdown failed: {reply.get('message', '')}")


class TestWebSocket:
    """A WebSocket connection to the app under test (ASGI WebSocket spec, client side).

    Use it as ``async with client.websocket("/ws") as ws:``; :meth:`send`
    takes ``str`` (text) or ``bytes`` (binary), :meth:`receive` returns them.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self._app = app
        self._scope = scope
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        #: The close code the app sent, once it closed.
        self.close_code: int | None = None
        #: The subprotocol the app accepted.
        self.subprotocol: str | None = None

    async def __aenter__(self) -> TestWebSocket:
        self._task = asyncio.ensure_future(
            self._app(self._scope, self._to_app.get, self._from_app.put)
        )
        await self._to_app.put({"type": "websocket.connect"})
        message = await self._next()
        if message["type"] == "websocket.accept":
            self.subprotocol = message.get("subprotocol")
            return self
        if message["type"] == "websocket.http.response.start":
            status = int(message["status"])
            body = b""
            while True:
                part = await self._next()
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            await self._task
            raise WebSocketRejected(status, body)
        await self._task
        raise WebSocketRejected(403)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _next(self) -> Message:
        assert self._task is not None
        getter = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        self._task.result()  # the app raised: re-raise here
        raise WebSocketDisconnect(1006, "the app returned without closing")

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app."""
        key = "text" if isinstance(data, str) else "bytes"
        await self._to_app.put({"type": "websocket.receive", key: data})

    async def receive(self) -> str | bytes:
        """Return the app's next message.

        :raise WebSocketDisconnect: when the app closed the connection.
        """
        message = await self._next()
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            raise WebSocketDisconnect(self.close_code, message.get("reason") or "")
        if message.get("text") is not None:
            return str(message["text"])
        return bytes(message.get("bytes") or b"")

    async def close(self, code: int = 1000) -> None:
        """Disconnect (``websocket.disconnect``) and wait for the app to finish."""
        if self._task is None:
            return
        task, self._task = self._task, None
        if not task.done():
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        await task


class AsyncTestClient:
    """An async client for the app's ASGI application, like Quart's ``test_client``.

    :param app: the ASGI application (``ext.asgi_app``).
    :param base_url: scheme and host of the requests.
    :raise ImportError: when httpx is not installed (``pip install httpx``); the
        extension itself does not need it, only this client.

    ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``, ``options`` and
    ``request`` are :class:`httpx.AsyncClient`'s; cookies persist between
    requests and are sent with WebSocket handshakes.
    """

    __test__ = False

    def __init__(self, app: ASGIApp, base_url: str = "http://localhost") -> None:
        self.app = app
        self.base_url = base_url
        try:
            import httpx
        except ImportError as exc:
            raise ImportError(
                "asgishift's async Flask test client needs httpx: pip install httpx"
            ) from exc
        self.http: httpx.AsyncClient = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url
        )
        self._lifespan = _Lifespan(app)
        self.get = self.http.get
        self.post = self.http.post
        self.put = self.http.put
        self.patch = self.http.patch
        self.delete = self.http.delete
        self.head = self.http.head
        self.options = self.http.options
        self.request = self.http.request

    async def __aenter__(self) -> AsyncTestClient:
        await self._lifespan.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()
        await self._lifespan.shutdown()

    def _cookie_header(self, path: str) -> str | None:
        """Return the ``Cookie`` header a browser sends with a handshake to ``path``.

        The cookie jar picks the cookies by domain, path, ``Secure`` and expiry
        (RFC 6265 §5.4), as it does for the client's HTTP requests; a ``wss``
        handshake counts as secure, like ``https``.
        """
        probe = Request(self.base_url.rstrip("/") + path)
        self.http.cookies.jar.add_cookie_header(probe)
        return probe.get_header("Cookie")

    def websocket(
        self,
        path: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
    ) -> TestWebSocket:
        """Return a connection to open with ``async with``.

        :param path: the path, with an optional query string.
        :param subprotocols: offered subprotocols.
        :param headers: extra request headers.
        :raise WebSocketRejected: on entering, when the app refuses the handshake.
        """
        url = urlsplit(path)
        base = urlsplit(self.base_url)
        # The handshake's headers as a browser sends them and ASGI servers pass
        # them on (RFC 6455 §4.1).
        raw = [
            (b"host", base.netloc.encode()),
            (b"connection", b"Upgrade"),
            (b"upgrade", b"websocket"),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-key", base64.b64encode(os.urandom(16))),
        ]
        cookie = self._cookie_header(url.path or "/")
        if cookie:
            raw.append((b"cookie", cookie.encode("latin-1")))
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if base.scheme == "https" else "ws",
            "path": url.path or "/",
            "raw_path": (url.path or "/").encode(),
            "query_string": url.query.encode(),
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": (base.hostname or "localhost", base.port or 80),
            "subprotocols": list(subprotocols),
            "extensions": {"websocket.http.response": {}},
        }
        return TestWebSocket(self.app, scope)
