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

Parts of the bridge can be put back one at a time (:data:`PARTS`), to see
what each costs on its own: the adapter named ``floor+environ+pool`` in
``bench_app.wrap`` (so in ``inprocess_bench.py --adapters`` and
``instructions.py --floor-parts``) is the floor with those two parts.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import queue
import sys
import threading
from collections.abc import Callable, Collection
from typing import Any

from asgishift.bridge import BridgeOptions
from asgishift.bridge._environ import base_environ as bridge_base_environ
from asgishift.bridge._environ import build_environ
from asgishift.bridge._inbox import Inbox
from asgishift.bridge._pool import WorkerPool

Message = dict[str, Any]

#: The parts of ``WSGIToASGI`` the floor can take back, each as the bridge does it:
#: ``context``, the app runs in a copy of the request task's ``contextvars``
#: context; ``environ``, the environ is built from the scope
#: (``bridge/_environ.py``), not copied from a template; ``inbox``, the result
#: goes back through the bridge's ``Inbox`` (``bridge/_inbox.py``), not
#: ``call_soon_threadsafe``; ``pool``, the app runs on the bridge's
#: ``WorkerPool`` (``bridge/_pool.py``) with the bridge's default size, which
#: posts the result once the thread counts as free, not on one thread of its own.
PARTS = ("context", "environ", "inbox", "pool")


class FloorAdapter:
    """An ASGI app that runs ``wsgi_app`` on one worker thread, the cheapest way (GET only).

    :param wsgi_app: a PEP 3333 application.
    :param environ: the environ every request gets a copy of (``wsgi.input`` is replaced).
    :param parts: the parts of the bridge to put back (some of :data:`PARTS`).
    :raise ValueError: for a name not in :data:`PARTS`.
    """

    def __init__(self, wsgi_app: Any, environ: dict[str, Any], parts: Collection[str] = ()) -> None:
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown floor parts {sorted(unknown)}; use some of {PARTS}")
        self.wsgi_app = wsgi_app
        self.environ = environ
        self.context = "context" in parts
        self.scope_environ = bridge_base_environ(sys.stderr, None) if "environ" in parts else None
        self.use_inbox = "inbox" in parts
        self.inbox: Inbox | None = None
        self.jobs: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        defaults = BridgeOptions()
        self.pool = (
            WorkerPool(defaults.max_workers, defaults.max_queue) if "pool" in parts else None
        )
        if self.pool is None:
            threading.Thread(target=self._work, daemon=True, name="w2a-floor").start()

    def _work(self) -> None:
        while True:
            waiter, environ = self.jobs.get()
            self._job(waiter, environ)()

    def _job(self, waiter: _Waiter, environ: dict[str, Any]) -> Callable[[], None]:
        """Call the app; return the step that hands the result to the loop."""
        recorder = _StartResponse()
        if self.context:
            body = contextvars.copy_context().run(self._call, environ, recorder)
        else:
            body = self._call(environ, recorder)
        outcome = (recorder.started, body)
        inbox = self.inbox
        if inbox is not None:
            return lambda: inbox.post(waiter, (outcome,))
        return lambda: waiter.loop.call_soon_threadsafe(waiter.future.set_result, outcome)

    def _call(self, environ: dict[str, Any], recorder: _StartResponse) -> bytes:
        result = self.wsgi_app(environ, recorder)
        body = b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        if self.scope_environ is not None:
            environ = build_environ(scope, self.scope_environ)
        else:
            environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(b"")
        loop = asyncio.get_running_loop()
        if self.use_inbox and (self.inbox is None or self.inbox.loop is not loop):
            self.inbox = Inbox(loop)
        waiter = _Waiter(loop)
        if self.pool is not None:
            self.pool.submit(lambda: self._job(waiter, environ))
        else:
            self.jobs.put((waiter, environ))
        (status, headers), body = await waiter.future
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": int(status[:3]), "headers": raw})
        await send({"type": "http.response.body", "body": body})


class _Waiter:
    """The loop-side end of one request: a future, and the inbox's ``wake`` hook."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()

    def wake(self, item: tuple[Any, ...]) -> None:
        """Take the worker's outcome (the inbox calls it on the loop)."""
        self.future.set_result(item[0])


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
