"""The least a WSGI→ASGI adapter with a worker thread can do: a floor to measure against.

Not an adapter anyone should use. It keeps the architecture of
``asgishift.bridge.WSGIToASGI`` (the loop hands each request to a worker thread
through a ``queue.SimpleQueue``; the worker calls the WSGI app and hands the
result back with ``call_soon_threadsafe``) and drops everything else: one worker
thread, no request body (``wsgi.input`` is empty), an environ copied from a
fixed template instead of built from the scope, the whole response collected
before it is sent, and no checks of what the app returns.

``inprocess_bench.py --adapters asgishift,floor`` times it beside the bridge:
the distance is what the bridge's own rules, streaming and pool cost.
"""

from __future__ import annotations

import asyncio
import io
import queue
import threading
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]


class FloorAdapter:
    """An ASGI app that runs ``wsgi_app`` on one worker thread, the cheapest way (GET only).

    :param wsgi_app: a PEP 3333 application.
    :param environ: the environ every request gets a copy of (``wsgi.input`` is replaced).
    """

    def __init__(self, wsgi_app: Any, environ: dict[str, Any]) -> None:
        self.wsgi_app = wsgi_app
        self.environ = environ
        self.jobs: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        threading.Thread(target=self._work, daemon=True, name="w2a-floor").start()

    def _work(self) -> None:
        while True:
            loop, future, environ = self.jobs.get()
            recorder = _StartResponse()
            result = self.wsgi_app(environ, recorder)
            body = b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()
            loop.call_soon_threadsafe(future.set_result, (recorder.started, body))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(b"")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.jobs.put((loop, future, environ))
        (status, headers), body = await future
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": int(status[:3]), "headers": raw})
        await send({"type": "http.response.body", "body": body})


class _StartResponse:
    """A ``start_response`` that keeps what it was given (no checks)."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started: tuple[str, list[tuple[str, str]]] = ("500 Internal Server Error", [])

    def __call__(self, status: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
        self.started = (status, headers)
        return self.write

    def write(self, data: bytes) -> None:
        """Ignore ``write()`` (the floor's apps do not use it)."""
