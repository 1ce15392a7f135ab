"""ASGI apps served by WSGI servers through ``ASGIToWSGI`` in the live tests.

Servers import one of the ``application*`` names below (each an ``ASGIToWSGI``
wrapped in ``wsgiref.validate.validator``). The apps are real Starlette,
FastAPI and Quart apps, plus two raw ASGI apps that break the ASGI HTTP spec on purpose.

Environment variables:

``A2W_EVENTS``
    a file; lifespan startup and shutdown append ``startup <pid>`` /
    ``shutdown <pid>`` lines to it.
``A2W_TIMEOUT``
    ``ASGIToWSGIOptions.response_timeout`` in seconds (default 60).
``A2W_CHECK_FDS``
    when set, lifespan shutdown says (``fds-kept`` / ``fds-lost``) whether the pipes
    open at startup are still open.
``A2W_SLOW_SHUTDOWN``
    seconds lifespan shutdown waits before it ends (``shutdown-cancelled`` if it
    is cancelled meanwhile); ``exited`` is written at the very end of the exit.
``A2W_STARTUP_AT_IMPORT``
    when set, run lifespan startup when this module is imported (in a gunicorn
    ``--preload`` master, before the workers fork).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import hashlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any
from wsgiref.validate import validator

from fastapi import FastAPI
from quart import Quart
from quart import request as quart_request
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

EVENTS = os.environ.get("A2W_EVENTS")
OPTIONS = ASGIToWSGIOptions(
    response_timeout=float(os.environ.get("A2W_TIMEOUT", "60")), disconnect_grace=0.5
)

#: Per-test records, keyed by the ``X-Test-Id`` header.
RECORDS: dict[str, dict[str, Any]] = {}
#: Streams of /endless begun and ended (the app's own count, for the leak test).
STREAMS = {"started": 0, "ended": 0}
#: Request-body bytes the bridge has read from ``wsgi.input``, per ``X-Test-Id``.
INPUT_READ: dict[str, int] = {}


async def _wait_for_file(path: str) -> None:
    """Wait until the test creates ``path`` (a gate that works under any WSGI server,
    including gunicorn's sync worker, which serves one request at a time)."""
    # A file, because no asyncio.Event crosses from the test process.
    while not await asyncio.to_thread(os.path.exists, path):  # noqa: ASYNC110
        await asyncio.sleep(0.005)


#: Set by :func:`request_id_middleware` in the WSGI server's thread (as a request-id,
#: Sentry or OpenTelemetry middleware does), read by the app on the loop thread.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
#: Set by the app; must never show in the server's thread or in another request.
APP_MARK: contextvars.ContextVar[str] = contextvars.ContextVar("app_mark", default="unset")
#: What :func:`request_id_middleware` saw in the server's thread, per request id.
THREAD_SIDE: dict[str, dict[str, str]] = {}


class _RequestIdFilter(logging.Filter):
    """Put the request id of the current context on each log record (as structlog does)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


context_log = logging.getLogger("a2w.context")
_context_handler = logging.StreamHandler()
_context_handler.addFilter(_RequestIdFilter())
_context_handler.setFormatter(logging.Formatter("CONTEXT request_id=%(request_id)s %(message)s"))
context_log.addHandler(_context_handler)
context_log.propagate = False


def _event(line: str) -> None:
    if EVENTS:
        with open(EVENTS, "a", encoding="utf-8") as file:
            file.write(f"{line} {os.getpid()}\n")


def _record(request: Request) -> dict[str, Any]:
    return RECORDS.setdefault(request.headers.get("x-test-id", ""), {})


# --- the Starlette app -------------------------------------------------------------


def _pipes() -> dict[str, str]:
    """Return this process's open pipes: descriptor -> ``pipe:[inode]``."""
    pipes = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("pipe:"):
                pipes[fd] = target
    return pipes


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    _event("startup")
    # The pipes the bridge's loop thread made (its wake-up pipe; the server's own were
    # there at import) must still be open while lifespan shutdown runs at exit.
    pipes = {}
    if os.environ.get("A2W_CHECK_FDS"):
        pipes = {fd: pipe for fd, pipe in _pipes().items() if PIPES_AT_IMPORT.get(fd) != pipe}
    yield {
        "started_in": os.getpid(),
        "loop_thread": threading.get_ident(),
        "request_id_at_startup": REQUEST_ID.get(),
    }
    if pipes:
        left = _pipes()
        _event(
            "fds-kept" if all(left.get(fd) == pipe for fd, pipe in pipes.items()) else "fds-lost"
        )
    slow = float(os.environ.get("A2W_SLOW_SHUTDOWN", "0"))
    if slow:
        try:
            await asyncio.sleep(slow)
        except asyncio.CancelledError:
            _event("shutdown-cancelled")
            raise
    # Written from a thread pool, as shutdown code that closes a blocking client does.
    await asyncio.to_thread(_event, "shutdown")


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, World!")


async def scope_view(request: Request) -> Response:
    scope = request.scope
    return JSONResponse(
        {
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "root_path": scope["root_path"],
            "query_string": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "client": list(scope["client"]) if scope["client"] else None,
            "server": list(scope["server"]) if scope["server"] else None,
            "scheme": scope["scheme"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "state": dict(request.state._state),
            "pid": os.getpid(),
            "loop_thread": threading.get_ident(),
            "extensions": sorted(scope.get("extensions", {})),
        }
    )


async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, media_type="application/octet-stream")


async def sse(request: Request) -> Response:
    count = int(request.query_params.get("n", "3"))
    gate = request.query_params.get("gate")

    async def events() -> AsyncIterator[str]:
        if gate and request.query_params.get("hold_first"):
            # An SSE stream that has nothing to say yet (waiting for the first event).
            await _wait_for_file(f"{gate}.first")
        for number in range(count):
            yield f"data: {number}\n\n"
            if gate:
                # Wait for the test to have seen this event before sending the next.
                await _wait_for_file(f"{gate}.{number}")

    return StreamingResponse(events(), media_type="text/event-stream")


async def sse_starlette_view(request: Request) -> Response:
    """Two events through sse-starlette, which streams from a task of its own.

    Its ``EventSourceResponse`` sends from one task of an anyio task group while
    the request's task waits for the group, that is, until the stream ends. The
    second event waits for the gate ``{gate}.0``. With ``idle`` in the query the
    stream then stays open, idle, until the client leaves; it writes
    ``sse-starlette-ended`` to ``A2W_EVENTS`` when it ends.
    """
    gate = request.query_params["gate"]

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"data": "0"}
            await _wait_for_file(f"{gate}.0")
            yield {"data": "1"}
            if request.query_params.get("idle"):
                await asyncio.Event().wait()
        finally:
            _event("sse-starlette-ended")

    return EventSourceResponse(events(), ping=600)


