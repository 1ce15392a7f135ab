"""``ASGIToWSGI``: run an ASGI 3 app under any PEP 3333 (WSGI) server.

The WSGI server calls :class:`ASGIToWSGI` from its own thread. The app runs as
a task on this process's event-loop thread (:mod:`._loop_thread`); its
messages are checked and translated by the pure modules :mod:`._scope` and
:mod:`._asgi_events`, and cross between the threads in :mod:`._asgi_exchange`.
This module holds the WSGI-thread half: the callable, and the response
iterable that hands each body chunk to the server as the app sends it.

One request, small response::

    WSGI thread                          loop thread
    build_scope(environ)
    read a small body up front
    loop.call(side.start)  ──────────▶   task: app(scope, receive, send)
    outbox.get()           ◀──────────   [START, BODY, END, DONE]  (one batch)
    start_response(); return [body]
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from asgishift._types import ASGIApp, Environ, Message, StartResponse
from asgishift.bridge._asgi_exchange import (
    ACK,
    BODY,
    DONE,
    END,
    FAIL,
    FILE,
    READ,
    START,
    LoopSide,
)
from asgishift.bridge._asgi_lifespan import SERVING, Lifespan, LifespanPhase, LifespanSettings
from asgishift.bridge._error_response import error_page
from asgishift.bridge._loop_thread import LoopKind, LoopThread, process_loop
from asgishift.bridge._scope import ScopeError, build_scope, request_body_length

__all__ = ["ASGIToWSGI", "ASGIToWSGIOptions", "ResponseAborted"]

logger = logging.getLogger("asgishift.bridge")

#: Seconds to wait for a task to end once it has been cancelled.
_CANCEL_WAIT = 5.0
#: ``scope["extensions"]`` when the server offers ``wsgi.file_wrapper``.
_FILE_EXTENSIONS: dict[str, Any] = {
    "http.response.pathsend": {},
    "http.response.zerocopysend": {},
}
_Batch = list[tuple[Any, ...]]


@dataclass(frozen=True)
class ASGIToWSGIOptions:
    """Settings of :class:`ASGIToWSGI`; one frozen object, shared by every request.

    :param response_timeout: seconds from the call until the app sends
        ``http.response.start``; past it the app's task is cancelled and the
        client gets ``504 Gateway Timeout``. ``None`` waits for ever. A response
        that has started may stream for as long as it likes (SSE).
    :param disconnect_grace: seconds an app may keep running after the WSGI
        server closed the response early (the client went away); its
        ``receive()`` returns ``http.disconnect`` at once, and its task is
        cancelled when the grace is over.
    :param background_timeout: seconds the app's task may keep running after it
        sent its last body message (e.g. Starlette background tasks); the WSGI
        server's thread waits for it in ``close()``, then cancels it.
    :param chunk_size: bytes read from ``wsgi.input`` per ``receive()``. A body
        with a ``Content-Length`` up to this size is read before the app starts.
    :param send_buffer: bytes of response body the app may send before ``send()``
        waits for the WSGI server to take them (backpressure).
    :param lifespan: ``"auto"``, ``"on"`` or ``"off"``; see
        :class:`~asgishift.bridge._asgi_lifespan.LifespanSettings`.
    :param startup_timeout: seconds to wait for lifespan startup.
    :param shutdown_timeout: seconds to wait for lifespan shutdown at exit.
    :param file_block_size: bytes per block for ``wsgi.file_wrapper``.
    :param loop: the process's event loop: ``"auto"`` (uvloop when installed),
        ``"asyncio"`` or ``"uvloop"``. One loop serves every ``ASGIToWSGI`` of a
        process; the first one to serve a request chooses it.
    """

    response_timeout: float | None = 60.0
    disconnect_grace: float = 1.0
    background_timeout: float = 30.0
    chunk_size: int = 64 * 1024
    send_buffer: int = 256 * 1024
    lifespan: Literal["auto", "on", "off"] = "auto"
    startup_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    file_block_size: int = 256 * 1024
    loop: LoopKind = "auto"

    def __post_init__(self) -> None:
        for name in ("disconnect_grace", "background_timeout", "startup_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"ASGIToWSGIOptions.{name} must be >= 0 seconds")
        if self.response_timeout is not None and self.response_timeout <= 0:
            raise ValueError("ASGIToWSGIOptions.response_timeout must be > 0 seconds or None")
        if self.chunk_size < 1 or self.send_buffer < 1 or self.file_block_size < 1:
            raise ValueError("chunk_size, send_buffer and file_block_size must be >= 1 byte")
        if self.loop not in ("auto", "asyncio", "uvloop"):
            raise ValueError(f"loop must be 'auto', 'asyncio' or 'uvloop', not {self.loop!r}")
        if self.lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {self.lifespan!r}")


class ResponseAborted(RuntimeError):
    """Raised from the response iterable when the app failed after the response started.

    PEP 3333 ("Error Handling"): once the headers are sent the status cannot
    change, so the server must drop the connection instead of ending the body
    as if it were complete. The app's error has been logged before.
    """


class _Process:
    """What one process needs to serve requests: its loop thread and the app's lifespan."""

    __slots__ = ("lifespan", "loop_thread", "pid")

    def __init__(self, loop_thread: LoopThread, lifespan: Lifespan) -> None:
        self.pid = os.getpid()
        self.loop_thread = loop_thread
        self.lifespan = lifespan


