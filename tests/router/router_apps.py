"""Small ASGI and WSGI apps for the router tests; each says who answered."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any
from wsgiref.validate import validator

#: Lifespan events, in the order they happened (in-process tests read it).
EVENTS: list[str] = []


def _echo_environ(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps(
        {
            "app": "wsgi",
            "SCRIPT_NAME": environ.get("SCRIPT_NAME", ""),
            "PATH_INFO": environ.get("PATH_INFO", ""),
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


_validated = validator(_echo_environ)


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Echo SCRIPT_NAME and PATH_INFO, checked by wsgiref.validate."""
    return _validated(environ, start_response)


def make_asgi(name: str, *, fail_startup: str | None = None, lifespan: bool = True) -> Any:
    """Return an ASGI app answering ``{"app": name, "path", "root_path"}`` and echoing websockets.

    :param fail_startup: answer ``lifespan.startup.failed`` with this message.
    :param lifespan: ``False`` raises on the lifespan scope (no lifespan support).
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            if not lifespan:
                raise ValueError(f"{name} does not do lifespan")
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    EVENTS.append(f"{name} startup")
                    if fail_startup is not None:
                        await send({"type": "lifespan.startup.failed", "message": fail_startup})
                        return
                    scope["state"][name] = "started"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    EVENTS.append(f"{name} shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        info = {
            "app": name,
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "pid": os.getpid(),
        }
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            message = await receive()
            await send(
                {"type": "websocket.send", "text": json.dumps({**info, "got": message.get("text")})}
            )
            await send({"type": "websocket.close", "code": 1000})
            return
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(info).encode()})

    return app


api_app = make_asgi("api")
admin_app = make_asgi("admin")