async def endless(request: Request) -> Response:
    """Stream 1 KiB chunks until the client goes away."""
    STREAMS["started"] += 1

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
                await asyncio.sleep(0.002)
        finally:
            STREAMS["ended"] += 1
            _event("stream-ended")

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def quiet_stream(request: Request) -> Response:
    """Start a stream, then wait for an event that never comes (an idle SSE stream)."""

    async def events() -> AsyncIterator[str]:
        try:
            yield ": started\n\n"
            await asyncio.Event().wait()
            yield "data: never\n\n"
        finally:
            _event("quiet-ended")

    return StreamingResponse(events(), media_type="text/event-stream")


async def until_disconnected(request: Request) -> Response:
    """Poll ``request.is_disconnected()`` (a long poll) and record when it says so."""
    record = _record(request)
    await request.body()
    while not await request.is_disconnected():  # noqa: ASYNC110 - how apps poll it
        await asyncio.sleep(0.01)
    record["disconnected"] = True
    return PlainTextResponse("too late")


async def slow_upload(request: Request) -> Response:
    """Read one chunk, wait for the test's gate file, then read the rest."""
    gate = request.query_params["gate"]
    total = 0
    first = True
    async for chunk in request.stream():
        total += len(chunk)
        if first and chunk:
            first = False
            await _wait_for_file(gate)
    return PlainTextResponse(str(total))