class ASGIToWSGI:
    """A PEP 3333 application that runs an ASGI 3 HTTP app (FastAPI, Starlette, Django ASGI).

    >>> from asgishift.bridge import ASGIToWSGI
    >>> application = ASGIToWSGI(asgi_app)  # doctest: +SKIP

    Serve ``application`` with gunicorn (sync or gthread workers), mod_wsgi,
    uWSGI or wsgiref. Lifespan startup runs before the first request of each
    process (call :meth:`startup` from a gunicorn ``post_fork`` hook to run it
    at worker start), shutdown at process exit. See docs/asgi_to_wsgi.md.

    :param app: an ASGI 3 application ``app(scope, receive, send)``.
    :param options: settings; the defaults of :class:`ASGIToWSGIOptions` when ``None``.
    """

    def __init__(self, app: ASGIApp, options: ASGIToWSGIOptions | None = None) -> None:
        self.app = app
        self.options = options or ASGIToWSGIOptions()
        self._lock = threading.Lock()
        self._lifespan_settings = LifespanSettings(
            self.options.lifespan, self.options.startup_timeout, self.options.shutdown_timeout
        )
        self._process: _Process | None = None

    def __repr__(self) -> str:
        return f"ASGIToWSGI({self.app!r})"

    # --- lifespan ------------------------------------------------------------------
    def _current_process(self) -> _Process:
        with self._lock:  # concurrent first requests must share one lifespan
            process = self._process
            if process is None or process.pid != os.getpid():
                loop_thread = process_loop(self.options.loop)
                process = self._process = _Process(
                    loop_thread, Lifespan(self.app, loop_thread, self._lifespan_settings)
                )
        return process

    def startup(self) -> bool:
        """Run the app's lifespan startup in this process now, if it has not run yet.

        Call it at worker start (gunicorn's ``post_fork`` hook) so the first
        request does not wait for startup; otherwise the first request runs it.
        ASGI lifespan spec, "Startup".

        :return: ``False`` when startup failed (the app's message is logged and
            every request will be answered 500), else ``True`` (also for an app
            without lifespan support).
        """
        return self._current_process().lifespan.startup() is not LifespanPhase.FAILED

    def shutdown(self) -> None:
        """Run lifespan shutdown now instead of at process exit (ASGI lifespan spec, "Shutdown")."""
        process = self._process
        if process is not None and process.pid == os.getpid():
            process.lifespan.shutdown()

    # --- a request ---------------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        """Serve one request (PEP 3333, "The Application/Framework Side").

        :return: the response iterable: a list when the whole response was ready
            at once, ``wsgi.file_wrapper(...)`` for ``http.response.pathsend``,
            else an iterator that yields each body chunk as the app sends it.
        """
        process = self._process
        if process is None or process.pid != os.getpid():
            process = self._current_process()
        lifespan = process.lifespan
        phase = lifespan.phase
        if (
            phase is not LifespanPhase.READY
            and phase is not LifespanPhase.UNSUPPORTED
            and lifespan.startup() not in SERVING
        ):
            return _error(start_response, 500, environ)
        options = self.options
        try:
            length = request_body_length(environ)
            extensions = _FILE_EXTENSIONS if "wsgi.file_wrapper" in environ else None
            scope = build_scope(environ, state=lifespan.state, extensions=extensions)
        except ScopeError as exc:
            logger.warning("ASGIToWSGI: bad request: %s", exc)
            return _error(start_response, 400, environ)
        stream = environ["wsgi.input"]
        first: Message | None = None
        if length == 0:
            first = {"type": "http.request", "body": b"", "more_body": False}
            left: int | None = 0
        elif length is not None and length <= options.chunk_size:
            body = stream.read(length)
            if len(body) < length:
                return _error(start_response, 400, environ)
            first = {"type": "http.request", "body": body, "more_body": False}
            left = 0
        else:
            left = length
        outbox: queue.SimpleQueue[_Batch] = queue.SimpleQueue()
        side = LoopSide(
            process.loop_thread.loop,
            self.app,
            scope,
            outbox,
            first,
            options.send_buffer,
            options.disconnect_grace,
        )
        exchange = _Exchange(side, process.loop_thread, outbox, stream, left, options)
        process.loop_thread.call(side.start)
        return exchange.respond(environ, start_response)


def _error(start_response: StartResponse, status: int, environ: Environ) -> list[bytes]:
    """Answer ``status`` with the bridges' shared plain-text error page."""
    line, headers, body = error_page(status, environ.get("REQUEST_METHOD", "GET"))
    start_response(line, headers)
    return [body]


