"""Server start and stop with lifespan, and websocket refusal, on real servers.

ASGI lifespan spec: a WSGI app has nothing to start, so the bridge must
answer ``lifespan.startup`` and ``lifespan.shutdown`` with ``.complete`` (a
server that sees the app fail falls back or aborts and says so in its log).
ASGI websocket spec: sending ``websocket.close`` in reply to
``websocket.connect`` rejects the handshake (the server answers 403).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from bridge_helpers import DEADLINE
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

#: Arguments that make each server log at INFO, so lifespan steps show.
INFO_ARGS = {
    "uvicorn": ["--log-level", "info"],
    "hypercorn": ["--log-level", "INFO"],
    "daphne": ["-v", "1"],
    "granian": ["--log-level", "info"],
}
#: What each server logs when the app's lifespan fails (it then goes on without).
LIFESPAN_FAILURE = re.compile(
    r"lifespan.*(error|fail|unsupported)|Exception in 'lifespan'|startup failed", re.IGNORECASE
)


@pytest.fixture(params=ASGI_SERVER_PARAMS)
def fresh_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``bridge_apps:app`` for this test alone, logging at INFO."""
    with live_server(request.param, "bridge_apps:app", extra_args=INFO_ARGS[request.param]) as srv:
        yield srv


def _stop(server: LiveServer) -> str:
    """Send SIGTERM as a process manager would, wait for the exit, return the log."""
    os.killpg(server.process.pid, signal.SIGTERM)
    server.process.wait(timeout=DEADLINE)
    return server.log()


def test_lifespan_and_clean_shutdown(fresh_server: LiveServer) -> None:
    # daphne 4.2 has no lifespan support (it never sends the scope); for it
    # this checks the clean shutdown only.
    if fresh_server.server == "uvicorn":
        # The harness runs uvicorn with --lifespan on: a failure would abort startup.
        fresh_server.wait_for_log("Application startup complete")
    with httpx.Client(base_url=fresh_server.url, timeout=DEADLINE) as client:
        for _ in range(3):
            assert client.get("/ping").content == b"pong"
    log = _stop(fresh_server)
    assert "Traceback" not in log
    assert not LIFESPAN_FAILURE.search(log), log
    if fresh_server.server == "uvicorn":
        assert "Application shutdown complete" in log
    elif fresh_server.server == "granian":
        assert "Granian shutdown completed" in log


@pytest.mark.parametrize("path", ["/ws", "/"])
def test_websocket_refused_cleanly(server: LiveServer, path: str) -> None:
    url = f"ws://127.0.0.1:{server.port}{path}"
    log_start = len(server.log())  # the session's server logs other tests' errors too
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=DEADLINE).close()
    assert 400 <= refused.value.response.status_code < 500
    # The server keeps serving HTTP, and nothing was logged as a crash.
    assert httpx.get(f"{server.url}/ping", timeout=DEADLINE).content == b"pong"
    assert "Traceback" not in server.log()[log_start:]
