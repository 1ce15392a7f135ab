"""WSGI test apps served through :class:`asgishift.bridge.WSGIToASGI` by the live tests.

``app`` is the router wrapped in :func:`wsgiref.validate.validator` (any PEP 3333
violation by the bridge becomes an exception, and so a 500), then in the
bridge. ``raw_app`` is the same router without the validator, for the two
cases the validator would hide: a header value with CR/LF (the validator
rejects it before the bridge sees it) and ``wsgi.file_wrapper`` (the validator
wraps the returned file wrapper in its own iterator).

Bridge options come from environment variables, so one module serves every
configuration: ``BRIDGE_APP_MAX_WORKERS``, ``BRIDGE_APP_MAX_QUEUE``,
``BRIDGE_APP_MAX_BODY_SIZE``, ``BRIDGE_APP_REQUEST_TIMEOUT`` (seconds) and
``BRIDGE_APP_RETRY_AFTER`` (seconds). ``BRIDGE_APP_FILE_DIR`` is where
``/file`` keeps its payload files.

``controlled_app`` adds ``/_control/release`` and ``/_control/state``, answered
on the event loop, for tests that fill the bridge's worker pool.

Every request may carry an ``X-Test-Id`` header; the app files what it saw
under that id and ``GET /_state`` returns it as JSON, so tests assert on
server-side facts (``close()`` calls, the exception a read raised, the live
thread count). Blocking views wait on a :class:`threading.Event` that
``GET /_release?name=...`` sets: tests never sleep.
"""

from __future__ import annotations

import atexit
import contextvars
import hashlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

from bridge_data import iter_payload

from asgishift._types import ASGIApp, Environ, Receive, Scope, Send, StartResponse, WSGIApp
from asgishift.bridge import ClientDisconnected, WSGIToASGI

# A validator warning is a PEP 3333 violation: make it an exception (so a 500
# the tests see) instead of a line in the log nobody reads.
warnings.simplefilter("error", WSGIWarning)

#: How long a blocking view waits for its release, in seconds. Far longer than
#: any test runs; it only bounds a leaked thread.
BLOCK_LIMIT = 60.0

_lock = threading.Lock()
_events: dict[str, threading.Event] = {}
_state: dict[str, dict[str, Any]] = {
    "closes": {},  # test id -> number of close() calls on the returned iterable
    "errors": {},  # test id -> the exception wsgi.input raised
    "received": {},  # test id -> request body bytes read so far
    "sent": {},  # test id -> response body bytes yielded so far
    "environ": {},  # test id -> JSON-able environ
    "reraised": {},  # test id -> start_response(exc_info) re-raised after the headers
    "file_reads": {},  # test id -> read() calls on the /file payload
}
_inflight: dict[str, int] = {}
# Set by /ctx; a value seen at the start of a request leaked from an earlier one.
_request_var: contextvars.ContextVar[str] = contextvars.ContextVar("bridge_apps_request")
_files: dict[int, Path] = {}
_file_dir = os.environ.get("BRIDGE_APP_FILE_DIR", "")
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]
_JSON = [("Content-Type", "application/json")]


def _event(name: str) -> threading.Event:
    with _lock:
        return _events.setdefault(name, threading.Event())


def _record(kind: str, test_id: str, value: Any) -> None:
    with _lock:
        _state[kind][test_id] = value


def _add(kind: str, test_id: str, amount: int) -> None:
    with _lock:
        _state[kind][test_id] = _state[kind].get(test_id, 0) + amount


def _log(line: str) -> None:
    # A marker tests wait for with LiveServer.wait_for_log().
    print(f"bridge_apps: {line}", file=sys.stderr, flush=True)


class Tracked:
    """Wrap a response iterable; count its ``close()`` calls under a test id.

    :param body: the iterable to yield from; its own ``close()`` is called too.
    :param test_id: the request's ``X-Test-Id``.
    """

    def __init__(self, body: Iterable[bytes], test_id: str) -> None:
        self._body = body
        self._test_id = test_id
        with _lock:
            _inflight[test_id] = _inflight.get(test_id, 0) + 1

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            _add("sent", self._test_id, len(chunk))
            yield chunk

    def close(self) -> None:
        """Count the call, release the request slot and close the wrapped body."""
        with _lock:
            _state["closes"][self._test_id] = _state["closes"].get(self._test_id, 0) + 1
            _inflight[self._test_id] -= 1
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class CountingFile(io.FileIO):
    """A real file (name, fileno) that counts ``read()`` calls under a test id.

    No reads at all means the server sent the file by path (pathsend).
    """

    def __init__(self, path: Path, test_id: str) -> None:
        super().__init__(str(path), "rb")  # a str name, as open() gives
        self._test_id = test_id
        _add("file_reads", test_id, 0)

    def read(self, size: int | None = -1, /) -> bytes:
        """Read like :meth:`io.FileIO.read`, counting the call."""
        _add("file_reads", self._test_id, 1)
        return super().read(size)