class Body(enum.Enum):
    """How far the response body has come, as the WSGI thread has seen it."""

    STREAMING = "streaming"  # more body may follow
    ENDED = "ended"  # END seen: the body is complete
    FAILED = "failed"  # FAIL seen: the app failed (logged on the loop)


class _Exchange:
    """The WSGI-thread half of one request: waits for batches, reads the body, yields chunks.

    :param side: the request's loop half; only reached through ``loop_thread.call``.
    :param outbox: the batches ``side`` posts.
    :param stream: ``wsgi.input``.
    :param left: request-body bytes still to read; ``None`` reads to EOF.
    """

    __slots__ = (
        "_batch",
        "_pos",
        "body",
        "done",
        "left",
        "loop_thread",
        "options",
        "outbox",
        "side",
        "stream",
    )

    def __init__(
        self,
        side: LoopSide,
        loop_thread: LoopThread,
        outbox: queue.SimpleQueue[_Batch],
        stream: Any,
        left: int | None,
        options: ASGIToWSGIOptions,
    ) -> None:
        self.side = side
        self.loop_thread = loop_thread
        self.outbox = outbox
        self.stream = stream
        self.left = left
        self.options = options
        self.body = Body.STREAMING
        self.done = False  # DONE seen: the app's task has ended
        self._batch: _Batch = []
        self._pos = 0

    # --- before the response starts -----------------------------------------------------
    def respond(self, environ: Environ, start_response: StartResponse) -> Any:
        timeout = self.options.response_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        head: tuple[Any, ...] | None = None
        chunks: list[bytes] = []
        file: tuple[Any, ...] | None = None
        get = self.outbox.get
        while head is None:
            try:
                if deadline is None:
                    batch = get()
                else:
                    batch = get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return self._timed_out(environ, start_response, timeout)
            for index, event in enumerate(batch):
                kind = event[0]
                if kind == START:
                    head = event
                    self._batch, self._pos = batch, index + 1
                    break
                self._handle_early(event)
            if head is None and self.done:
                return self._failed_before_start(environ, start_response)
        # Collect what came with the start: the whole of a small response.
        batch, pos = self._batch, self._pos
        while pos < len(batch):
            event = batch[pos]
            kind = event[0]
            if kind == BODY:
                chunks.append(event[1])
            elif kind == END:
                self.body = Body.ENDED
            elif kind == DONE:
                self.done = True
            elif kind == FAIL:
                self.body = Body.FAILED
            elif kind == FILE and not chunks and file is None:
                file = event
            else:
                break  # READ, ACK, or a second file: handled while iterating
            pos += 1
        self._batch, self._pos = batch, pos
        if self.body is Body.FAILED:
            self._wait_done()
            return _error(start_response, 500, environ)
        if file is not None:
            try:
                reader = _open_file(file)
            except OSError as exc:
                logger.error("ASGI app %r: cannot send file %r: %s", self.side.app, file[1], exc)
                self.finish()
                return _error(start_response, 500, environ)
            start_response(head[1], head[2])
            return self._file_response(environ, reader)
        start_response(head[1], head[2])
        if self.body is Body.ENDED and self.done:
            return chunks
        return _ResponseIterable(self, chunks)

    def _handle_early(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == READ:
            self.read_body()
        elif kind == DONE:
            self.done = True
        elif kind == FAIL:
            self.body = Body.FAILED
        elif kind == ACK:
            self.loop_thread.call(self.side.resume)

    def _failed_before_start(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        if self.left is not None and self.left < 0:
            return _error(start_response, 400, environ)
        return _error(start_response, 500, environ)

    def _timed_out(self, environ: Environ, start_response: StartResponse, timeout: Any) -> Any:
        logger.error(
            "ASGI app %r did not send http.response.start within %s s for %s %s; answered "
            "504 and cancelled its task (ASGIToWSGIOptions.response_timeout)",
            self.side.app,
            timeout,
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
        self.loop_thread.call(self.side.cancel)
        self._wait_done()
        return _error(start_response, 504, environ)

    def _file_response(self, environ: Environ, reader: Any) -> Any:
        if not self.done:
            return _ResponseIterable(self, [], reader)
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is None:
            return _ResponseIterable(self, [], reader)
        return wrapper(reader, self.options.file_block_size)

    # --- the request body ----------------------------------------------------------------
    def read_body(self) -> None:
        """Answer a READ with the next chunk of ``wsgi.input`` (PEP 3333 input stream)."""
        left = self.left
        size = self.options.chunk_size if left is None else min(left, self.options.chunk_size)
        message: Message
        try:
            data = self.stream.read(size) if size else b""
        except OSError:
            data = None
        if data is None or (left is not None and len(data) < size):
            self.left = -1  # the client went away mid-body
            message = {"type": "http.disconnect"}
        elif left is None:
            if not data:
                self.left = 0
            message = {"type": "http.request", "body": data, "more_body": bool(data)}
        else:
            self.left = left - len(data)
            message = {"type": "http.request", "body": data, "more_body": self.left > 0}
        self.loop_thread.call(self.side.feed, message)

    # --- while iterating -------------------------------------------------------------------
    def next_item(self) -> bytes | Any | None:
        """Return the next body chunk, a readable file (pathsend), or ``None`` at the end.

        Waits for the app's next batch when needed; answers READ and ACK events on the way.

        :raise ResponseAborted: when the app failed after the response started.
        """
        if self.body is Body.ENDED:
            return None
        while True:
            batch, pos = self._batch, self._pos
            if pos >= len(batch):
                batch = self._batch = self.outbox.get()
                pos = 0
            self._pos = pos + 1
            event = batch[pos]
            kind = event[0]
            if kind == BODY:
                return event[1]
            if kind == END:
                self.body = Body.ENDED
                return None
            if kind == READ:
                self.read_body()
            elif kind == ACK:
                self.loop_thread.call(self.side.resume)
            elif kind == FILE:
                return _open_file(event)
            elif kind == FAIL:
                self.body = Body.FAILED
                raise ResponseAborted(
                    "the ASGI app failed after the response started (see the log above); "
                    "the connection must be dropped"
                )
            elif kind == DONE:
                # The loop side always sends FAIL before DONE for an unfinished body.
                self.done = True
                raise ResponseAborted("the ASGI app ended without finishing the body")

    def _wait_done(self) -> None:
        """Wait until the task has ended, at most the cancellation bound; answer READs with EOF."""
        deadline = time.monotonic() + self.options.disconnect_grace + _CANCEL_WAIT
        cancelled = False
        while not self.done:
            try:
                if self._pos >= len(self._batch):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise queue.Empty
                    self._batch, self._pos = self.outbox.get(timeout=remaining), 0
                event = self._batch[self._pos]
                self._pos += 1
            except queue.Empty:
                if not cancelled:
                    cancelled = True
                    self.loop_thread.call(self.side.cancel)
                    deadline = time.monotonic() + _CANCEL_WAIT
                    continue
                logger.error(
                    "ASGI app %r: its task did not end within %s s of being cancelled; "
                    "it keeps running on the event loop",
                    self.side.app,
                    _CANCEL_WAIT,
                )
                return
            kind = event[0]
            if kind == DONE:
                self.done = True
            elif kind == READ:
                self.loop_thread.call(self.side.feed, {"type": "http.disconnect"})
            elif kind == ACK:
                self.loop_thread.call(self.side.resume)

    def finish(self) -> None:
        """End the request: disconnect the app if the body is unfinished, wait for its task."""
        if self.done:
            return
        if self.body is not Body.ENDED:
            self.loop_thread.call(self.side.close)
            self._wait_done()
            return
        # The body is complete but the task runs on (background work): give it time.
        deadline = time.monotonic() + self.options.background_timeout
        while not self.done:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                if self._pos >= len(self._batch):
                    self._batch, self._pos = self.outbox.get(timeout=remaining), 0
                event = self._batch[self._pos]
                self._pos += 1
            except queue.Empty:
                logger.warning(
                    "ASGI app %r still ran %s s after its response ended; cancelling it "
                    "(ASGIToWSGIOptions.background_timeout)",
                    self.side.app,
                    self.options.background_timeout,
                )
                self.loop_thread.call(self.side.cancel)
                self._wait_done()
                return
            if event[0] == DONE:
                self.done = True
            elif event[0] == READ:
                self.loop_thread.call(self.side.feed, {"type": "http.disconnect"})
            elif event[0] == ACK:
                self.loop_thread.call(self.side.resume)


class _ResponseIterable:
    """The WSGI response iterable: yields each body chunk as the app sends it.

    ``close()`` (PEP 3333, called by the server even after an error or an early
    stop) disconnects an app that is still sending, and waits for its task to end.
    """

    __slots__ = ("_exchange", "_file", "_ready")

    def __init__(self, exchange: _Exchange, ready: list[bytes], file: Any = None) -> None:
        self._exchange = exchange
        self._ready = ready
        self._file = file

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ready:
            return self._ready.pop(0)
        if self._file is not None:
            block = self._file.read(self._exchange.options.file_block_size)
            if block:
                return bytes(block)
            self._file.close()
            self._file = None
        item = self._exchange.next_item()
        if item is None:
            raise StopIteration
        if isinstance(item, bytes):
            return item
        self._file = item
        return self.__next__()

    def close(self) -> None:
        """Release the request (PEP 3333: the server calls this once, whatever happened)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._exchange.finish()


class _FileSlice:
    """A readable view of ``count`` bytes of a file descriptor from ``offset`` (owns the fd)."""

    def __init__(self, fd: int, offset: int, count: int | None) -> None:
        self._fd = fd
        self._offset = offset
        self._left = count

    def read(self, size: int = -1) -> bytes:
        if self._left is not None:
            size = self._left if size < 0 else min(size, self._left)
        elif size < 0:
            size = 1 << 30
        if size == 0:
            return b""
        data = os.pread(self._fd, size, self._offset)
        self._offset += len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _open_file(event: tuple[Any, ...]) -> Any:
    """Return a readable binary file for a FILE event (pathsend or zerocopysend)."""
    _, path, fd, offset, count = event
    if path is not None:
        return open(path, "rb")  # closed by the server through close()
    return _FileSlice(fd, offset, count)
