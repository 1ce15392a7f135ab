"""The WSGI-thread half of one ASGIToWSGI request, and the response iterable.

The WSGI server's thread waits here for the batches the app's task posts from
the event loop (:mod:`._asgi_exchange`), reads the request body from
``wsgi.input`` when the app asks for it, calls ``start_response`` and hands the
body to the server chunk by chunk. State is :class:`Body` plus whether the
task has ended; everything else crosses through the outbox queue and the loop
thread's ``call()``.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from asgishift._types import Environ, Message, StartResponse
from asgishift.bridge._asgi_exchange import (
    ACK,
    BODY,
    CUT,
    DONE,
    END,
    FAIL,
    FILE,
    GONE,
    READ,
    START,
    LoopSide,
)
from asgishift.bridge._asgi_options import ASGIToWSGIOptions
from asgishift.bridge._error_response import error_page
from asgishift.bridge._loop_thread import LoopThread
from asgishift.bridge._outbox import Outbox
from asgishift.bridge._uwsgi import connection_fd, under_uwsgi

__all__ = ["Batch", "Body", "ResponseAborted", "WSGISide", "error_response"]

logger = logging.getLogger("asgishift.bridge")

#: Bytes per item when a zero-copy file slice is iterated instead of read (see _FileSlice).
_SLICE_BLOCK = 64 * 1024
#: Seconds to wait for a task to end once it has been cancelled.
_CANCEL_WAIT = 5.0
#: What the loop side posts: a list of event tuples.
Batch = list[tuple[Any, ...]]
#: Seconds a request waits for the app before the client's socket is watched for the
#: end of the connection (where the server hands it over: gunicorn's ``gunicorn.socket``).
_WATCH_AFTER = 0.25


class ResponseAborted(RuntimeError):
    """Raised from the response iterable when the app failed after the response started.

    PEP 3333 ("Error Handling"): once the headers are sent the status cannot
    change, so the server must drop the connection instead of ending the body
    as if it were complete. The app's error has been logged before.
    """


def error_response(start_response: StartResponse, status: int, environ: Environ) -> list[bytes]:
    """Answer ``status`` with the bridges' shared plain-text error page."""
    line, headers, body = error_page(status, environ.get("REQUEST_METHOD", "GET"))
    start_response(line, headers)
    return [body]


class Body(enum.Enum):
    """How far the response body has come, as the WSGI thread has seen it."""

    STREAMING = "streaming"  # more body may follow
    ENDED = "ended"  # END seen: the body is complete
    FAILED = "failed"  # FAIL seen: the app failed (logged on the loop)
    NONE = "none"  # a HEAD, 1xx, 204 or 304 response: complete at its headers
    GONE = "gone"  # the client's socket showed it went away: the body ends here
    CUT = "cut"  # CUT seen: the server is stopping; the task was cancelled before the start


# Module constants for the hot paths (see PHASE_START in ._asgi_events for why).
BODY_STREAMING: Final = Body.STREAMING
BODY_ENDED: Final = Body.ENDED
BODY_FAILED: Final = Body.FAILED
BODY_NONE: Final = Body.NONE
BODY_GONE: Final = Body.GONE
BODY_CUT: Final = Body.CUT


