"""A scripted fake ASGI server for in-process tests of ``WSGIToASGI``.

:class:`FakeServer` plays the server's half of one ASGI HTTP connection: it
hands out scripted ``http.request`` messages, then blocks ``receive()`` until
the test (or ``disconnect_after_sends``) disconnects the client, and records
every message the app sends. Every run has a deadline so a hanging bridge
fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from asgishift._types import Message

DEADLINE = 10.0  # seconds any single in-process run may take


def make_scope(**overrides: Any) -> dict[str, Any]:
    """Return a uvicorn-like HTTP scope for ``GET /``, updated with ``overrides``."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50123),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    scope.update(overrides)
    return scope


def body_messages(*chunks: bytes) -> list[Message]:
    """Return ``http.request`` messages carrying ``chunks``; only the last has more_body False."""
    if not chunks:
        return [{"type": "http.request", "body": b"", "more_body": False}]
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


class FakeServer:
    """Drive one request: scripted ``receive``, recorded ``send``.

    :param requests: the messages ``receive()`` returns first, in order.
    :param disconnect_after_sends: report ``http.disconnect`` once this many
        messages were sent (``None``: only when :meth:`disconnect` is called).
    :param on_send: an async hook awaited with each message before it is recorded;
        it may raise to simulate a failing ``send()``.
    """

    def __init__(
        self,
        requests: Iterable[Message] | None = None,
        *,
        disconnect_after_sends: int | None = None,
        on_send: Callable[[Message], Awaitable[None]] | None = None,
    ) -> None:
        self.requests = list(requests if requests is not None else body_messages())
        self.disconnect_after_sends = disconnect_after_sends
        self.on_send = on_send
        self.sent: list[Message] = []
        self.receive_calls = 0
        self.raised: BaseException | None = None
        self._disconnected: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._disconnected is None:
            self._disconnected = asyncio.Event()
        return self._disconnected

    def disconnect(self) -> None:
        """Make pending and future ``receive()`` calls return ``http.disconnect``."""
        self._event().set()

    async def receive(self) -> Message:
        """Return the next scripted message, then wait for the disconnect."""
        self.receive_calls += 1
        if self.requests:
            return self.requests.pop(0)
        await self._event().wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Record ``message`` (after the ``on_send`` hook)."""
        if self.on_send is not None:
            await self.on_send(message)
        self.sent.append(message)
        limit = self.disconnect_after_sends
        if limit is not None and len(self.sent) >= limit:
            self.disconnect()

    # Convenience views of what was sent.
    @property
    def start(self) -> Message:
        """Return the ``http.response.start`` message."""
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return starts[0]

    @property
    def status(self) -> int:
        """Return the response status code."""
        return int(self.start["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Return the response headers (last value wins)."""
        return dict(self.start["headers"])

    @property
    def body_parts(self) -> list[bytes]:
        """Return the non-empty ``http.response.body`` bodies in order."""
        return [
            m.get("body", b"")
            for m in self.sent
            if m["type"] == "http.response.body" and m.get("body", b"")
        ]

    @property
    def body(self) -> bytes:
        """Return the whole response body."""
        return b"".join(self.body_parts)

    @property
    def complete(self) -> bool:
        """Return whether the last message ended the response."""
        if not self.sent:
            return False
        last = self.sent[-1]
        if last["type"] == "http.response.pathsend":
            return True
        return last["type"] == "http.response.body" and not last.get("more_body", False)


def run(
    app: Any,
    scope: dict[str, Any],
    server: FakeServer,
    *,
    raises: type[BaseException] | None = None,
) -> FakeServer:
    """Run one request through ``app`` on a fresh event loop, with a deadline.

    :param raises: the exception type the ASGI call must raise (the app's
        exception passed on to the server); it is kept in ``server.raised``.
        ``None``: the call must return normally.
    """

    async def main() -> None:
        await asyncio.wait_for(app(scope, server.receive, server.send), DEADLINE)

    if raises is None:
        asyncio.run(main())
        return server
    try:
        asyncio.run(main())
    except raises as exc:
        server.raised = exc
    else:
        raise AssertionError(f"the ASGI call did not raise {raises.__name__}")
    return server


def request(
    app: Any, *chunks: bytes, raises: type[BaseException] | None = None, **scope: Any
) -> FakeServer:
    """Send one request with body ``chunks`` and return the finished :class:`FakeServer`."""
    return run(app, make_scope(**scope), FakeServer(body_messages(*chunks)), raises=raises)


class Gate:
    """A thread-safe gate a WSGI app can wait at, with a deadline."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def wait(self) -> None:
        """Mark the gate reached and block until released (at most ``DEADLINE``)."""
        self.entered.set()
        if not self.released.wait(DEADLINE):
            raise TimeoutError("the test never released the gate")

    async def until_entered(self) -> None:
        """Wait (without blocking the loop) until a thread reached the gate."""
        ok = await asyncio.to_thread(self.entered.wait, DEADLINE)
        assert ok, "no thread reached the gate in time"


def memory_growth(call: Callable[[Any], object], inputs: Iterable[Any], times: int) -> int:
    """Return how many bytes stay allocated after ``call`` ran ``times`` over ``inputs``.

    A leak test for C code: a first pass fills the caches, then ``tracemalloc``
    measures ``times`` more passes. ``call`` may raise; its exceptions are dropped.
    """
    inputs = list(inputs)

    def passes(count: int) -> None:
        for _ in range(count):
            for value in inputs:
                with contextlib.suppress(Exception):
                    call(value)

    passes(50)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        passes(times)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@contextlib.contextmanager
def counted_fallbacks(
    configure: Callable[[Callable[..., Any]], object], definition: Callable[..., Any]
) -> Iterator[list[tuple[Any, ...]]]:
    """Count the calls a C extension hands back to its Python ``definition``.

    :param configure: gives the extension the function it hands calls to.
    :return: (as the context's value) the arguments of each call handed back;
        the extension gets ``definition`` again on exit.
    """
    calls: list[tuple[Any, ...]] = []

    def counting(*args: Any) -> Any:
        calls.append(args)
        return definition(*args)

    configure(counting)
    try:
        yield calls
    finally:
        configure(definition)