async def input_read(request: Request) -> Response:
    return JSONResponse({"read": INPUT_READ.get(request.query_params["id"], 0)})


async def stuck(request: Request) -> Response:
    record = _record(request)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        record["cancelled"] = True
        raise
    return PlainTextResponse("never")


@contextlib.asynccontextmanager
async def _held_resource() -> AsyncIterator[None]:
    """A resource held across an await (a database session): an async generator."""
    _event("acquired")
    try:
        yield
    finally:
        _event("released")


async def stuck_holding(request: Request) -> Response:
    """Hold a resource and wait for ever; say (in ``A2W_EVENTS``) how the wait ended."""
    async with _held_resource():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            _event("cancelled")
            raise
    return PlainTextResponse("never")


async def raises(request: Request) -> Response:
    raise RuntimeError("the view broke on purpose")


async def record_view(request: Request) -> Response:
    return JSONResponse(RECORDS.get(request.query_params["id"], {}))


async def stats(request: Request) -> Response:
    """Count what could leak: tasks on the loop, threads, open file descriptors."""
    return JSONResponse(
        {
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "fds": len(os.listdir("/proc/self/fd")),
            "pid": os.getpid(),
            **STREAMS,
        }
    )


async def sendfile_view(request: Request) -> Response:
    return FileResponse(request.query_params["path"])


async def pathsend_raw(request: Request) -> Response:
    return _PathSend(request.query_params["path"])


class _PathSend(Response):
    """Send a file with the ``http.response.pathsend`` extension only."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain")]
        if await asyncio.to_thread(os.path.exists, self.path):
            size = await asyncio.to_thread(os.path.getsize, self.path)
            headers.append((b"content-length", str(size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": self.path})


async def zerocopy_view(request: Request) -> Response:
    params = request.query_params
    return _ZeroCopy(params["path"], int(params["offset"]), int(params["count"]))


class _ZeroCopy(Response):
    """Send part of a file with the ``http.response.zerocopysend`` extension, then close it."""

    def __init__(self, path: str, offset: int, count: int) -> None:
        super().__init__()
        self.path, self.offset, self.count = path, offset, count

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/octet-stream"),
                   (b"content-length", str(self.count).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(self.path, "rb") as file:  # noqa: ASYNC230 - a local test file
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "offset": self.offset,
                    "count": self.count,
                }
            )
        # The file is closed now; the bridge must have kept its own descriptor.


async def lingering_view(request: Request) -> Response:
    return _Lingering(_record(request))


class _Lingering(Response):
    """Stream until send() fails, then ignore the disconnect and wait for ever (until cancelled)."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/octet-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"y" * 1024, "more_body": True})
                await asyncio.sleep(0.002)
        except OSError:
            self.record["send_failed"] = True
        self.record["receive"] = (await receive())["type"]
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.record["cancelled"] = True
            raise


async def context_view(request: Request) -> Response:
    """Report the context variables the app sees, then change them (they must not leak)."""
    seen = {"request_id": REQUEST_ID.get(), "app_mark": APP_MARK.get()}
    context_log.info("view of %s", request.url.path)
    seen["in_threadpool"] = await run_in_threadpool(REQUEST_ID.get)
    record = _record(request)

    async def later() -> None:
        await asyncio.sleep(0)
        record["background_request_id"] = REQUEST_ID.get()
        REQUEST_ID.set("changed-by-app")

    APP_MARK.set(f"set-by-{seen['request_id']}")
    return JSONResponse(seen, background=BackgroundTask(later))


