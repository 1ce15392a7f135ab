"""One HTTP request through the bridge: the event-loop side and the worker side.

Strategy: all ``send``/``receive`` calls happen in one coroutine,
:meth:`Request.serve`, so a disconnect, a timeout or a cancellation is
handled in one place and always releases a waiting worker. The worker thread
never touches the loop's objects directly: it posts an item (``_SEND``,
``_RECEIVE``, ``_DONE``) to the loop's :class:`Inbox` and, for the first two,
blocks on a lock until :meth:`Request.serve` replies. See
``_wsgi_to_asgi.py`` for the fast path this serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from asgishift._types import (
    Environ,
    Message,
    OptExcInfo,
    Receive,
    Scope,
    Send,
    WriteCallable,
)
from asgishift.bridge._environ import check_status, encode_headers
from asgishift.bridge._errors import ClientDisconnected, InvalidResponse, RequestBodyTooLarge
from asgishift.bridge._files import FileWrapper

if TYPE_CHECKING:
    from asgishift.bridge._wsgi_to_asgi import WSGIToASGI

__all__ = ["Inbox", "Request", "send_simple", "simple_response"]

logger = logging.getLogger("asgishift.bridge")

_T = TypeVar("_T")

# Kinds of item the worker posts to the loop (compared by identity).
_DONE: Final = "done"  # (kind, messages or None): no reply expected
_SEND: Final = "send"  # (kind, messages): reply None or an exception
_RECEIVE: Final = "receive"  # (kind,): reply (body, more_body) or an exception
_TIMEOUT: Final = "timeout"  # posted by the request_timeout timer

#: Statuses whose responses never carry a body (RFC 9110 sections 15.2, 15.3.5, 15.4.5).
_NO_BODY_STATUS = frozenset({*range(100, 200), 204, 304})
_PATHSEND = "http.response.pathsend"
_WORKER_POLL = 5.0  # seconds between checks that the loop still runs


def simple_response(
    status: int, reason: str, extra: list[tuple[bytes, bytes]] | None = None
) -> tuple[Message, Message]:
    """Build the two ASGI messages of a short plain-text error response."""
    body = f"{status} {reason}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


async def send_simple(send: Send, messages: tuple[Message, Message], head: bool) -> None:
    """Send a response built by :func:`simple_response`, bodiless for HEAD."""
    await send(messages[0])
    await send({"type": "http.response.body"} if head else messages[1])


class Inbox:
    """Carry items from worker threads to one event loop, one wake-up per batch.

    ``loop.call_soon_threadsafe`` costs a self-pipe write (a syscall, during
    which the worker drops the GIL) and, on the loop, a wake-up per call. When
    many workers finish at once (100 requests blocked in the same 0.1 s sleep)
    that is 100 writes and up to 100 loop iterations. Here a worker appends its
    item to a deque and wakes the loop only when no drain is scheduled; the
    drain clears the flag *before* it empties the deque, so an item appended
    after the clear schedules a new drain (at worst a spurious, empty one) and
    an item appended before it is seen by this drain: nothing is lost.
    ``deque.append``/``popleft`` are atomic, and a lost race on the flag only
    costs an extra drain.

    On a pure-asyncio selector loop (POSIX) the wake-up is a byte on the
    inbox's own non-blocking pipe, watched with ``loop.add_reader``: asyncio's
    own self-pipe path allocates a handle per call and reads its socket until
    ``EAGAIN`` (two ``recv`` calls and an exception per wake-up), which costs
    about 2.5 µs more per round trip. The pipe's descriptors are closed when
    the inbox is garbage-collected, which cannot happen while its loop's
    selector still holds the reader, i.e. before the loop is closed. Other
    loops (uvloop, whose ``call_soon_threadsafe`` is already cheap, Windows'
    proactor) use ``call_soon_threadsafe``.

    Correctness does not need one inbox per loop (each drains its own
    deque); :class:`~asgishift.bridge.WSGIToASGI` keeps the last one it used
    so that concurrent requests share it.

    :param loop: the running event loop that runs :meth:`Request.serve`;
        create the inbox on that loop's thread.
    :raise OSError: if the pipe cannot be created (out of descriptors).
    """

    __slots__ = ("__weakref__", "_finalizer", "_read_fd", "_write_fd", "items", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: deque[tuple[Request, tuple[Any, ...]]] = deque()
        self.scheduled = False
        self._read_fd = -1
        self._write_fd = -1
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if sys.platform != "win32" and isinstance(loop, asyncio.SelectorEventLoop):
            read_fd, write_fd = os.pipe()
            # Closed with the inbox; a finalizer holds no reference to it.
            self._finalizer = weakref.finalize(self, _close_fds, read_fd, write_fd)
            os.set_blocking(read_fd, False)
            # A full pipe must never block a worker: a wake-up is pending then.
            os.set_blocking(write_fd, False)
            loop.add_reader(read_fd, self._readable)
            self._read_fd = read_fd
            self._write_fd = write_fd

    def post(self, request: Request, item: tuple[Any, ...]) -> None:
        """Queue ``item`` for ``request`` and wake the loop if needed (any thread).

        :raise RuntimeError: if the loop is closed.
        """
        if self._write_fd < 0:
            self.items.append((request, item))
            if not self.scheduled:
                self.scheduled = True
                try:
                    self.loop.call_soon_threadsafe(self.drain)
                except BaseException:
                    self.scheduled = False
                    raise
            return
        if self.loop.is_closed():
            raise RuntimeError("Event loop is closed")
        self.items.append((request, item))
        if not self.scheduled:
            self.scheduled = True
            try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
                os.write(self._write_fd, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups the loop has not read yet

    def _readable(self) -> None:
        """Consume the pipe's wake-up bytes and drain (the loop's reader callback)."""
        try:  # noqa: SIM105 (hot path: try is free, suppress() allocates)
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass  # readiness without data: drain anyway, it is harmless
        self.drain()

    def drain(self) -> None:
        """Deliver every queued item to its request (runs on the loop)."""
        self.scheduled = False  # first: a later post() wakes the loop again
        items = self.items
        popleft = items.popleft
        while items:
            request, item = popleft()
            try:
                request._wake(item)
            except Exception as exc:  # one bad item must not strand the others
                message = "asgishift bridge: delivering a worker item failed"
                self.loop.call_exception_handler({"message": message, "exception": exc})


def _close_fds(*fds: int) -> None:
    """Close an :class:`Inbox`'s pipe (its finalizer)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class Request:
    """Carry one HTTP request: the loop side (:meth:`serve`) and the worker side (:meth:`run`).

    :param bridge: the :class:`~asgishift.bridge.WSGIToASGI` serving it (its
        pool, limits and WSGI app).
    :param scope: the ASGI HTTP scope (read for ``extensions`` only).
    :param environ: the environ, ``wsgi.input`` already set.
    :param receive: the server's ``receive`` (ASGI HTTP spec).
    :param send: the server's ``send``.

    Create it on the event loop, after the first ``http.request`` message, and
    ``await`` :meth:`serve`; it returns once the response is complete, cut
    short, or refused (503).
    """

    __slots__ = (
        "aborted",
        "body_chunks",
        "body_complete",
        "bridge",
        "buffered",
        "content_length",
        "context",
        "environ",
        "finished",
        "headers",
        "headers_sent",
        "in_memory",
        "inbox",
        "loop",
        "no_body",
        "pathsend",
        "pending",
        "receive",
        "received",
        "reply",
        "scope",
        "send",
        "started",
        "status",
        "too_large",
        "waiter",
        "worker_lock",
    )

    def __init__(
        self, bridge: WSGIToASGI, scope: Scope, environ: Environ, receive: Receive, send: Send
    ) -> None:
        self.bridge = bridge
        self.scope = scope
        self.environ = environ
        self.receive = receive
        self.send = send
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "asgishift's WSGIToASGI needs an asyncio event loop (uvloop is fine); "
                "this server runs another one: with hypercorn use --worker-class asyncio "
                "or uvloop, not trio"
            ) from None
        inbox = bridge._inbox
        if inbox is None or inbox.loop is not self.loop:
            inbox = bridge._inbox = Inbox(self.loop)
        self.inbox = inbox
        self.context = contextvars.copy_context()
        self.waiter: asyncio.Future[tuple[Any, ...]] = self.loop.create_future()
        self.worker_lock: threading.Lock | None = None
        self.reply: Any = None
        self.pending = False  # the worker waits for a reply to an item the loop took
        self.finished = False  # serve() no longer takes items
        self.aborted = False  # client gone, timed out or cancelled: the worker stops
        self.body_complete = False
        self.received = 0
        self.too_large = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False
        self.started = False  # loop side: the response start went through (timeout over)
        self.no_body = environ["REQUEST_METHOD"] == "HEAD"
        self.in_memory = False  # the iterable holds the whole body already
        self.content_length: int | None = None
        self.body_chunks: list[bytes] = []
        self.buffered = 0
        self.pathsend = _PATHSEND in (scope.get("extensions") or ())

    # ------------------------------------------------------------------ loop side

    async def serve(self) -> None:
        """Dispatch the request to the pool and carry out what the worker posts."""
        bridge = self.bridge
        head = self.no_body  # before start_response, no_body means HEAD
        loop = self.loop
        timer = None
        if bridge.request_timeout is not None:
            timer = loop.call_later(bridge.request_timeout, self._wake, (_TIMEOUT,))
        watcher: asyncio.Task[None] | None = None
        # submit() comes last: the woken worker competes for the GIL with
        # whatever this thread still does before parking in the selector.
        if not bridge._pool.submit(self.run):
            if timer is not None:
                timer.cancel()
            logger.warning(
                "503 Service Unavailable: %d workers busy and %d requests queued "
                "(raise max_workers or max_queue)",
                bridge._pool.max_workers,
                bridge._pool.max_queue,
            )
            # Fresh messages each time: a server may keep or alter what it is sent.
            unavailable = simple_response(503, "Service Unavailable", [bridge._retry_after_header])
            await send_simple(self.send, unavailable, head)
            return
        pool = bridge._pool
        if self.body_complete and pool.in_flight > pool.threads:
            # Queued behind busy workers: notice a client that gives up
            # waiting, so its app never runs (see run()).
            watcher = loop.create_task(self._watch_disconnect())
        try:
            while True:
                item = await self.waiter
                kind = item[0]
                if kind is _DONE:
                    self.finished = True
                    await self._send_final(item[1])
                    return
                self.waiter = loop.create_future()
                if kind is _SEND:
                    self.pending = True
                    if watcher is None and self.body_complete:
                        watcher = loop.create_task(self._watch_disconnect())
                    reply: Any = None
                    try:
                        if self.aborted:  # the watcher saw the client leave
                            raise ConnectionResetError("the client disconnected")
                        if timer is None:
                            for message in item[1]:
                                await self.send(message)
                        else:
                            # The first SEND carries the response start: the
                            # timeout stops applying once it is through.
                            await self._before_deadline(self._send_all(item[1]))
                            timer.cancel()
                            timer = None
                            self.started = True
                    except Exception as exc:  # whatever the server raises, the client is gone
                        if not isinstance(exc, OSError):
                            # Not a plain disconnect: the server refused the
                            # message (e.g. more bytes than Content-Length).
                            logger.error("the ASGI server refused a response message", exc_info=exc)
                        self.aborted = True
                        reply = ClientDisconnected(f"send() failed: {exc!r}")
                        reply.__cause__ = exc
                    self._reply(reply)
                elif kind is _RECEIVE:
                    self.pending = True
                    if timer is None:
                        self._reply(await self._receive_body())
                    else:
                        try:
                            self._reply(await self._before_deadline(self._receive_body()))
                        except TimeoutError as exc:
                            self.aborted = True
                            self._reply(ClientDisconnected(str(exc)))
                else:  # _TIMEOUT
                    self.finished = True
                    self.aborted = True
                    await self._time_out(head)
                    return
        finally:
            self.finished = True
            # Whatever the worker does next (read, send) must fail fast now.
            self.aborted = True
            if self.pending:  # cancelled while the worker waits for a reply
                self._reply(ClientDisconnected("the ASGI request task was cancelled"))
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()

    async def _send_all(self, messages: Iterable[Message]) -> None:
        """Send ``messages`` in order."""
        for message in messages:
            await self.send(message)

    async def _before_deadline(self, awaitable: Coroutine[Any, Any, _T]) -> _T:
        """Await ``awaitable`` unless ``request_timeout`` expires first.

        A client that stops reading blocks ``send()`` (backpressure), and one
        that stops sending its body blocks ``receive()``; without this race
        such a client would outlast the timeout.

        :raise TimeoutError: if the timeout fired first (``awaitable`` is cancelled).
        """
        task = self.loop.create_task(awaitable)
        await asyncio.wait((task, self.waiter), return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            raise TimeoutError("request_timeout expired while waiting for the client")
        return task.result()

    def _wake(self, item: tuple[Any, ...]) -> None:
        """Deliver a worker's item to :meth:`serve` (runs on the loop)."""
        if not self.finished and not self.waiter.done():
            if item[0] is _TIMEOUT and self.started:
                return  # fired as the response started: too late to matter
            self.waiter.set_result(item)
        elif item[0] is _TIMEOUT:
            if not self.finished and not self.started:
                # serve() has not taken the previous item yet: try again after it.
                self.loop.call_soon(self._wake, item)
        elif item[0] is _SEND or item[0] is _RECEIVE:
            # serve() is gone or busy timing out: never leave the worker waiting.
            self.aborted = True
            self._reply(ClientDisconnected("the request was aborted"))

    def _reply(self, value: object) -> None:
        """Hand ``value`` to the worker waiting in :meth:`_call_loop` (runs on the loop)."""
        self.pending = False
        self.reply = value
        lock = self.worker_lock
        if lock is not None:
            lock.release()

    async def _receive_body(self) -> object:
        """Await the next body message for the worker: ``(body, more)`` or an exception."""
        try:
            message = await self.receive()
        except Exception as exc:  # whatever the server raises, the client is gone
            self.aborted = True
            return ClientDisconnected(f"receive() failed: {exc!r}")
        if message["type"] != "http.request":
            self.aborted = True
            return ClientDisconnected("the client disconnected before sending the whole body")
        more = bool(message.get("more_body", False))
        if not more:
            self.body_complete = True
        return (message.get("body", b""), more)

    async def _watch_disconnect(self) -> None:
        """Flag the request aborted when the server reports ``http.disconnect``.

        Started once the body is fully read and the response streams, so that
        an endless streaming response stops when its client leaves (some
        servers silently drop ``send()`` calls after a disconnect).
        """
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    break
        except Exception as exc:  # a broken receive() means the client is gone too
            logger.debug("receive() failed while watching for a disconnect: %r", exc)
        self.aborted = True

    async def _send_final(self, messages: list[Message] | None) -> None:
        """Send the messages the worker left for the end of the response."""
        if not messages:
            return
        try:
            for message in messages:
                await self.send(message)
        except OSError as exc:
            logger.debug("client went away before the response was sent: %r", exc)

    async def _time_out(self, head: bool) -> None:
        """Answer 504 (or cut the response short) when ``request_timeout`` expires."""
        environ = self.environ
        logger.error(
            "request timed out after %s s: %s %s%s "
            "(the worker thread runs on until the app returns)",
            self.bridge.request_timeout,
            environ["REQUEST_METHOD"],
            environ["SCRIPT_NAME"],
            environ["PATH_INFO"],
        )
        if not self.headers_sent:
            self.headers_sent = True
            try:
                await send_simple(self.send, simple_response(504, "Gateway Timeout"), head)
            except OSError as exc:
                logger.debug("client went away before the 504 was sent: %r", exc)

    # ---------------------------------------------------------------- worker side

    def _call_loop(self, item: tuple[Any, ...]) -> Any:
        """Post ``item`` to the loop and block until it replies (worker thread).

        :raise ClientDisconnected: if the request was aborted, the loop replied
            with an error, or the loop stopped running.
        """
        if self.aborted:
            raise ClientDisconnected("the client disconnected")
        lock = self.worker_lock
        if lock is None:
            lock = self.worker_lock = threading.Lock()
            lock.acquire()
        loop = self.loop
        try:
            self.inbox.post(self, item)
        except RuntimeError:  # the loop is closed
            self.aborted = True
            raise ClientDisconnected("the event loop is closed") from None
        while not lock.acquire(timeout=_WORKER_POLL):
            # A stopped loop never replies: do not wait for ever.
            if loop.is_closed() or not loop.is_running():
                self.aborted = True
                raise ClientDisconnected("the event loop stopped")
        reply = self.reply
        self.reply = None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def fetch(self) -> tuple[bytes, bool]:
        """Get the next request body chunk from the loop (the :class:`StreamInput` hook).

        :raise ClientDisconnected: after a disconnect.
        :raise RequestBodyTooLarge: once the body exceeds ``max_body_size``.
        """
        if self.too_large:
            raise RequestBodyTooLarge("request body exceeds max_body_size")
        body, more = self._call_loop((_RECEIVE,))
        self.received += len(body)
        limit = self.bridge.max_body_size
        if limit is not None and self.received > limit:
            self.too_large = True
            raise RequestBodyTooLarge(
                f"request body exceeds max_body_size ({limit} bytes); the client gets 413"
            )
        return body, more

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> WriteCallable:
        """Record the status and headers (PEP 3333 "The start_response() Callable").

        :raise InvalidResponse: for a second call without ``exc_info``, or a
            bad status line or header (CR/LF included).
        :raise BaseException: ``exc_info[1]`` when ``exc_info`` is given after
            the headers were sent.
        """
        if exc_info is not None and exc_info[0] is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
            # Replacing the response: what was buffered belonged to the old one.
            self.body_chunks = []
            self.buffered = 0
        elif self.status is not None:
            raise InvalidResponse(
                "start_response() called a second time without exc_info (PEP 3333); "
                "pass sys.exc_info() when replacing the response after an error"
            )
        code = check_status(status)
        encoded = encode_headers(headers)
        # Recomputed on each call: a 204 replaced through exc_info by a 500
        # must get its body back.
        self.no_body = self.environ["REQUEST_METHOD"] == "HEAD"
        if code in _NO_BODY_STATUS:
            self.no_body = True
            # RFC 9110 8.6 forbids Content-Length on 1xx/204; on 304 it is
            # allowed, but uvicorn's httptools protocol then waits for that
            # many body bytes and drops the connection. No body follows anyway.
            encoded = [(name, value) for name, value in encoded if name != b"content-length"]
        self.status = code
        self.headers = encoded
        self.content_length = None
        for name, value in encoded:
            if name == b"content-length" and value.isdigit():
                self.content_length = int(value)
        return self.write

    def write(self, data: bytes) -> None:
        """Send ``data`` as part of the body (PEP 3333 "The write() Callable").

        :raise InvalidResponse: before ``start_response`` or for non-bytes.
        :raise ClientDisconnected: if the client went away.
        """
        if self.status is None:
            raise InvalidResponse("write() called before start_response() (PEP 3333)")
        if not isinstance(data, bytes):
            raise InvalidResponse(f"write() takes bytes, got {type(data).__name__}")
        self._emit(data)

    def _emit(self, chunk: bytes) -> None:
        """Buffer or send one non-validated body chunk (worker thread)."""
        if not chunk or self.no_body:
            return
        if self.headers_sent:
            if self.aborted:
                raise ClientDisconnected("the client disconnected")
            self._call_loop(
                (_SEND, ({"type": "http.response.body", "body": chunk, "more_body": True},))
            )
            return
        # PEP 3333 "Buffering and Streaming": a block may be held back only if
        # holding it cannot delay it, i.e. the body is already all in memory
        # (a list, a non-streaming Django response) or this block completes
        # the declared Content-Length (Flask's one-item responses).
        total = self.buffered + len(chunk)
        if total <= self.bridge.buffer_size and (self.in_memory or total == self.content_length):
            self.body_chunks.append(chunk)
            self.buffered = total
            return
        # Switch to streaming: headers go out with the first data. The held
        # back part and the new chunk stay separate messages so that no
        # message is larger than max(buffer_size, chunk).
        messages = [self._start_message()]
        if self.body_chunks:
            held = b"".join(self.body_chunks)
            messages.append({"type": "http.response.body", "body": held, "more_body": True})
            self.body_chunks = []
        messages.append({"type": "http.response.body", "body": chunk, "more_body": True})
        self.headers_sent = True
        self._call_loop((_SEND, messages))

    def _start_message(self) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def run(self) -> None:
        """Run the app and post the end of the response to the loop (the pool job)."""
        if self.aborted:
            # Timed out, cancelled or disconnected while waiting in the queue:
            # nobody is listening, so do not spend a worker on it.
            logger.debug("skipping a request that was aborted while queued")
            self._post_done(None)
            return
        try:
            messages = self.context.run(self._run_app)
        except BaseException:  # the job must always report back to the loop
            logger.exception("asgishift bridge: internal error")
            messages = None if self.headers_sent else self._error(500, "Internal Server Error")
        self._post_done(messages)

    def _post_done(self, messages: list[Message] | None) -> None:
        """Hand the final messages (or ``None``: send nothing) to :meth:`serve`."""
        try:
            self.inbox.post(self, (_DONE, messages))
        except RuntimeError:
            logger.debug("event loop closed before the response could be sent")

    def _run_app(self) -> list[Message] | None:
        """Call the app, drain its iterable, close it; return the final messages."""
        try:
            iterable = self.bridge.wsgi_app(self.environ, self.start_response)
        except BaseException as exc:
            return self._failed(exc)
        try:
            return self._drain(iterable)
        except BaseException as exc:
            return self._failed(exc)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("the response iterable's close() raised")

    def _drain(self, iterable: Iterable[bytes]) -> list[Message] | None:
        """Pull the response out of ``iterable``; return what the loop sends at the end."""
        if (
            self.pathsend
            and type(iterable) is FileWrapper
            and self.status is not None
            and not self.headers_sent
            and not self.body_chunks
            and not self.no_body
        ):
            path = iterable.sendable_path()
            if path is not None:
                self.headers_sent = True
                return [self._start_message(), {"type": _PATHSEND, "path": path}]
        if hasattr(type(iterable), "__len__") or getattr(iterable, "streaming", None) is False:
            self.in_memory = True  # a sequence or a non-streaming Django response
        emit = self._emit
        for chunk in iterable:
            if type(chunk) is not bytes and not isinstance(chunk, bytes):
                raise InvalidResponse(
                    f"the response iterable yielded {type(chunk).__name__}, not bytes (PEP 3333)"
                )
            if chunk:
                if self.status is None:
                    raise InvalidResponse(
                        "the app yielded a body chunk before calling start_response() (PEP 3333)"
                    )
                emit(chunk)
                if self.aborted:
                    # The client is gone: pull nothing more from the app.
                    raise ClientDisconnected("the client disconnected")
        if self.status is None:
            raise InvalidResponse("the app returned without calling start_response() (PEP 3333)")
        if self.headers_sent:
            return [{"type": "http.response.body"}]
        if self.too_large:
            # The app swallowed RequestBodyTooLarge; the client still gets 413.
            raise RequestBodyTooLarge("request body exceeds max_body_size")
        return [
            self._start_message(),
            {"type": "http.response.body", "body": b"".join(self.body_chunks)},
        ]

    def _failed(self, exc: BaseException) -> list[Message] | None:
        """Log an app failure and return the error response, if one can still be sent."""
        environ = self.environ
        where = f"{environ['REQUEST_METHOD']} {environ['SCRIPT_NAME']}{environ['PATH_INFO']}"
        if isinstance(exc, ClientDisconnected):
            logger.debug("client disconnected during %s: %s", where, exc)
            return None
        if self.too_large and not self.headers_sent:
            logger.info("413 Content Too Large: %s", where)
            return self._error(413, "Content Too Large")
        if self.headers_sent:
            logger.error(
                "the WSGI app failed after the response started (%s); the response is cut short",
                where,
                exc_info=exc,
            )
            return None
        logger.error("the WSGI app failed (%s); answering 500", where, exc_info=exc)
        return self._error(500, "Internal Server Error")

    def _error(self, status: int, reason: str) -> list[Message]:
        """Return the messages of an error response; bodiless for HEAD requests."""
        start, body = simple_response(status, reason)
        if self.environ["REQUEST_METHOD"] == "HEAD":
            body = {"type": "http.response.body"}
        return [start, body]
