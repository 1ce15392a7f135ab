"""In-process micro-benchmark of the bridge's per-request overhead (not a test).

Run: ``.venv/bin/python tests/bridge/microbench.py [N] [--cpu]``. It times N sequential
requests through ``WSGIToASGI`` with trivial ``receive``/``send`` callables
against calling the same WSGI app directly, for a plain WSGI app and for Flask,
and prints µs per request. a2wsgi and asgiref are measured the same way when
installed, for comparison.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from asgishift.bridge import WSGIToASGI

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


def plain_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer ``Hello, World!`` with a Content-Length."""
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def flask_app() -> Any:
    """Return a Flask hello-world app."""
    import flask

    app = flask.Flask("bench")

    @app.route("/")
    def hello() -> str:
        return "Hello, World!"

    return app


def direct(app: Any, n: int) -> float:
    """Return µs per request calling the WSGI app directly.

    The environ is the one the bridge builds for :data:`SCOPE`, made once and
    copied per call, so the difference to :func:`through` is the bridge's cost.
    """
    import io

    from asgishift.bridge._environ import base_environ, build_environ
    from asgishift.bridge._files import ErrorStream, FileWrapper

    template = build_environ(SCOPE, base_environ(ErrorStream(), FileWrapper))

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    start = CLOCK()
    for _ in range(n):
        environ = template.copy()
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        b"".join(result)
        close = getattr(result, "close", None)
        if close:
            close()
    return (CLOCK() - start) / n * 1e6


def through(asgi_app: Any, n: int) -> float:
    """Return µs per request through an ASGI app with trivial receive/send."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def main() -> float:
        for _ in range(200):  # warm up threads and caches
            await asgi_app(dict(SCOPE), receive, send)
        start = CLOCK()
        for _ in range(n):
            await asgi_app(dict(SCOPE), receive, send)
        return (CLOCK() - start) / n * 1e6

    if LOOP == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


LOOP = "asyncio"
#: ``--cpu`` measures process CPU time (all threads), steadier than wall time
#: on a machine shared with other work; the default is wall time.
CLOCK = time.process_time if "--cpu" in sys.argv else time.perf_counter


def main() -> None:
    """Print the µs/request table for asyncio's loop and, if installed, uvloop."""
    global LOOP
    args = [a for a in sys.argv[1:] if a != "--cpu"]
    n = int(args[0]) if args else 5000
    for LOOP in ("asyncio", "uvloop"):
        try:
            if LOOP == "uvloop":
                import uvloop  # noqa: F401
        except ImportError:
            continue
        print(f"-- {LOOP} loop, {n} sequential requests")
        table(n)


def table(n: int) -> None:
    """Print one µs/request line per app."""
    for name, app in (("plain", plain_app), ("flask", flask_app())):
        base = direct(app, n)
        ours = through(WSGIToASGI(app), n)
        line = f"{name:6} direct {base:7.1f} µs  asgishift {ours:7.1f} µs (+{ours - base:.1f})"
        try:
            from a2wsgi import WSGIMiddleware

            a2 = through(WSGIMiddleware(app), n)
            line += f"  a2wsgi {a2:7.1f} µs (+{a2 - base:.1f})"
        except ImportError:
            pass
        try:
            from asgiref.wsgi import WsgiToAsgi

            ar = through(WsgiToAsgi(app), n)
            line += f"  asgiref {ar:7.1f} µs (+{ar - base:.1f})"
        except ImportError:
            pass
        print(line)


if __name__ == "__main__":
    main()
