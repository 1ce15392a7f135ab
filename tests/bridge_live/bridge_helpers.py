"""Helpers for the live tests of the WSGI->ASGI bridge (fixtures are in conftest.py).

Each ASGI server of :data:`live.ASGI_SERVERS` runs ``tests/live_apps/bridge_apps.py``
in a real subprocess. The plain servers are session-scoped (one per server and
xdist worker); tests keep apart by sending a fresh ``X-Test-Id`` and reading
``/_state`` for that id only. Configurations that change the bridge options
start their own servers in their test modules.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from live import LiveServer

#: Seconds any single wait in these tests may take before the test fails.
DEADLINE = 20.0

#: How each server mounts the app under a root path, and whether the client
#: must put the prefix in the request path (hypercorn, daphne, granian) or the
#: server adds it (uvicorn prepends ``--root-path`` to the request path).
ROOT_PATH_ARGS: dict[str, tuple[list[str], bool]] = {
    "uvicorn": (["--root-path", "/mount"], False),
    "hypercorn": (["--root-path", "/mount"], True),
    "daphne": (["--root-path", "/mount"], True),
    "granian": (["--url-path-prefix", "/mount"], True),
}


def new_test_id() -> str:
    """Return a fresh value for the ``X-Test-Id`` header."""
    return uuid.uuid4().hex


def get_state(server: LiveServer, *, control: bool = False) -> dict[str, Any]:
    """Return the app's ``/_state`` JSON (see ``bridge_apps``).

    :param control: ask ``/_control/state`` of ``controlled_app`` instead,
        which answers even when the bridge's pool is full.
    """
    path = "/_control/state" if control else "/_state"
    response = httpx.get(f"{server.url}{path}", timeout=DEADLINE)
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


def wait_for_state(
    server: LiveServer,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = DEADLINE,
    *,
    control: bool = False,
) -> dict[str, Any]:
    """Poll ``/_state`` until ``predicate`` holds and return that state.

    :param what: the condition in words, for the failure message.
    :raise AssertionError: when it does not hold within ``timeout`` seconds;
        the message holds the last state and the server log.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        state = get_state(server, control=control)
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{server.server}: {what} not reached in {timeout}s; state {state}\n{server.log()}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def release(server: LiveServer, name: str, *, control: bool = False) -> None:
    """Set the app's event ``name``, unblocking ``/block`` or ``/sse``.

    :param control: use ``/_control/release`` of ``controlled_app``.
    """
    path = "/_control/release" if control else "/_release"
    httpx.get(f"{server.url}{path}", params={"name": name}, timeout=DEADLINE).raise_for_status()


class RawHTTP:
    """A bare HTTP/1.1 client connection, for what httpx will not do.

    It sends bytes as given and parses responses just enough to check the
    framing: a status line, headers, and the body by ``Content-Length`` or
    chunked encoding.
    """

    def __init__(self, server: LiveServer, timeout: float = DEADLINE) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"connection closed; unparsed bytes {self.buffer[:200]!r}")
        self.buffer += data

    def read_head(self, version: str = "HTTP/1.1 ") -> tuple[int, dict[str, str]]:
        """Read one status line and header block; return the status and lowercased headers.

        :param version: what the status line must start with.
        """
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        assert status_line.startswith(version), f"not a status line: {status_line!r}"
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def read_until(self, marker: bytes) -> None:
        """Receive until ``marker`` is in the buffer (which keeps everything)."""
        while marker not in self.buffer:
            self._fill()

    def read_exact(self, size: int) -> bytes:
        """Return the next ``size`` bytes."""
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_body(self, headers: dict[str, str]) -> bytes:
        """Read a body framed by ``Content-Length``, chunked encoding or the connection's end."""
        if "content-length" in headers:
            return self.read_exact(int(headers["content-length"]))
        if headers.get("transfer-encoding") != "chunked":
            # Neither: the body runs until the server closes (RFC 9112 6.3, rule 8).
            while True:
                data = self.sock.recv(65536)
                if not data:
                    body, self.buffer = self.buffer, b""
                    return body
                self.buffer += data
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                self._fill()
            size_line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            chunk = self.read_exact(size + 2)
            if size == 0:
                return body
            body += chunk[:-2]

    def closed_by_server(self) -> bool:
        """Return whether the server closes the connection with nothing more to read.

        Waits at most the socket's timeout; a server that keeps the connection
        open and silent raises :class:`TimeoutError` (the hang this detects).
        """
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return not self.buffer
            if not data:
                return not self.buffer
            self.buffer += data

    def request(self, method: str, target: str, headers: dict[str, str] | None = None) -> None:
        """Send a request without a body."""
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def state_json(response: httpx.Response) -> dict[str, Any]:
    """Decode a JSON response body, with the body in the error if it is not JSON."""
    try:
        data: dict[str, Any] = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code}: {response.content[:500]!r}") from exc
    return data
