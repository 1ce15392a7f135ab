"""Start real servers in subprocesses on 127.0.0.1 for the live tests.

Each server is started through its own command line, exactly as a user would
run it, on a free port. :func:`live_server` waits until the port accepts
connections (a readiness signal, never a fixed sleep), yields a
:class:`LiveServer` and stops the process afterwards. Server output goes to a
log file the test can read with :meth:`LiveServer.log` and
:meth:`LiveServer.wait_for_log`.

Apps are named ``module:attribute`` and imported from ``tests/live_apps/``
(put on ``PYTHONPATH``) or from any other directory passed as ``app_dir``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
LIVE_APPS_DIR = TESTS_DIR / "live_apps"
SRC_DIR = REPO_ROOT / "src"

#: The ASGI servers the bridge is tested under.
ASGI_SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")
#: The WSGI servers used as references (and to host ``ASGIToWSGI``).
WSGI_SERVERS = ("gunicorn", "wsgiref", "waitress")

ASGI_SERVER_PARAMS = [pytest.param(name, id=name, marks=pytest.mark.live) for name in ASGI_SERVERS]

#: Environment variable naming the ASGI servers to test (comma-separated; all when unset).
SERVERS_VARIABLE = "ASGISHIFT_TEST_SERVERS"


def selected_servers(value: str | None) -> frozenset[str]:
    """Parse :data:`SERVERS_VARIABLE`'s value: the ASGI servers to test.

    :param value: e.g. ``"uvicorn,daphne"``; ``None`` or blank selects all of
        :data:`ASGI_SERVERS`.
    :raise pytest.UsageError: if it names a server that is not in :data:`ASGI_SERVERS`.
    """
    if not value or not value.strip():
        return frozenset(ASGI_SERVERS)
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(ASGI_SERVERS))
    if unknown:
        raise pytest.UsageError(
            f"{SERVERS_VARIABLE} names unknown servers {unknown}; use some of {ASGI_SERVERS}"
        )
    return names


def excluded_server(params: dict[str, object], servers: frozenset[str]) -> str | None:
    """Return the ASGI server a test's parameters name outside ``servers``, if any.

    A parameter counts when its value is exactly one of :data:`ASGI_SERVERS`,
    whatever the parameter is called (``server``, ``raw_server``, ...); a value
    such as ``"gunicorn-uvicorn-worker"`` does not.
    """
    for value in params.values():
        if isinstance(value, str) and value in ASGI_SERVERS and value not in servers:
            return value
    return None


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true, backing off from 0.01 s to 0.2 s between tries.

    :raise AssertionError: naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


#: Ports handed to test servers: below Linux's ephemeral range (32768-60999), from which
#: the kernel picks every client socket's port, so a client connection of a test running
#: beside this one cannot take a server's port between free_port() and the server's bind.
_SERVER_PORTS = range(20000, 32768)


def _worker_ports() -> range:
    """Return this pytest-xdist worker's share of :data:`_SERVER_PORTS` (all of it without xdist).

    The shares are disjoint, so two workers never pick the same port in the moment
    between :func:`free_port` and their servers' binds. Granian binds with
    ``SO_REUSEPORT``: there, such a pair did not fail, but shared the port, and a
    test got its answers from another test's server.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or not worker[2:].isdigit() or count < 2:
        return _SERVER_PORTS
    return _SERVER_PORTS[int(worker[2:]) % count :: count]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (see :data:`_SERVER_PORTS`)."""
    pick = random.SystemRandom()
    ports = _worker_ports()
    for _ in range(200):
        port = pick.choice(ports)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, app: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """Return the argv that starts ``server`` serving ``app`` on 127.0.0.1:``port``.

    :param server: one of :data:`ASGI_SERVERS` or :data:`WSGI_SERVERS`.
    :param app: ``"module:attribute"``.
    :raise ValueError: for an unknown server name.
    """
    py = sys.executable
    if server == "uvicorn":
        cmd = [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--log-level", "warning", "--no-access-log", "--lifespan", "on"]
    elif server == "hypercorn":
        cmd = [py, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--log-level", "WARNING"]
    elif server == "daphne":
        cmd = [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    elif server == "granian":
        cmd = [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--workers", "1", "--log-level", "warning", app]
    elif server == "gunicorn":
        cmd = [py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-k", "gthread", "--threads", "8"]
        cmd += ["--log-level", "warning", app]
    elif server == "wsgiref":
        cmd = [py, str(LIVE_APPS_DIR / "wsgiref_server.py"), app, str(port)]
    elif server == "waitress":
        # waitress's own CLI (``waitress-serve`` runs the same code). It parses options
        # with getopt, which stops at the first positional argument: the extra options
        # go before the app. It prints "Serving on ..." to stdout and logs to stderr
        # (``logging.basicConfig``), both in the log file.
        cmd = [py, "-m", "waitress", f"--listen=127.0.0.1:{port}"]
        return [*cmd, *extra, app]
    else:
        raise ValueError(f"unknown server {server!r}; use one of {ASGI_SERVERS + WSGI_SERVERS}")
    return [*cmd, *extra]


@dataclass
class LiveServer:
    """A running server process.

    :param url: base URL without a trailing slash, ``http://127.0.0.1:PORT``.
    """

    server: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    host: str = "127.0.0.1"
    url: str = field(init=False)

    def __post_init__(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"

    def log(self) -> str:
        """Return everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the log matches the regular expression ``pattern``.

        :param timeout: seconds before giving up.
        :raise AssertionError: when the pattern does not appear in time; the
            message holds the log.
        """
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        delay = 0.01
        while True:
            match = regex.search(self.log())
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in {self.server} log:\n{self.log()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _wait_until_listening(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} before listening on {port}:\n"
                + log.read_text(errors="replace")
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"server not listening on {port} after {timeout}s:\n"
                + log.read_text(errors="replace")
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@contextlib.contextmanager
def live_server(
    server: str,
    app: str,
    *,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    app_dir: Path | None = None,
    command: Sequence[str] | None = None,
    timeout: float = 30.0,
    host: str = "127.0.0.1",
) -> Iterator[LiveServer]:
    """Run ``app`` on ``server`` for the duration of the ``with`` block.

    :param server: a server name (see :func:`server_command`).
    :param app: ``"module:attribute"`` importable from ``app_dir``.
    :param extra_args: appended to the server's argv.
    :param env: extra environment variables for the server process.
    :param app_dir: directory put first on ``PYTHONPATH`` (default
        ``tests/live_apps``).
    :param command: a complete argv to run instead of the server's own CLI
        (for ``asgishift serve``); ``{port}`` in it is replaced by the port.
    :param timeout: seconds to wait for the port to accept connections.
    :param host: the address to wait on and to put in :attr:`LiveServer.url`
        (``"::1"`` for a server started on the IPv6 loopback by ``command``).
    :raise RuntimeError: when the server exits or does not listen in time.
    """
    port = free_port()
    argv = (
        [part.replace("{port}", str(port)) for part in command]
        if command is not None
        else server_command(server, app, port, extra_args)
    )
    child_env = dict(os.environ)
    paths = [str(app_dir or LIVE_APPS_DIR), str(SRC_DIR)]
    if child_env.get("PYTHONPATH"):
        paths.append(child_env["PYTHONPATH"])
    child_env["PYTHONPATH"] = os.pathsep.join(paths)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix=f"asgishift-{server}-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(app_dir or LIVE_APPS_DIR),
                env=child_env,
                start_new_session=True,
            )
            try:
                _wait_until_listening(proc, port, log_path, timeout, host)
                yield LiveServer(server, port, proc, log_path, host)
            except Exception as exc:
                # The log is gone with the temporary directory: show its end
                # beside the failure (a crash at shutdown, say).
                _stop(proc)
                _add_log_tail(exc, server, proc, log_path)
                raise
            finally:
                _stop(proc)


def _add_log_tail(
    exc: BaseException, server: str, proc: subprocess.Popen[bytes], log_path: Path
) -> None:
    """Attach the last lines of the server's log to ``exc`` (stderr on Python 3.10)."""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
    note = f"{server} (exit status {proc.returncode}), end of its log:\n" + "\n".join(lines)
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        print(note, file=sys.stderr)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
