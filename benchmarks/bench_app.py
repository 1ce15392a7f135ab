"""The applications every benchmark serves, chosen through environment variables.

Servers import ``bench_app:app``; which WSGI app and which bridge sit behind
that name is read from the environment when the module is imported, so every
server is started the same way and only the environment differs:

``BENCH_APP``
    ``flask`` (a Flask app) or ``plain`` (a bare PEP 3333 callable). Both
    answer ``/`` with ``Hello, World!``, ``/sleep`` by blocking 0.1 s, and the
    plain app also has ``/upload`` (drains ``wsgi.input``) and
    ``/download?size=N`` (streams N bytes in 64 KiB chunks) for the memory
    benchmark.
``BENCH_ADAPTER``
    ``asgishift``, ``a2wsgi``, ``asgiref`` (ASGI apps), ``uvicorn-wsgi``
    (uvicorn's deprecated adapter, a control for the memory benchmark) or
    ``wsgi`` (the WSGI app itself, for gunicorn).
``BENCH_WORKERS``
    thread-pool size for the bridges that take one (``max_workers`` of
    asgishift, ``workers`` of a2wsgi); unset means the bridge's default.
    asgiref's ``WsgiToAsgi`` has no such setting: it runs every request on
    one thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

HELLO = b"Hello, World!"
SLEEP_SECONDS = 0.1
CHUNK = 64 * 1024


def plain_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer like the Flask app, without a framework (PEP 3333 only)."""
    path = environ.get("PATH_INFO", "/")
    if path == "/sleep":
        time.sleep(SLEEP_SECONDS)
    elif path == "/upload":
        stream = environ["wsgi.input"]
        total = 0
        while True:
            piece = stream.read(CHUNK)
            if not piece:
                break
            total += len(piece)
        body = str(total).encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    elif path == "/download":
        size = int(environ.get("QUERY_STRING", "size=0").partition("=")[2] or 0)
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
        )
        return _stream(size)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def _stream(size: int) -> Iterator[bytes]:
    block = b"x" * CHUNK
    while size > 0:
        piece = block if size >= CHUNK else block[:size]
        size -= len(piece)
        yield piece


def make_flask_app() -> WSGIApp:
    """Build the Flask hello-world app with a ``/sleep`` view."""
    from flask import Flask

    flask_app = Flask("bench")

    @flask_app.route("/")
    def hello() -> str:
        return "Hello, World!"

    @flask_app.route("/sleep")
    def sleep() -> str:
        time.sleep(SLEEP_SECONDS)
        return "slept"

    return flask_app


def wrap(wsgi_app: Any, adapter: str, workers: int | None) -> Any:
    """Return ``wsgi_app`` behind the bridge named ``adapter``.

    :param wsgi_app: a PEP 3333 application (typed loosely: each bridge
        declares its own WSGI aliases).
    :param adapter: ``asgishift``, ``a2wsgi``, ``asgiref``, ``wsgi`` (no bridge) or
        ``floor`` (``w2a_floor.py``, in-process benchmarks only; ``floor+PART+...``
        puts parts of the bridge back, see ``w2a_floor.PARTS``).
    :param workers: thread-pool size, or ``None`` for the bridge's default.
    :raise ValueError: for an unknown adapter name.
    """
    if adapter == "wsgi":
        return wsgi_app
    if adapter == "asgishift":
        from asgishift.bridge import WSGIToASGI

        return (
            WSGIToASGI(wsgi_app) if workers is None else WSGIToASGI(wsgi_app, max_workers=workers)
        )
    if adapter == "a2wsgi":
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(wsgi_app) if workers is None else WSGIMiddleware(wsgi_app, workers)
    if adapter == "floor" or adapter.startswith("floor+"):
        # Not a bridge: the least an adapter of WSGIToASGI's architecture does
        # (w2a_floor.py); "floor+environ+pool" puts those parts of the bridge back.
        from inprocess_bench import base_environ
        from w2a_floor import FloorAdapter

        return FloorAdapter(wsgi_app, base_environ(), adapter.split("+")[1:])
    if adapter == "asgiref":
        from asgiref.wsgi import WsgiToAsgi

        return WsgiToAsgi(wsgi_app)  # type: ignore[no-untyped-call]
    if adapter == "uvicorn-wsgi":
        # uvicorn's deprecated built-in adapter, which buffers whole bodies: a
        # control showing that memory_bench.py notices a bridge that buffers.
        import warnings

        from uvicorn.middleware.wsgi import _WSGIMiddleware

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return _WSGIMiddleware(wsgi_app, workers or 10)
    raise ValueError(
        f"unknown BENCH_ADAPTER {adapter!r}: use asgishift, a2wsgi, asgiref, uvicorn-wsgi or wsgi"
    )


def _from_env() -> Any:
    kind = os.environ.get("BENCH_APP", "plain")
    base = make_flask_app() if kind == "flask" else plain_app
    workers_text = os.environ.get("BENCH_WORKERS", "")
    return wrap(
        base, os.environ.get("BENCH_ADAPTER", "wsgi"), int(workers_text) if workers_text else None
    )


app = _from_env()