class WSGISide:
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
        "client",
        "done",
        "left",
        "loop_thread",
        "options",
        "outbox",
        "probe",
        "side",
        "stream",
    )

    def __init__(
        self,
        side: LoopSide,
        loop_thread: LoopThread,
        outbox: Outbox[Batch],
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
        self.body = BODY_STREAMING
        self.done = False  # DONE seen: the app's task has ended
        #: What gives the client's socket descriptor (gunicorn's ``gunicorn.socket``'s
        #: ``fileno``, uWSGI's ``uwsgi.connection_fd``) until it is handed to the loop
        #: side to watch; ``None`` when the server has none or it was handed.
        self.client: Callable[[], int] | None = None
        #: The server's ``() -> bool`` that says the client has gone, where it offers
        #: one and no socket (waitress's ``waitress.client_disconnected``, with
        #: ``channel_request_lookahead`` set): polled while the request waits.
        self.probe: Callable[[], bool] | None = None
        self._batch: Batch = []
        self._pos = 0

    # --- before the response starts -----------------------------------------------------
    def respond(self, environ: Environ, start_response: StartResponse) -> Any:
        """Wait for the response to start, call ``start_response`` and return the iterable.

        An exception that ends the server's thread here (gunicorn's ``--timeout``
        raises ``SystemExit`` in a worker stuck in a request) cancels the app's
        task first, and waits for it a bounded time, so its clean-up runs in its
        own task before the process exits.

        Answers 504 when the app takes longer than ``response_timeout`` to start
        its response (counted from the call, and again from each request-body chunk
        it receives) and 500 when the app failed first.

        :return: a list (the whole response was ready), ``wsgi.file_wrapper(...)``
            (a file), or a :class:`_ResponseIterable` (a stream).
        """
        try:
            return self._respond(environ, start_response)
        except BaseException:
            if not self.done:
                self.loop_thread.call(self.side.cancel)
                self._wait_done(cancelled=True)
            raise

    def _respond(self, environ: Environ, start_response: StartResponse) -> Any:
        timeout = self.options.response_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        head: tuple[Any, ...] | None = None
        chunks: list[bytes] = []
        file: tuple[Any, ...] | None = None
        get = self.outbox.get
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            self.client = sock.fileno
        elif under_uwsgi(environ):
            self.client = connection_fd()
        else:
            self.probe = environ.get("waitress.client_disconnected")
        while head is None:
            try:
                if self.client is not None or self.probe is not None:
                    batch = self._get_watching(deadline)
                elif deadline is None:
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
                if kind == READ and timeout is not None:
                    # The client's upload is not the app's time: the clock restarts
                    # once the app has the next chunk of the body.
                    deadline = time.monotonic() + timeout
            if head is None and self.done:
                return self._failed_before_start(environ, start_response)
        # Collect what came with the start: the whole of a small response.
        batch, pos = self._batch, self._pos
        while pos < len(batch):
            event = batch[pos]
            kind = event[0]
            if kind == BODY and file is None:
                chunks.append(event[1])
            elif kind == END:
                self.body = BODY_ENDED
            elif kind == DONE:
                self.done = True
            elif kind == FAIL:
                self.body = BODY_FAILED
            elif kind == FILE and not chunks and file is None:
                file = event
            else:
                # READ, ACK, a second file, or body after a file: the iterable takes
                # them in order once the file is sent.
                break
            pos += 1
        self._batch, self._pos = batch, pos
        if self.body is BODY_FAILED:
            if file is not None:
                self._discard(file)
            self._wait_done()
            return error_response(start_response, 500, environ)
        if file is not None:
            try:
                reader = _open_file(file)
            except OSError as exc:
                logger.error("ASGI app %r: cannot send file %r: %s", self.side.app, file[1], exc)
                self.finish()
                return error_response(start_response, 500, environ)
            start_response(head[1], head[2])
            return self._file_response(environ, reader)
        write = start_response(head[1], head[2])
        if self.body is BODY_ENDED and self.done:
            return chunks
        if not head[3] and self.body is BODY_STREAMING:
            # No body can follow (RFC 9110: HEAD, 1xx, 204, 304), so nothing would make
            # the server send the headers until the app's stream ended (an SSE stream:
            # never). The response is complete now; close() disconnects the app.
            self.body = BODY_NONE
        elif not chunks:
            # The app started a response and waits before its first chunk (an SSE
            # stream with nothing to say yet). A WSGI server sends the headers with
            # the first chunk, and waitress only with the first non-empty one; an
            # empty write() makes gunicorn, wsgiref and waitress send them
            # now (PEP 3333: the head must go out before the first write's data),
            # so the client gets the head now, as under an ASGI server.
            try:
                write(b"")
            except OSError:
                # The client has gone: the server's own write of the first chunk
                # fails the same way, and its close() disconnects the app.
                chunks = [b""]
        return _ResponseIterable(self, chunks)

    def _get_watching(self, deadline: float | None) -> Batch:
        """Return the next batch; past :data:`_WATCH_AFTER`, watch for the client leaving.

        Where the server hands over the client's socket (``gunicorn.socket``) it is
        watched on the loop; where it offers a probe instead (:attr:`probe`), the
        probe is asked every :data:`_WATCH_AFTER` seconds while this thread waits.
        Once the client is seen gone, the loop side disconnects the app (which then
        ends, or sends :data:`GONE`).

        :param deadline: ``time.monotonic()`` value to give up at; ``None`` waits for ever.
        :raise queue.Empty: at the deadline.
        """
        batch = self._get_within(deadline, _WATCH_AFTER)
        while batch is None and self.probe is not None:
            probe = self.probe
            try:
                gone = probe()
            except Exception:  # a probe that fails tells nothing: stop asking it
                logger.debug("the server's client_disconnected() raised", exc_info=True)
                gone, self.probe = False, None
            if gone:
                self.probe = None
                self.loop_thread.call(self.side.client_gone, "the server said so")
            else:
                batch = self._get_within(deadline, _WATCH_AFTER)
        if batch is not None:
            return batch
        client, self.client = self.client, None
        if client is not None:
            try:
                fd = client()  # in the request's thread: uWSGI's is per thread
            except (OSError, ValueError, SystemError):
                fd = -1
            if isinstance(fd, int) and fd >= 0:
                self.loop_thread.call(self.side.watch_client, fd)
            # A long request under gunicorn: make sure a stop of the worker is seen in
            # time (the watch may not have found the worker at the process's first request).
            self.loop_thread.watch_server_stop(self.options.exit_reserve)
        if deadline is None:
            return self.outbox.get()
        return self.outbox.get(timeout=max(deadline - time.monotonic(), 0.0))

    def _get_within(self, deadline: float | None, wait: float) -> Batch | None:
        """Return the next batch, or ``None`` when none came within ``wait`` seconds.

        :raise queue.Empty: when ``deadline`` (``time.monotonic()``) came first.
        """
        if deadline is not None:
            wait = min(wait, max(deadline - time.monotonic(), 0.0))
        try:
            return self.outbox.get(timeout=wait)
        except queue.Empty:
            if deadline is not None and time.monotonic() >= deadline:
                raise
            return None

    def _handle_early(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == READ:
            self.read_body()
        elif kind == DONE:
            self.done = True
        elif kind == FAIL:
            self.body = BODY_FAILED
        elif kind == ACK:
            self.loop_thread.call(self.side.resume)
        elif kind == GONE:
            self.body = BODY_GONE
        elif kind == CUT:
            self.body = BODY_CUT

    def _failed_before_start(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        if self.body is BODY_GONE:
            # The client left before the response started and the app stopped: nobody
            # reads this. nginx's 499 keeps it apart from the app's errors in the access log.
            start_response(
                "499 Client Closed Request",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "0")],
            )
            return []
        if self.left is not None and self.left < 0:
            return error_response(start_response, 400, environ)
        if self.body is BODY_CUT:
            # The server is stopping (logged when the request was cut): RFC 9110
            # section 15.6.4, a temporary condition, worth a retry elsewhere.
            return error_response(start_response, 503, environ)
        return error_response(start_response, 500, environ)

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
        return error_response(start_response, 504, environ)

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
        if self.body is BODY_ENDED or self.body is BODY_NONE or self.body is BODY_GONE:
            return None
        while True:
            batch, pos = self._batch, self._pos
            if pos >= len(batch):
                if self.client is not None or self.probe is not None:
                    batch = self._batch = self._get_watching(None)
                else:
                    batch = self._batch = self.outbox.get()
                pos = 0
            self._pos = pos + 1
            event = batch[pos]
            kind = event[0]
            if kind == BODY:
                return event[1]
            if kind == END:
                self.body = BODY_ENDED
                return None
            if kind == READ:
                self.read_body()
            elif kind == ACK:
                self.loop_thread.call(self.side.resume)
            elif kind == GONE:
                # The client left while the app had nothing to send; the app has been
                # disconnected. close() waits for its task.
                self.body = BODY_GONE
                return None
            elif kind == FILE:
                return _open_file(event)
            elif kind == FAIL:
                self.body = BODY_FAILED
                raise ResponseAborted(
                    "the ASGI app failed after the response started (see the log above); "
                    "the connection must be dropped"
                )
            elif kind == DONE:
                # The loop side sends FAIL before DONE for an app that left its body
                # unfinished; DONE alone means the bridge cancelled the task (process
                # exit, or a stopping gunicorn worker's graceful_timeout).
                self.done = True
                raise ResponseAborted(
                    "the app's task was cancelled before its body was complete (the process "
                    "is exiting or the server's worker is stopping; see the log above); the "
                    "connection must be dropped"
                )

    def _wait_done(self, *, cancelled: bool = False) -> None:
        """Wait until the task has ended, at most the cancellation bound; answer READs with EOF.

        :param cancelled: the task has been cancelled already: wait only the bound.
        """
        wait = _CANCEL_WAIT if cancelled else self.options.disconnect_grace + _CANCEL_WAIT
        deadline = time.monotonic() + wait
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
            self._discard(event)

    def _discard(self, event: tuple[Any, ...]) -> None:
        """Handle an event of a response nobody will read any more."""
        kind = event[0]
        if kind == DONE:
            self.done = True
        elif kind == READ:
            self.loop_thread.call(self.side.feed, {"type": "http.disconnect"})
        elif kind == ACK:
            self.loop_thread.call(self.side.resume)
        elif kind == FILE and event[2] is not None:
            os.close(event[2])  # the descriptor the loop side duplicated for zerocopysend

    def finish(self) -> None:
        """End the request: disconnect the app if the body is unfinished, wait for its task."""
        if self.done:
            return
        if self.body is not BODY_ENDED:
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
            self._discard(event)


class _ResponseIterable:
    """The WSGI response iterable: yields each body chunk as the app sends it.

    ``close()`` (PEP 3333, called by the server even after an error or an early
    stop) disconnects an app that is still sending, and waits for its task to end.
    """

    __slots__ = ("_exchange", "_file", "_ready")

    def __init__(self, exchange: WSGISide, ready: list[bytes], file: Any = None) -> None:
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
    """A readable view of ``count`` bytes of a file descriptor from ``offset`` (owns the fd).

    Iterable in blocks of :data:`_SLICE_BLOCK` bytes, as a file is: uWSGI's
    ``wsgi.file_wrapper`` returns the object it is given, and WSGI middleware
    around the bridge iterates what the app returned (PEP 3333, "Optional
    Platform-Specific File Handling").
    """

    def __init__(self, fd: int, offset: int, count: int | None) -> None:
        self._fd = fd
        self._offset = offset
        self._left = count

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        block = self.read(_SLICE_BLOCK)
        if not block:
            raise StopIteration
        return block

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
