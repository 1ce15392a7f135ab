"""ASGIToWSGI carries the WSGI server thread's ``contextvars`` into the app, one way only.

WSGI middleware around the bridge (a request-id middleware, Sentry, OpenTelemetry,
structlog's ``bind_contextvars``) sets context variables in the server's thread; the
app runs as a task on the loop thread. ``apps/a2w_apps.py``'s
``request_id_middleware`` binds ``X-Request-Id`` the way structlog does (set, never
reset) and records what the server's thread holds once the response is closed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from a2w_helpers import serve

from live import LiveServer

DEADLINE = 20.0
SRC = Path(__file__).resolve().parents[2] / "src"


def _thread_side(server: LiveServer, request_id: str) -> dict[str, str]:
    """Poll until the middleware has recorded the server thread's side of ``request_id``."""
    deadline = time.monotonic() + DEADLINE
    while True:
        seen: dict[str, str] = httpx.get(
            f"{server.url}/thread-side", params={"id": request_id}, timeout=DEADLINE
        ).json()
        if seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def _record(server: LiveServer, test_id: str, key: str) -> dict[str, str]:
    deadline = time.monotonic() + DEADLINE
    while True:
        record: dict[str, str] = httpx.get(
            f"{server.url}/record", params={"id": test_id}, timeout=DEADLINE
        ).json()
        if key in record or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def test_the_app_sees_the_request_id_set_by_wsgi_middleware(wsgi_server: LiveServer) -> None:
    """In the view, in its logging, in a thread-pool call and in its background task.

    Before, the app's task ran in the loop thread's own context: every request saw
    the variable's default, so a request id bound by WSGI middleware never reached
    the app's log lines.
    """
    request_id = f"rid-{os.urandom(6).hex()}"
    headers = {"X-Request-Id": request_id, "X-Test-Id": request_id}
    seen = httpx.get(f"{wsgi_server.url}/context", headers=headers, timeout=DEADLINE).json()
    assert seen == {"request_id": request_id, "app_mark": "unset", "in_threadpool": request_id}
    wsgi_server.wait_for_log(rf"CONTEXT request_id={request_id} view of /context")
    record = _record(wsgi_server, request_id, "background_request_id")
    assert record == {"background_request_id": request_id}


def test_what_the_app_sets_stays_in_its_request(wsgi_server: LiveServer) -> None:
    """The app's changes reach neither the server's thread nor the next request.

    The app sets ``APP_MARK`` and its background task rebinds ``REQUEST_ID``; the
    middleware reads both in the server's thread once the response is closed (after
    the background task), and the next request's app must see ``APP_MARK`` unset
    (under gunicorn's sync worker both requests are served by the same thread).
    """
    ids = [f"rid-{os.urandom(6).hex()}" for _ in range(2)]
    for request_id in ids:
        headers = {"X-Request-Id": request_id, "X-Test-Id": request_id}
        seen = httpx.get(f"{wsgi_server.url}/context", headers=headers, timeout=DEADLINE).json()
        assert seen["request_id"] == request_id
        assert seen["app_mark"] == "unset"
        assert _thread_side(wsgi_server, request_id) == {
            "app_mark_before": "unset",
            "request_id_after": request_id,
            "app_mark_after": "unset",
        }
    # A request without the middleware's binding sees no earlier request's id.
    plain = httpx.get(f"{wsgi_server.url}/context", timeout=DEADLINE).json()
    assert plain["app_mark"] == "unset"
    assert plain["request_id"] in ("-", *ids)


def test_lifespan_startup_does_not_take_the_first_requests_context() -> None:
    """Startup runs for the first request, but not in its context.

    Before, the lifespan task (and every task the app starts from it, a periodic
    job) took the context of the server thread that ran startup, so the first
    request's id stayed bound in them for the life of the worker.
    """
    with serve("gunicorn-gthread") as srv:
        headers = {"X-Request-Id": "first-request"}
        scope = httpx.get(f"{srv.url}/scope", headers=headers, timeout=DEADLINE).json()
        assert scope["state"]["request_id_at_startup"] == "-"


_CONTEXT_SCRIPT = """
import contextvars, sys
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator
from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions

request_id = contextvars.ContextVar("request_id", default="-")
mark = contextvars.ContextVar("mark", default="unset")

async def app(scope, receive, send):
    seen = f"{request_id.get()}/{mark.get()}".encode()
    mark.set("app")
    request_id.set("app")
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": seen})

bridge = validator(ASGIToWSGI(app, ASGIToWSGIOptions(lifespan="off", loop=sys.argv[1])))
for number in range(3):
    environ = {}
    setup_testing_defaults(environ)
    request_id.set(f"r{number}")
    response = bridge(environ, lambda status, headers, exc_info=None: None)
    body = b"".join(response)
    response.close()
    print(body.decode(), request_id.get(), mark.get())
"""


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_context_crosses_one_way_on_either_loop(loop: str) -> None:
    """The same one-way crossing on asyncio's loop and on uvloop, called in process.

    The live tests run the default loop (uvloop where installed); the task is created
    differently per Python version (``context=`` from 3.11, eager from 3.12).
    """
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _CONTEXT_SCRIPT, loop],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Each request saw its own id and no mark; the thread kept its id and no mark.
    assert result.stdout.splitlines() == [f"r{n}/unset r{n} unset" for n in range(3)]
