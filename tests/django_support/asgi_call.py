"""Call an ASGI app in process, without a server (scope-level tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """What the app sent for one HTTP request."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """Return the first header called ``name`` (case-insensitive), decoded."""
        for key, value in self.headers:
            if key.decode().lower() == name.lower():
                return value.decode()
        return None


def http_scope(
    method: str, path: str, headers: Sequence[tuple[str, str]] = (), state: Any = None
) -> dict[str, Any]:
    """Return an ASGI 3 HTTP scope for ``method path`` from 127.0.0.1."""
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


async def call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    state: Any = None,
) -> Reply:
    """Send one request to ``app`` and collect the response messages."""
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    await app(http_scope(method, path, headers, state), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(start["status"], list(start.get("headers", [])), data, sent)


class LifespanDriver:
    """Drive an app's ``lifespan`` scope: :meth:`startup`, then :meth:`shutdown`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> dict[str, Any]:
        """Send ``lifespan.startup`` and return the app's answer message."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        return await asyncio.wait_for(self._from_app.get(), 10)

    async def shutdown(self) -> dict[str, Any]:
        """Send ``lifespan.shutdown`` and return the app's answer message."""
        await self._to_app.put({"type": "lifespan.shutdown"})
        answer = await asyncio.wait_for(self._from_app.get(), 10)
        assert self._task is not None
        await asyncio.wait_for(self._task, 10)
        return answer


class LeavingClient:
    """A client's ``receive``: an empty request body, then ``http.disconnect`` once
    :meth:`leave` is called (ASGI HTTP spec, "Request", "Disconnect")."""

    def __init__(self) -> None:
        self._requested = False
        self._left = asyncio.Event()

    @property
    def left(self) -> bool:
        """Whether :meth:`leave` was called."""
        return self._left.is_set()

    def leave(self) -> None:
        """Make the pending and later ``receive()`` calls return ``http.disconnect``."""
        self._left.set()

    async def receive(self) -> dict[str, Any]:
        """Return the request's empty body first, then wait for :meth:`leave`."""
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._left.wait()
        return {"type": "http.disconnect"}