async def thread_side_view(request: Request) -> Response:
    return JSONResponse(THREAD_SIDE.get(request.query_params["id"], {}))


async def background_view(request: Request) -> Response:
    record = _record(request)

    async def later() -> None:
        await asyncio.sleep(0.2)
        record["background"] = "done"

    return PlainTextResponse("sent", background=BackgroundTask(later))


async def websocket_hello(websocket: WebSocket) -> None:
    """A WebSocket route (reachable only from an ASGI server)."""
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


starlette_app = Starlette(
    routes=[
        Route("/", hello),
        Route("/scope", scope_view),
        Route("/scope/{rest:path}", scope_view),
        Route("/echo", echo, methods=["POST"]),
        Route("/sse", sse),
        Route("/sse-starlette", sse_starlette_view),
        Route("/endless", endless),
        Route("/quiet", quiet_stream),
        Route("/until-disconnected", until_disconnected, methods=["GET", "POST"]),
        Route("/slow-upload", slow_upload, methods=["POST"]),
        Route("/input-read", input_read),
        Route("/stuck", stuck),
        Route("/stuck-holding", stuck_holding),
        Route("/raise", raises),
        Route("/record", record_view),
        Route("/_stats", stats),
        Route("/file", sendfile_view),
        Route("/pathsend", pathsend_raw),
        Route("/zerocopy", zerocopy_view),
        Route("/background", background_view),
        Route("/context", context_view),
        Route("/thread-side", thread_side_view),
        Route("/linger", lingering_view),
        WebSocketRoute("/ws", websocket_hello),
    ],
    lifespan=lifespan,
)


# --- a FastAPI app -----------------------------------------------------------------

fastapi_app = FastAPI()


@fastapi_app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/items")
async def create_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"created": item}


quart_app = Quart(__name__)


@quart_app.post("/echo")
async def quart_echo() -> dict[str, Any]:
    data = await quart_request.get_data()
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@quart_app.get("/stream")
async def quart_stream() -> tuple[AsyncIterator[bytes], int, dict[str, str]]:
    """Two lines; the second waits for the gate ``{gate}.0`` (Quart answers from a task
    of its own while the request's task waits for it or for the client to leave)."""
    gate = quart_request.args["gate"]

    async def lines() -> AsyncIterator[bytes]:
        yield b"first\n"
        await _wait_for_file(f"{gate}.0")
        yield b"last\n"

    return lines(), 200, {"content-type": "text/plain"}


# --- raw ASGI apps that break the spec -------------------------------------------


