"""Requests that reach an embedded server before lifespan startup has finished.

``runasgi`` serves through ``EmbeddedServer``. Daphne has no lifespan support, so
``EmbeddedServer`` runs the app's lifespan itself, and daphne accepts connections
while startup still runs: the driver must hold those requests until startup
completes, refuse them with 503 when it fails, and refuse new requests once
shutdown has begun, and let running requests finish before the app's shutdown
runs. uvicorn, hypercorn and granian run lifespan themselves and do not even
accept a connection before startup has finished; the last test pins that they
take no request early.

The app (``apps/embedded_gate.py``) runs in a subprocess (Twisted's reactor runs
once per process) and waits on files the tests create; the tests wait on files,
ports and log lines with timeouts, never on a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serve_helpers import SERVE_APPS_DIR

from live import REPO_ROOT, free_port, wait_for

pytestmark = pytest.mark.live

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@dataclass
class GateServer:
    """The subprocess serving ``embedded_gate.py``, and the files it watches."""

    server: str
    port: int
    files: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def open_file(self, name: str) -> None:
        """Create ``name`` in the watched directory (opens a gate)."""
        (self.files / name).touch()

    def views_run(self) -> list[str]:
        """Paths of the requests the app has seen."""
        ran = self.files / "view-ran"
        return ran.read_text(encoding="utf-8").split() if ran.exists() else []

    def wait_for_file(self, name: str) -> None:
        """Wait (at most 30 s) until the app created ``name``."""
        wait_for(lambda: (self.files / name).exists(), 30, f"{name}; log:\n{self.log()}")


@contextlib.contextmanager
def gate_server(
    server: str, tmp_path: Path, *files: str, start_timeout: float | None = None
) -> Iterator[GateServer]:
    """Start ``embedded_gate.py`` on ``server`` with ``files`` created first (and
    ``EmbeddedServer.start(start_timeout)`` when given); kill it after."""
    watched = tmp_path / "files"
    watched.mkdir()
    for name in files:
        (watched / name).touch()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SERVE_APPS_DIR), str(REPO_ROOT / "src")])
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(SERVE_APPS_DIR / "embedded_gate.py"),
                server,
                str(port),
                str(watched),
                *([] if start_timeout is None else [str(start_timeout)]),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            yield GateServer(server, port, watched, process, log_path)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def connect(port: int) -> socket.socket:
    """A connection to the server, waiting (at most 30 s) for it to accept one."""
    sockets: list[socket.socket] = []

    def attempt() -> bool:
        with contextlib.suppress(OSError):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        return bool(sockets)

    wait_for(attempt, 30, f"port {port}")
    return sockets[0]


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read a whole ``Connection: close`` response (30 s timeout); return status and body."""
    sock.settimeout(30)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    assert data, "the connection closed without a response"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def no_answer_yet(sock: socket.socket) -> bool:
    """Whether nothing at all has arrived on ``sock`` (no response, no close)."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def held_request(srv: GateServer) -> socket.socket:
    """Send GET /hello while startup is blocked and wait until daphne has handed it
    to the app, which holds it (or, without the hold, the app ran it)."""
    srv.wait_for_file("startup-entered")
    sock = connect(srv.port)
    sock.sendall(REQUEST)
    held = "GET /hello waits for lifespan startup to finish"
    wait_for(lambda: held in srv.log() or bool(srv.views_run()), 30, "the request to arrive")
    assert srv.views_run() == [], "the app ran a request before its lifespan startup finished"
    assert held in srv.log()
    assert no_answer_yet(sock), "answered before startup finished"
    return sock


def test_daphne_holds_requests_until_startup_completes(tmp_path: Path) -> None:
    with gate_server("daphne", tmp_path) as srv:
        sock = held_request(srv)
        srv.open_file("gate")
        with sock:
            status, body = read_response(sock)
        assert status == 200
        assert json.loads(body) == {"startup_finished": True}
        assert srv.views_run() == ["/hello"]
        os.killpg(srv.process.pid, signal.SIGTERM)
        assert srv.process.wait(30) == 0, srv.log()


def test_daphne_answers_held_requests_503_when_startup_fails(tmp_path: Path) -> None:
    with gate_server("daphne", tmp_path) as srv:
        sock = held_request(srv)
        srv.open_file("fail")
        srv.open_file("gate")
        with sock:
            status, body = read_response(sock)
        assert srv.process.wait(30) == 3
        log = srv.log()
    assert status == 503
    assert b"lifespan startup failed" in body
    assert "GET /hello refused: the app's lifespan startup failed" in log
    assert "start failed: lifespan startup" in log
    assert srv.views_run() == []


def test_daphne_start_gives_up_on_a_startup_that_does_not_finish(tmp_path: Path) -> None:
    with gate_server("daphne", tmp_path, start_timeout=1) as srv:
        srv.wait_for_file("startup-entered")
        assert srv.process.wait(30) == 3, srv.log()
        log = srv.log()
    assert "start failed: the app's lifespan startup did not finish within 1 s" in log
    assert srv.views_run() == []


def test_daphne_start_returns_when_stopped_during_startup(tmp_path: Path) -> None:
    """``stop()`` from another thread while the app's startup hangs ends ``start()``
    at once (its timeout is the default 60 s), with the reason."""
    with gate_server("daphne", tmp_path, "stop-at-startup") as srv:
        assert srv.process.wait(30) == 3, srv.log()
        log = srv.log()
    assert "start failed: daphne was stopped while the app's lifespan startup ran" in log


def test_daphne_refuses_requests_once_shutdown_began(tmp_path: Path) -> None:
    with gate_server("daphne", tmp_path, "gate", "hold-shutdown") as srv:
        with connect(srv.port) as sock:
            sock.sendall(REQUEST)
            assert read_response(sock)[0] == 200
        os.killpg(srv.process.pid, signal.SIGTERM)
        srv.wait_for_file("shutdown-entered")
        with connect(srv.port) as sock:
            sock.sendall(REQUEST)
            status, body = read_response(sock)
        srv.open_file("shutdown-gate")
        assert srv.process.wait(30) == 0, srv.log()
        log = srv.log()
    assert status == 503
    assert b"shutting down" in body
    assert "GET /hello refused: the server is shutting down" in log
    assert srv.views_run() == ["/hello"]


def test_daphne_lets_running_requests_finish_before_lifespan_shutdown(tmp_path: Path) -> None:
    with gate_server("daphne", tmp_path, "gate") as srv:
        slow = connect(srv.port)
        slow.sendall(REQUEST.replace(b"/hello", b"/slow"))
        srv.wait_for_file("slow-entered")
        os.killpg(srv.process.pid, signal.SIGTERM)

        def refused() -> bool:
            with connect(srv.port) as sock:
                sock.sendall(REQUEST)
                return read_response(sock)[0] == 503

        # Shutdown has begun once a new request is refused (the signal reaches the
        # server's stop() a moment after it is sent: a request before that is served) ...
        wait_for(refused, 30, "a new request to be refused after SIGTERM")
        assert not (srv.files / "shutdown-entered").exists()
        srv.open_file("release-slow")
        with slow:
            status, body = read_response(slow)
        assert srv.process.wait(30) == 0, srv.log()
    # ... but the app's shutdown waited for the running request.
    assert status == 200
    assert json.loads(body) == {"startup_finished": True, "shutdown_entered": False}
    assert (srv.files / "shutdown-entered").exists()


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "granian"])
def test_servers_with_lifespan_take_no_request_before_startup(server: str, tmp_path: Path) -> None:
    """uvicorn and hypercorn bind only after startup; granian binds first but accepts
    only after it: a request sent while startup is blocked is run after it."""
    with gate_server(server, tmp_path) as srv:
        srv.wait_for_file("startup-entered")
        early: socket.socket | None = None
        with contextlib.suppress(ConnectionRefusedError):
            early = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            early.sendall(REQUEST)
        assert srv.views_run() == []
        srv.open_file("gate")
        sock = early if early is not None else connect(srv.port)
        with sock:
            if early is None:
                sock.sendall(REQUEST)
            status, body = read_response(sock)
        assert status == 200
        assert json.loads(body) == {"startup_finished": True}
        os.killpg(srv.process.pid, signal.SIGTERM)
        assert srv.process.wait(30) == 0, srv.log()
