"""Apps for the ``asgishift serve`` tests; each reports what it received as JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.validate import validator

# WSGI ------------------------------------------------------------------------


def _echo_environ(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps(
        {
            "interface": "wsgi",
            "pid": os.getpid(),
            "SCRIPT_NAME": environ.get("SCRIPT_NAME", ""),
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", ""),
            "url_scheme": environ["wsgi.url_scheme"],
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


#: PEP 3333 checked by wsgiref's validator. The validator's own wrapper takes
#: ``*args``, so it cannot be classified: see ``validated_only`` below.
_validated = validator(_echo_environ)


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Echo the environ, through wsgiref.validate (detected as WSGI: two parameters)."""
    return _validated(environ, start_response)


#: The validator's ``lint_app(*args, **kw)``: needs ``--interface wsgi``.
validated_only = validator(_echo_environ)


def endless_events(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Stream server-sent events for ever: a response only the server can end."""
    start_response("200 OK", [("Content-Type", "text/event-stream")])

    def events() -> Iterable[bytes]:
        while True:
            yield b"data: tick\n\n"
            time.sleep(0.05)

    return events()


def report_shutdown() -> None:
    """An ``--on-shutdown`` hook: say in the log that the lifespan shutdown ran."""
    print("on-shutdown hook ran", file=sys.stderr, flush=True)


def report_pid_startup() -> None:
    """An ``--on-startup`` hook naming its process: one line per worker."""
    print(f"startup hook ran in {os.getpid()}", file=sys.stderr, flush=True)


def report_pid_shutdown() -> None:
    """An ``--on-shutdown`` hook naming its process: one line per worker."""
    print(f"shutdown hook ran in {os.getpid()}", file=sys.stderr, flush=True)


def failing_hook() -> None:
    """An ``--on-startup`` hook that fails, as one whose database is down does."""
    raise RuntimeError("database unreachable")


def create_wsgi_app() -> Any:
    """Return :func:`wsgi_app`; the target of ``--factory``."""
    return wsgi_app


# ASGI ------------------------------------------------------------------------


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo the scope (ASGI 3), completing lifespan when a server runs it."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps(
        {
            "interface": "asgi",
            "pid": os.getpid(),
            "type": scope["type"],
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan_state_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer with what its lifespan startup put in the state, and log its shutdown.

    Its startup stores ``started_in: <pid>`` in ``scope["state"]`` (ASGI lifespan
    spec, "Lifespan State"); each request answers the copy it gets as JSON.
    """
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_in"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print(f"app lifespan shutdown in {os.getpid()}", file=sys.stderr, flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps(scope.get("state", {})).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


#: Not an application at all, for the "not callable" error.
not_an_app = {"hello": "world"}


async def blocking_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Block the event loop with ``time.sleep`` (what ``--detect-blocking`` must report)."""
    if scope["type"] == "http":
        import time

        time.sleep(0.25)  # noqa: ASYNC251 - the blocking call under test
    await asgi_app(scope, receive, send)