def _environ_json(environ: Environ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        elif key == "wsgi.version":
            out[key] = list(value)
    return out


def _read_body(environ: Environ, mode: str, test_id: str, chunk: int) -> Iterator[bytes]:
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    try:
        if mode == "read":
            while data := stream.read(chunk):
                digest.update(data)
                size += len(data)
                _add("received", test_id, len(data))
        elif mode == "readline":
            while line := stream.readline():
                digest.update(line)
                size += len(line)
        else:  # iteration
            for line in stream:
                digest.update(line)
                size += len(line)
    except Exception as exc:
        _record(
            "errors",
            test_id,
            {
                "type": type(exc).__name__,
                "oserror": isinstance(exc, OSError),
                "client_disconnected": isinstance(exc, ClientDisconnected),
            },
        )
        raise
    yield json.dumps({"sha256": digest.hexdigest(), "size": size}).encode()


_SSE_EVENTS = (b"data: 1\n\n", b"data: 2\n\n", b"data: end\n\n")


def _input_api(stream: Any) -> dict[str, Any]:
    """Exercise each ``wsgi.input`` method of PEP 3333 once; report what they returned."""
    out: dict[str, Any] = {"read0": stream.read(0).decode("latin-1")}
    out["readline5"] = stream.readline(5).decode("latin-1")
    out["readline"] = stream.readline().decode("latin-1")
    out["read7"] = stream.read(7).decode("latin-1")
    out["readlines"] = [line.decode("latin-1") for line in stream.readlines()]
    out["eof_read"] = stream.read(10).decode("latin-1")
    out["eof_readline"] = stream.readline().decode("latin-1")
    return out


def _sse(test_id: str) -> Iterator[bytes]:
    first, second, last = _SSE_EVENTS
    yield first
    released = _event(test_id).wait(BLOCK_LIMIT)
    yield second if released else b"data: X\n\n"  # X: timed out; same length
    yield last


def _endless() -> Iterator[bytes]:
    # Only the bridge stopping the iteration (a disconnect) ends it early.
    deadline = time.monotonic() + BLOCK_LIMIT
    while time.monotonic() < deadline:
        yield b"e" * 4096


def _fail_before_first_block(test_id: str) -> Iterator[bytes]:
    raise RuntimeError(f"boom in iteration {test_id}")
    yield b"never sent"


def _late_exc_info(start_response: StartResponse, test_id: str) -> Iterator[bytes]:
    yield b"first"
    try:
        raise ValueError("after the headers")
    except ValueError:
        try:
            start_response("500 Internal Server Error", _TEXT, sys.exc_info())
        except ValueError:
            # PEP 3333: with the headers sent, start_response must re-raise.
            _record("reraised", test_id, True)
            raise
    yield b"never sent"


def _file(size: int) -> Path:
    with _lock:
        global _file_dir
        if not _file_dir:
            # Run by hand: a private directory, removed at exit. The tests
            # pass one they delete themselves (a killed server skips atexit).
            _file_dir = tempfile.mkdtemp(prefix="asgishift-bridge-files-")
            atexit.register(shutil.rmtree, _file_dir, ignore_errors=True)
        path = _files.get(size)
        if path is None:
            path = Path(_file_dir) / f"payload-{size}"
            if not path.exists():
                # Another server process may share the directory: write
                # under a private name, then rename atomically.
                partial = path.with_name(f"{path.name}.{os.getpid()}")
                with partial.open("wb") as out:
                    for chunk in iter_payload(size):
                        out.write(chunk)
                partial.replace(path)
            _files[size] = path
        return path


def _open_payload_files() -> int:
    """Count this process's descriptors open on a ``/file`` payload (Linux ``/proc``)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since listed
            continue
        count += bool(_file_dir) and target.startswith(_file_dir)
    return count


def _state_json() -> bytes:
    with _lock:
        body: dict[str, Any] = dict(_state)
        # Test ids whose iterable was returned and is not closed yet.
        body["inflight"] = {key: count for key, count in _inflight.items() if count}
        body["threads"] = threading.active_count()
        body["open_payload_files"] = _open_payload_files()
        # Peak resident memory of this process, KiB on Linux (getrusage(2)).
        body["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return json.dumps(body).encode()


def router(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch on ``PATH_INFO``; see the module docstring for the contract."""
    path = environ.get("PATH_INFO", "")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    test_id = environ.get("HTTP_X_TEST_ID", "")
    if path == "/_state":
        start_response("200 OK", _JSON)
        return [_state_json()]
    if path == "/_release":
        _event(query["name"]).set()
        start_response("200 OK", _TEXT)
        return [b"released"]
    if path == "/file":
        # Returned as is: a wrapper around it would hide the file from the bridge.
        file = CountingFile(_file(int(query["size"])), test_id)
        file.seek(int(query.get("offset", "0")))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](file, 65536)  # type: ignore[no-any-return]
    if path == "/tempfile":
        # A generated file (an export, say) that its close() deletes: a NamedTemporaryFile.
        size = int(query["size"])
        temp = tempfile.NamedTemporaryFile(dir=_file_dir or None)  # noqa: SIM115 (closed by the wrapper)
        for chunk in iter_payload(size):
            temp.write(chunk)
        temp.flush()
        temp.seek(0)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](temp, 65536)  # type: ignore[no-any-return]
    body = _route(path, query, test_id, environ, start_response)
    return Tracked(body, test_id)