async def rule_breaker(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Break a different ASGI rule on each path (no lifespan support at all)."""
    if scope["type"] != "http":
        raise RuntimeError("this app does not support lifespan")
    path = scope["path"]
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }
    if path == "/body-first":
        await send({"type": "http.response.body", "body": b"too early"})
    elif path == "/no-start":
        return
    elif path == "/twice":
        await send(start)
        await send(start)
    elif path == "/after-done":
        await send(start)
        await send({"type": "http.response.body", "body": b"done"})
        await send({"type": "http.response.body", "body": b"extra"})
    elif path == "/bad-status":
        await send({**start, "status": "200"})
    elif path == "/fail-midway":
        # A Content-Length, so that every server's client can tell the body is cut short.
        await send({**start, "headers": [*start["headers"], (b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await asyncio.sleep(0.01)  # the bridge has handed "part" to the server by now
        raise RuntimeError("failed after the response started")
    elif path == "/complete-then-raise":
        # Starlette's ServerErrorMiddleware: the error handler's page, then a re-raise.
        await send({**start, "status": 500})
        await send({"type": "http.response.body", "body": b"the app's own error page"})
        raise RuntimeError("re-raised after the error page went out")
    elif path == "/hop-by-hop":
        hop = [(b"connection", b"close"), (b"keep-alive", b"timeout=5")]
        await send({**start, "headers": [*hop, *start["headers"]]})
        await send({"type": "http.response.body", "body": b"fine"})
    else:
        await send(start)
        await send({"type": "http.response.body", "body": b"fine"})


class AwaitableApp:
    """An ASGI app whose call returns an awaitable that is not a coroutine (ASGI allows any).

    On ``/suspend-first`` it waits on the loop before it starts the response, so
    the bridge resumes it after its first step; elsewhere it answers at once.
    """

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        return _Awaiting(self._respond(scope, receive, send))

    async def _respond(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("this app does not support lifespan")
        chunks = 1
        if scope["path"] == "/suspend-first":
            await asyncio.sleep(0)
            chunks = 3
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index in range(chunks):
            if index:
                await asyncio.sleep(0)
            more = index < chunks - 1
            await send({"type": "http.response.body", "body": b"part", "more_body": more})


class _Awaiting:
    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, None, None]:
        return self._coro.__await__()


async def failing_startup_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer lifespan startup with ``lifespan.startup.failed``."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"should not be served"})


# --- the WSGI applications ---------------------------------------------------------


def counting_input(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Count the bytes read from ``wsgi.input`` per ``X-Test-Id`` (outside the bridge)."""

    class Counter:
        def __init__(self, stream: Any, key: str) -> None:
            self.stream = stream
            self.key = key

        def read(self, *args: Any) -> bytes:
            data: bytes = self.stream.read(*args)
            INPUT_READ[self.key] = INPUT_READ.get(self.key, 0) + len(data)
            return data

        def __getattr__(self, name: str) -> Any:
            return getattr(self.stream, name)

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        key = environ.get("HTTP_X_TEST_ID")
        if key:
            environ["wsgi.input"] = Counter(environ["wsgi.input"], key)
        return app(environ, start_response)

    return wrapped


def request_id_middleware(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Bind ``X-Request-Id`` to :data:`REQUEST_ID` in the server's thread, as structlog's
    ``bind_contextvars`` does (set, never reset), and record what that thread's context
    holds once the response is closed."""

    class Closing:
        def __init__(self, result: Iterable[bytes], request_id: str, before: str) -> None:
            self.result = result
            self.request_id = request_id
            self.before = before

        def __iter__(self) -> Any:
            return iter(self.result)

        def close(self) -> None:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
            THREAD_SIDE[self.request_id] = {
                "app_mark_before": self.before,
                "request_id_after": REQUEST_ID.get(),
                "app_mark_after": APP_MARK.get(),
            }

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request_id = environ.get("HTTP_X_REQUEST_ID")
        if request_id is None:
            return app(environ, start_response)
        before = APP_MARK.get()
        REQUEST_ID.set(request_id)
        return Closing(app(environ, start_response), request_id, before)

    return wrapped


PIPES_AT_IMPORT = _pipes() if os.environ.get("A2W_CHECK_FDS") else {}
if os.environ.get("A2W_SLOW_SHUTDOWN"):
    # Registered before the bridge's own exit hook, so it runs last: the process got
    # to the end of its exit (it was not killed).
    atexit.register(_event, "exited")
bridge = ASGIToWSGI(starlette_app, OPTIONS)
if os.environ.get("A2W_STARTUP_AT_IMPORT"):
    bridge.startup()

application = validator(request_id_middleware(counting_input(bridge)))
#: Without the validator, so gunicorn sees the ``wsgi.file_wrapper`` it handed out.
application_raw = bridge
fastapi_application = validator(ASGIToWSGI(fastapi_app, OPTIONS))
quart_application = validator(ASGIToWSGI(quart_app, OPTIONS))
rule_breaker_application = validator(ASGIToWSGI(rule_breaker, OPTIONS))
failing_application = validator(ASGIToWSGI(failing_startup_app, OPTIONS))
awaitable_application = validator(ASGIToWSGI(AwaitableApp(), OPTIONS))
