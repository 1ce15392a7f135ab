"""The least an ASGI→WSGI adapter with one loop thread can do: a floor to measure against.

Not an adapter anyone should use. It keeps the architecture of
``asgishift.bridge.ASGIToWSGI`` (one event loop in its own thread, the WSGI
thread hands the request over and waits on its own pipe for the response, as
the bridge's ``_outbox.PipeOutbox`` does; a ``queue.SimpleQueue`` woke it while
the loop thread held the GIL, which cost the floor 4-9 µs a request) and drops
everything else: no checks of the app's messages, no request body, no
streaming (the response is collected whole), no lifespan, no timeouts, no
error handling, and a scope with only the keys a Starlette hello route reads.

``asgi_to_wsgi_bench.py --floor`` serves it beside the real adapters, so the
distance between ``ASGIToWSGI`` and this floor is what the bridge's own rules
and streaming cost, measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_EMPTY_BODY = {"type": "http.request", "body": b"", "more_body": False}
_pipes = threading.local()  # each WSGI thread's wake-up pipe: (read end, write end)


def _the_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            try:
                import uvloop

                _loop = uvloop.new_event_loop()
            except ImportError:
                _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, daemon=True).start()
    return _loop


def floor_adapter(asgi_app: Any) -> Any:
    """Return a WSGI callable that runs ``asgi_app`` the cheapest way (GET, no body)."""

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        loop = _loop or _the_loop()
        pipe = getattr(_pipes, "pipe", None)
        if pipe is None:
            pipe = _pipes.pipe = os.pipe()
        read_fd, write_fd = pipe
        path = environ["PATH_INFO"]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": environ["REQUEST_METHOD"],
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": None,
            "server": None,
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return _EMPTY_BODY

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def run() -> None:
            await asgi_app(scope, receive, send)
            os.write(write_fd, b"\0")  # releases the GIL before the wake-up

        loop.call_soon_threadsafe(loop.create_task, run())
        os.read(read_fd, 1)
        start, body = sent
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
        start_response(f"{start['status']} OK", headers)
        return [body["body"]]

    return application