def _route(
    path: str,
    query: dict[str, str],
    test_id: str,
    environ: Environ,
    start_response: StartResponse,
) -> Iterable[bytes]:
    if path == "/ping":
        start_response("200 OK", _TEXT)
        return [b"pong"]
    if path.startswith("/environ"):
        data = _environ_json(environ)
        _record("environ", test_id, data)
        start_response("200 OK", _JSON)
        return [json.dumps(data).encode()]
    if path == "/upload":
        start_response("200 OK", _JSON)
        mode = query.get("mode", "read")
        return _read_body(environ, mode, test_id, int(query.get("chunk", "65536")))
    if path == "/download":
        size = int(query["size"])
        headers = list(_TEXT)
        if query.get("length") == "1":
            headers.append(("Content-Length", str(size)))
        start_response("200 OK", headers)
        return iter_payload(size)
    if path == "/sse":
        headers = [("Content-Type", "text/event-stream")]
        if query.get("length") == "1":
            # A known size must not make the bridge hold the first event back.
            headers.append(("Content-Length", str(sum(map(len, _SSE_EVENTS)))))
        start_response("200 OK", headers)
        return _sse(test_id)
    if path == "/endless":
        # Never reads the request body.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _endless()
    if path == "/error-in-iter":
        start_response("200 OK", _TEXT)
        return _fail_before_first_block(test_id)
    if path == "/errors-stream":
        environ["wsgi.errors"].write(f"wsgi-errors {test_id}\n")
        environ["wsgi.errors"].flush()
        start_response("200 OK", _TEXT)
        return [b"logged"]
    if path == "/ctx":
        leaked = _request_var.get(None)
        _request_var.set(test_id)
        start_response("200 OK", _JSON)
        return [json.dumps({"leaked": leaked}).encode()]
    if path == "/block":
        name = query["name"]
        _log(f"blocking {name}")
        released = _event(name).wait(BLOCK_LIMIT)
        start_response("200 OK", _TEXT)
        return [b"released" if released else b"timeout"]
    if path == "/error":
        raise RuntimeError(f"boom {test_id}")
    if path == "/bad-header":
        start_response("200 OK", [*_TEXT, ("X-Bad", "a\r\nX-Injected: 1")])
        return [b"should not be sent"]
    if path == "/input-api":
        start_response("200 OK", _JSON)
        return [json.dumps(_input_api(environ["wsgi.input"])).encode()]
    if path == "/headers":
        # Repeated and non-ASCII (latin-1) header values, an unusual status.
        start_response(
            "299 Custom Reason",
            [*_TEXT, ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Latin", "caf\u00e9")],
        )
        return [b"headers"]
    if path == "/write":
        write = start_response("200 OK", _TEXT)
        write(b"written;")
        return [b"returned"]
    if path == "/exc-info":
        start_response("200 OK", _TEXT)
        try:
            raise ValueError("before the body")
        except ValueError:
            start_response(
                "500 Internal Server Error", [*_TEXT, ("X-Replaced", "1")], sys.exc_info()
            )
        return [b"replaced"]
    if path == "/exc-info-late":
        start_response("200 OK", _TEXT)
        return _late_exc_info(start_response, test_id)
    if path == "/status":
        code = query["code"]
        reason = {"204": "No Content", "304": "Not Modified"}[code]
        headers = [("X-Status", code)]
        if query.get("length") == "1":
            # What the body would have been: allowed on 304 (RFC 9110 8.6), no body follows.
            headers.append(("Content-Length", "16"))
        start_response(f"{code} {reason}", headers)
        # Content the server must drop: these statuses have no body (RFC 9110 6.4.1).
        return [b"must not be sent"]
    if path == "/list-headers":
        # Headers as lists, not tuples: gunicorn, uvicorn's WSGI mode and a2wsgi
        # accept them (served by raw_app; the validator would refuse them).
        start_response("200 OK", [["Content-Type", "text/plain"], ["X-Colour", "Blue"]])  # type: ignore[list-item]
        return [b"listed"]
    if path == "/overlong":
        # Declares 5 bytes and yields 11, in one block or (split=1) in two.
        start_response("200 OK", [*_TEXT, ("Content-Length", "5")])
        return [b"hello", b" world"] if query.get("split") == "1" else [b"hello world"]
    if path == "/bad-length":
        # A Content-Length nobody can frame the response by (RFC 9110 section 8.6).
        lengths = ["5", "3"] if query.get("kind") == "twice" else ["abc"]
        start_response("200 OK", [*_TEXT, *(("Content-Length", n) for n in lengths)])
        return [b"hello"]
    if path == "/proxied":
        # What a WSGI proxy that copies its upstream's headers sends: hop-by-hop
        # headers (PEP 3333 forbids them) next to the Content-Length.
        hop = query.get("hop", "chunked")
        start_response(
            "200 OK",
            [
                *_TEXT,
                ("Transfer-Encoding", hop),
                ("Connection", "keep-alive"),
                ("Keep-Alive", "timeout=5"),
                ("Content-Length", "7"),
            ],
        )
        return [b"proxied"]
    if path == "/refuse-body":
        # Answers without reading the request body (an early 413).
        start_response("413 Content Too Large", [*_TEXT, ("Content-Length", "8")])
        return [b"refused\n"]
    start_response("404 Not Found", _TEXT)
    return [b"not found"]


def _options() -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, convert in (
        ("max_workers", int),
        ("max_queue", int),
        ("max_body_size", int),
        ("request_timeout", float),
        ("retry_after", int),
        ("drain_timeout", float),
    ):
        value = os.environ.get(f"BRIDGE_APP_{name.upper()}")
        if value:
            options[name] = convert(value)
    return options


def with_control(bridge: ASGIApp) -> ASGIApp:
    """Answer ``/_control/release`` and ``/_control/state`` on the event loop itself.

    The limit tests fill the bridge's pool on purpose; these two endpoints
    must work even then, so they never reach the bridge. Everything else,
    lifespan and websocket included, goes to ``bridge`` untouched.
    """

    async def control(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/_control/"):
            await bridge(scope, receive, send)
            return
        if path == "/_control/release":
            query = parse_qs(scope["query_string"].decode("latin-1"))
            _event(query["name"][-1]).set()
            body = b"released"
        else:
            body = _state_json()
        await send({"type": "http.response.start", "status": 200, "headers": _CONTROL_HEADERS})
        await send({"type": "http.response.body", "body": body})

    return control


_CONTROL_HEADERS = [(b"content-type", b"application/json")]

# typeshed's StartResponse protocol and ours spell the optional exc_info
# differently; both describe PEP 3333's start_response.
_validated: WSGIApp = validator(router)  # type: ignore[arg-type]
app = WSGIToASGI(_validated, **_options())
raw_app = WSGIToASGI(router, **_options())
controlled_app = with_control(WSGIToASGI(_validated, **_options()))
