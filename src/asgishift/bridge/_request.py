"""One HTTP request through ``WSGIToASGI``: the hand-off between event loop and worker.

This module moves items between the two threads; it holds no protocol rules.
What the response may look like is decided by the pure modules
(:mod:`._wsgi_response`, :mod:`._response`, :mod:`._error_response`) and the
request's states are the enums of :mod:`._state`.

Strategy: all ``send``/``receive`` calls happen in one coroutine,
:meth:`Request.serve`, so a disconnect, a timeout or a cancellation is
handled in one place and always releases a waiting worker. The worker thread
never touches the loop's objects directly: it posts an item (``_SEND``,
``_RECEIVE``, ``_DONE``) to the loop's :class:`~._inbox.Inbox` and, for the
first two, blocks on a lock until :meth:`Request.serve` replies. See
``_wsgi_to_asgi.py`` for the fast path this serves.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from time import monotonic
from typing import Any, Final, cast

from asgishift._types import (
    Environ,
    Message,
    OptExcInfo,
    Receive,
    Scope,
    Send,
    WriteCallable,
    WSGIApp,
)
from asgishift.bridge._app_failure import app_failure
from asgishift.bridge._body_watch import BodyWatch
from asgishift.bridge._errors import ClientDisconnected, InvalidResponse, RequestBodyTooLarge
from asgishift.bridge._files import FileWrapper
from asgishift.bridge._inbox import Inbox
from asgishift.bridge._input import StreamInput
from asgishift.bridge._options import BridgeOptions
from asgishift.bridge._pool import WorkerPool
from asgishift.bridge._response import close_headers
from asgishift.bridge._server_io import first_of, send_all, wait_disconnect
from asgishift.bridge._state import (
    ABORT_EVENT,
    ABORTED,
    CLOSED,
    COMPLETE,
    OPEN,
    START_EVENT,
    STARTED,
    TOO_LARGE,
    BodyPhase,
    advance,
)
from asgishift.bridge._unread_body import (
    closes_connection,
    drain_and_send,
    error_response,
    send_error,
)
from asgishift.bridge._wsgi_response import FILE as FILE_WRAPPER
from asgishift.bridge._wsgi_response import (
    ITERABLE_KINDS,
    NOT_STARTED,
    OTHER,
    SENT,
    SIZED,
    WSGIResponse,
    iterable_kind,
)
from asgishift.bridge._wsgi_response import STARTED as RESPONSE_STARTED

__all__ = ["Request"]

logger = logging.getLogger("asgishift.bridge")

# Kinds of item the worker posts to the loop (compared by identity).
_DONE: Final = "done"  # (kind, messages or None, exception or None): no reply expected
_SEND: Final = "send"  # (kind, messages): reply None or an exception
_RECEIVE: Final = "receive"  # (kind,): reply (body, more_body) or an exception
_TIMEOUT: Final = "timeout"  # posted by the request_timeout timer

_PATHSEND: Final = "http.response.pathsend"
#: The message of the cancellation that cuts a ``send()`` short (see :meth:`Request._cut_send`).
_CUT: Final = "asgishift: the client left while send() waited"
_WORKER_POLL: Final = 5.0  # seconds between checks that the loop still runs


class Request:
    """Carry one HTTP request: the loop side (:meth:`serve`) and the worker side (:meth:`run`).

    :param app: the PEP 3333 application.
    :param options: the bridge's settings (limits in bytes, timeouts in seconds).
    :param pool: the worker pool the app runs on.
    :param inbox: the worker→loop channel of the running loop.
    :param scope: the ASGI HTTP scope (read for ``extensions`` only).
    :param environ: the environ, ``wsgi.input`` set by the caller.
    :param receive: the server's ``receive`` (ASGI HTTP spec).
    :param send: the server's ``send``.
    :param body: whether the server has more body messages (``PARTIAL``) or not.
    :param received: request body bytes already taken from the server.

    Create it on the inbox's event loop and ``await`` :meth:`serve`; it returns
    once the response is complete, cut short, or refused (503), and raises the
    app's exception, if any, after the error response went out.
    """

    __slots__ = (
        "app",
        "body",
        "context",
        "environ",
        "inbox",
        "loop",
        "method",
        "options",
        "outcome",
        "pathsend",
        "phase",
        "pool",
        "receive",
        "received",
        "reply",
        "response",
        "send",
        "sending",
        "started",
        "stream",
        "waiter",
        "worker_lock",
    )

    #: The body stream the bridge put in ``wsgi.input``; set by the caller for a
    #: body that streams (``PARTIAL``) only, so a request complete at dispatch
    #: pays nothing for it. Read through middleware that replaced ``wsgi.input``.
    stream: StreamInput

    def __init__(
        self,
        app: WSGIApp,
        options: BridgeOptions,
        pool: WorkerPool,
        inbox: Inbox,
        scope: Scope,
        environ: Environ,
        receive: Receive,
        send: Send,
        body: BodyPhase = COMPLETE,
        received: int = 0,
    ) -> None:
        self.app = app
        self.options = options
        self.pool = pool
        self.inbox = inbox
        self.loop = inbox.loop
        self.environ = environ
        self.receive = receive
        self.send = send
        self.method: str = environ["REQUEST_METHOD"]
        self.context = contextvars.copy_context()
        self.waiter: asyncio.Future[tuple[Any, ...]] = inbox.new_waiter()
        self.worker_lock: threading.Lock | None = None
        self.reply: Any = None
        self.outcome: tuple[Any, ...] = (_DONE, None, None)
        self.started = 0.0  # when run() began (time.monotonic(), seconds)
        # The task serving the request while it waits in a streamed send() (see _cut_send).
        self.sending: asyncio.Task[Any] | None = None
        self.phase = OPEN
        self.body = body
        self.received = received
        self.response = WSGIResponse(self.method, options.buffer_size)
        extensions = scope.get("extensions")
        self.pathsend = extensions is not None and _PATHSEND in extensions

    # ------------------------------------------------------------------ loop side

    async def serve(self) -> None:
        """Dispatch the request to the pool and carry out what the worker posts.

        :raise Exception: the app's exception, after its 500 (or the cut-short
            response) went out, as Starlette's ``ServerErrorMiddleware`` does, so
            the server logs it and test clients re-raise it.
        """
        options = self.options
        loop = self.loop
        pool = self.pool
        timer = None
        if options.request_timeout is not None:
            timer = loop.call_later(options.request_timeout, self.wake, (_TIMEOUT,))
        # submit() comes last: the woken worker competes for the GIL with
        # whatever this thread still does before parking in the selector.
        if not pool.submit(self.run):
            if timer is not None:
                timer.cancel()
            self.phase = CLOSED
            logger.warning(
                "503 Service Unavailable: %d workers busy and %d requests queued "
                "(raise max_workers or max_queue)",
                pool.max_workers,
                pool.max_queue,
            )
            await send_error(self, 503, (b"retry-after", str(options.retry_after).encode()))
            return
        watcher: asyncio.Task[None] | None = None
        reader: BodyWatch | None = None  # reads an unfinished body ahead (see _watch_body)
        if self.body is COMPLETE and pool.queued:
            # Queued behind busy workers: notice a client that gives up
            # waiting, so its app never runs (see run()).
            watcher = loop.create_task(self._watch_disconnect())
        pending = False  # the worker waits for a reply to an item taken here
        sending = False  # send() was called: too late for a 504
        error: BaseException | None = None
        try:
            while True:
                item = await self.waiter
                kind = item[0]
                if kind is _DONE:
                    self.phase = CLOSED
                    if item[1]:
                        if self.body is COMPLETE:
                            send = self.send
                            if watcher is not None:  # streamed: the client may leave mid-send
                                self.sending = asyncio.current_task(loop)
                            try:  # send_messages(), inline: one coroutine less
                                for message in item[1]:
                                    await send(message)
                            except OSError as exc:
                                logger.debug(
                                    "client went away before the response was sent: %r", exc
                                )
                            except asyncio.CancelledError as exc:
                                if not self._was_cut(exc):
                                    raise
                            finally:
                                self.sending = None
                        else:
                            if reader is not None:
                                await reader.stop()
                            await drain_and_send(self, item[1])
                    error = item[2]
                    break
                self.waiter = self.inbox.new_waiter()
                pending = True
                if kind is _SEND:
                    if watcher is None:
                        # The response streams: notice the client leaving.
                        if self.body is COMPLETE:
                            watcher = loop.create_task(self._watch_disconnect())
                        else:
                            reader = self._watch_body()
                            watcher = reader.task
                    elif reader is not None:
                        reader.streamed()  # may let it read on past drain_body_size
                    reply: Any = None
                    try:
                        if self.phase is ABORTED:  # the watcher saw the client leave
                            raise ConnectionResetError("the client disconnected")
                        sending = True
                        self.sending = asyncio.current_task(loop)
                        if timer is None:
                            for message in item[1]:
                                await self.send(message)
                        else:
                            # The first SEND carries the response start: the
                            # timeout stops applying once it is through.
                            await first_of(send_all(self.send, item[1]), self.waiter)
                            timer.cancel()
                            timer = None
                            self.phase = advance(self.phase, START_EVENT)
                        self.sending = None
                    except asyncio.CancelledError as exc:
                        self.sending = None
                        if not self._was_cut(exc):
                            raise
                        reply = ClientDisconnected("the client left while send() waited")
                    except Exception as exc:  # whatever the server raises, the client is gone
                        self.sending = None
                        if not isinstance(exc, OSError):
                            # Not a plain disconnect: the server refused the message.
                            logger.error("the ASGI server refused a response message", exc_info=exc)
                        self.phase = advance(self.phase, ABORT_EVENT)
                        reply = ClientDisconnected(f"send() failed: {exc!r}")
                        reply.__cause__ = exc
                    pending = False
                    self._reply(reply)
                elif kind is _RECEIVE:
                    if timer is None:
                        got = await self._receive_body()
                    else:
                        try:
                            got = await first_of(self._receive_body(), self.waiter)
                        except TimeoutError as exc:
                            self.phase = advance(self.phase, ABORT_EVENT)
                            got = ClientDisconnected(str(exc))
                    pending = False
                    self._reply(got)
                else:  # _TIMEOUT
                    pending = False
                    self.phase = CLOSED
                    if reader is not None:
                        await reader.stop()
                    await self._time_out(sending)
                    break
        finally:
            # Whatever the worker does next (read, send) must fail fast now.
            self.phase = CLOSED
            if pending:  # cancelled while the worker waits for a reply
                self._reply(ClientDisconnected("the ASGI request task was cancelled"))
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
        if error is not None:
            raise error

    def wake(self, item: tuple[Any, ...]) -> None:
        """Deliver a worker's item to :meth:`serve` (the inbox calls it on the loop)."""
        phase = self.phase
        if phase is not CLOSED and not self.waiter.done():
            if item[0] is _TIMEOUT and phase is STARTED:
                return  # fired as the response started: too late to matter
            self.waiter.set_result(item)
        elif item[0] is _TIMEOUT:
            if phase is OPEN or phase is ABORTED:
                # serve() has not taken the previous item yet: try again after it.
                self.loop.call_soon(self.wake, item)
        elif item[0] is _SEND or item[0] is _RECEIVE:
            # serve() is gone or busy timing out: never leave the worker waiting.
            self.phase = advance(phase, ABORT_EVENT)
            self._reply(ClientDisconnected("the request was aborted"))

    def _reply(self, value: object) -> None:
        """Hand ``value`` to the worker waiting in :meth:`_call_loop` (runs on the loop)."""
        self.reply = value
        lock = self.worker_lock
        if lock is not None:
            lock.release()

    def _cut_send(self) -> None:
        """Stop waiting for a ``send()`` the client's leaving left without an end (on the loop).

        A server may never finish a ``send()`` parked on backpressure once
        its client has gone (hypercorn 0.18 over HTTP/2 reports
        ``http.disconnect`` to ``receive()`` and leaves the parked ``send()``
        waiting for ever); waiting for it would hold the worker thread, and
        the iterable's ``close()``, for good. The wait is cancelled instead,
        with the message :data:`_CUT`, and :meth:`serve` treats it as a
        failed ``send()`` (see :meth:`_was_cut`). Starlette's
        ``StreamingResponse`` stops its sending the same way.
        """
        task = self.sending
        if task is not None:
            self.sending = None
            task.cancel(_CUT)

    def _was_cut(self, exc: asyncio.CancelledError) -> bool:
        """Return whether ``exc`` is :meth:`_cut_send`'s cancellation alone, and absorb it.

        A cancellation of the request's task by anyone else (the server
        stopping, ``asyncio.wait_for``) is not absorbed: the caller re-raises it.
        """
        if exc.args != (_CUT,):
            return False
        task = asyncio.current_task(self.loop)
        if sys.version_info >= (3, 11) and task is not None:
            # Ours is delivered: take it off the count, so that asyncio.timeout()
            # and task groups around the request see only the others' requests.
            if task.uncancel() > 0:
                return False  # cancelled by someone else as well
        logger.debug(
            "%s %s: the client left while send() waited", self.method, self.environ["PATH_INFO"]
        )
        return True

    async def _receive_body(self) -> object:
        """Await the next body message for the worker: ``(body, more)`` or an exception."""
        try:
            message = await self.receive()
        except RequestBodyTooLarge as exc:  # the BodyWatch dropped the rest for the app
            return exc
        except Exception as exc:  # whatever the server raises, the client is gone
            self.phase = advance(self.phase, ABORT_EVENT)
            return ClientDisconnected(f"receive() failed: {exc!r}")
        if message["type"] != "http.request":
            self.phase = advance(self.phase, ABORT_EVENT)
            return ClientDisconnected("the client disconnected before sending the whole body")
        more = bool(message.get("more_body", False))
        if not more and self.body is not TOO_LARGE:
            self.body = COMPLETE
        return (message.get("body", b""), more)

    async def _watch_disconnect(self) -> None:
        """Mark the request aborted when the client leaves (see :func:`wait_disconnect`).

        Started once the body is fully read and the response streams, so that
        an endless streaming response stops when its client leaves.
        """
        await wait_disconnect(self.receive)
        self.phase = advance(self.phase, ABORT_EVENT)
        self._cut_send()

    def _watch_body(self) -> BodyWatch:
        """Start reading an unfinished body ahead of the app, to notice the client leaving.

        The servers drop ``send()`` silently after a disconnect, so a streaming
        response to a request whose body the app has not read to its end
        would otherwise run for ever. The :class:`~._body_watch.BodyWatch`
        holds at most ``drain_body_size`` bytes ahead of the app, or reads on
        and drops the rest when the app ignores the body (see
        :meth:`~._body_watch.BodyWatch.streamed`); from now on every
        ``receive`` goes through it.
        """

        def leave() -> None:
            self.phase = advance(self.phase, ABORT_EVENT)
            self._cut_send()

        def progress() -> int:  # body bytes the app has read so far (buffered ones too)
            return self.stream.consumed

        reader = BodyWatch(self.receive, self.options.drain_body_size, leave, progress)
        self.receive = reader.receive
        reader.start()
        return reader

    async def _time_out(self, sending: bool) -> None:
        """Answer 504 when ``request_timeout`` expires, unless a response start was sent.

        :param sending: whether ``send()`` was called already (the server may
            have the start of the app's response; a 504 would be a second one).
        """
        environ = self.environ
        logger.error(
            "request timed out after %s s: %s %s%s "
            "(the worker thread runs on until the app returns)",
            self.options.request_timeout,
            self.method,
            environ["SCRIPT_NAME"],
            environ["PATH_INFO"],
        )
        if not sending:
            await send_error(self, 504)

    # ---------------------------------------------------------------- worker side

    def _call_loop(self, item: tuple[Any, ...]) -> Any:
        """Post ``item`` to the loop and block until it replies (worker thread).

        :raise ClientDisconnected: if the request was aborted, the loop replied
            with an error, or the loop stopped running.
        """
        if self.phase >= ABORTED:
            raise ClientDisconnected("the client disconnected")
        lock = self.worker_lock
        if lock is None:
            lock = self.worker_lock = threading.Lock()
            lock.acquire()
        loop = self.loop
        try:
            self.inbox.post(self, item)
        except RuntimeError:  # the loop is closed: nobody else changes the phase now
            self.phase = advance(self.phase, ABORT_EVENT)
            raise ClientDisconnected("the event loop is closed") from None
        while not lock.acquire(timeout=_WORKER_POLL):
            # A stopped loop never replies: do not wait for ever.
            if loop.is_closed() or not loop.is_running():
                self.phase = advance(self.phase, ABORT_EVENT)
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
        if self.body is TOO_LARGE:
            raise RequestBodyTooLarge("request body exceeds max_body_size")
        body, more = self._call_loop((_RECEIVE,))
        self.received += len(body)
        limit = self.options.max_body_size
        if limit is not None and self.received > limit:
            self.body = TOO_LARGE
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
        replacing = False
        if exc_info is not None and exc_info[0] is not None:
            try:
                if self.response.phase is SENT:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
            replacing = True
        self.response.start(status, headers, replacing)
        return self.write

    def write(self, data: bytes) -> None:
        """Send ``data`` as part of the body (PEP 3333 "The write() Callable").

        :raise InvalidResponse: before ``start_response`` or for non-bytes.
        :raise ClientDisconnected: if the client went away.
        """
        if self.response.phase is NOT_STARTED:
            raise InvalidResponse("write() called before start_response() (PEP 3333)")
        if not isinstance(data, bytes):
            raise InvalidResponse(f"write() takes bytes, got {type(data).__name__}")
        if data:
            messages = self.response.body(data)
            if messages is not None:
                self._send_body(messages)

    def _send_body(self, messages: list[Message]) -> None:
        """Send what :meth:`WSGIResponse.body` returned; the first may start the response."""
        if (
            self.body is not COMPLETE
            and messages[0]["type"] == "http.response.start"
            and closes_connection(self)
        ):
            self.response.headers.extend(close_headers(self.environ["SERVER_PROTOCOL"]))
        self._call_loop((_SEND, messages))

    def run(self) -> Callable[[], None]:
        """Run the app (the pool job); return the step that posts the end to the loop.

        The pool runs the returned :meth:`_post_done` once this thread counts
        as free (see :meth:`WorkerPool.submit`).
        """
        self.started = monotonic()
        if self.phase >= ABORTED:
            # Timed out, cancelled or disconnected while waiting in the queue:
            # nobody is listening, so do not spend a worker on it.
            logger.debug("skipping a request that was aborted while queued")
            self.outcome = (_DONE, None, None)
            return self._post_done
        try:
            messages, error = self.context.run(self._run_app)
        except BaseException:  # the job must always report back to the loop
            logger.exception("asgishift bridge: internal error")
            messages = None if self.response.phase is SENT else error_response(self, 500)
            error = None
        self.outcome = (_DONE, messages, error)
        return self._post_done

    def _post_done(self) -> None:
        """Hand the final messages (``None``: send nothing) and the app's error to :meth:`serve`.

        Posts the ``(_DONE, messages, error)`` item :meth:`run` left in
        ``outcome``; spaced out when the job ran long (:meth:`Inbox.post_finished`).
        """
        try:
            self.inbox.post_finished(self, self.outcome, self.started)
        except RuntimeError:
            logger.debug("event loop closed before the response could be sent")

    def _run_app(self) -> tuple[list[Message] | None, BaseException | None]:
        """Call the app, drain its iterable, close it; return the final messages and error."""
        try:
            iterable = self.app(self.environ, self.start_response)
        except BaseException as exc:
            return self._failed(exc)
        try:
            return self._drain(iterable), None
        except BaseException as exc:
            return self._failed(exc)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("the response iterable's close() raised")

    def _drain(self, iterable: Iterable[bytes]) -> list[Message]:
        """Pull the response out of ``iterable``; return what the loop sends at the end."""
        response = self.response
        messages: list[Message] | None = None
        # holds_whole_body() and the file wrapper test in one, inline: a call less.
        kind = ITERABLE_KINDS.get(type(iterable))
        if kind is None:
            kind = iterable_kind(iterable)
        if kind is SIZED:
            response.in_memory = True
        elif kind is OTHER:
            if getattr(iterable, "streaming", None) is False:  # a whole Django response
                response.in_memory = True
        elif response.phase is RESPONSE_STARTED:  # a file wrapper
            if not response.has_body:
                # HEAD, 204, 304: reading the file only to drop it held the response
                # open (a HEAD to a 2 GiB file: 11 s on uvicorn); gunicorn reads none.
                # Closed unread by _run_app, whichever wrapper it is.
                iterable = ()
            elif kind is FILE_WRAPPER:
                wrapper = cast(FileWrapper, iterable)
                declared = response.declared
                if self.pathsend:
                    path = wrapper.sendable_path(declared)
                    if path is not None:
                        messages = response.pathsend(path)
                if messages is None and declared is not None:
                    wrapper.limit(declared)  # a range: read no further than it
        if messages is None:
            body = response.body
            for chunk in iterable:
                if type(chunk) is not bytes and not isinstance(chunk, bytes):
                    raise InvalidResponse(
                        f"the response iterable yielded {type(chunk).__name__}, "
                        "not bytes (PEP 3333)"
                    )
                if chunk:
                    messages = body(chunk)
                    if messages is not None:
                        self._send_body(messages)
                    if self.phase >= ABORTED:
                        # The client is gone: pull nothing more from the app.
                        raise ClientDisconnected("the client disconnected")
            if self.body is TOO_LARGE and response.phase is not SENT:
                # The app swallowed RequestBodyTooLarge; the client still gets 413.
                raise RequestBodyTooLarge("request body exceeds max_body_size")
            starting = response.phase is not SENT
            messages = response.finish()
            if response.dropped or response.short:
                environ = self.environ
                where = f"{self.method} {environ['SCRIPT_NAME']}{environ['PATH_INFO']}"
                logger.warning("%s", response.length_mismatch(where))
        else:
            starting = True
        if starting and self.body is not COMPLETE and closes_connection(self):
            response.headers.extend(close_headers(self.environ["SERVER_PROTOCOL"]))
        return messages

    def _failed(self, exc: BaseException) -> tuple[list[Message] | None, BaseException | None]:
        """Log an app failure; return the error response, if any, and what serve() re-raises.

        The policy is :func:`~._app_failure.app_failure`'s.
        """
        environ = self.environ
        failure = app_failure(
            exc,
            f"{self.method} {environ['SCRIPT_NAME']}{environ['PATH_INFO']}",
            sent=self.response.phase is SENT,
            too_large=self.body is TOO_LARGE,
        )
        traceback = exc if failure.traceback else None
        logger.log(failure.level, "%s", failure.message, exc_info=traceback)
        return (
            None if failure.status is None else error_response(self, failure.status)
        ), failure.reraise
