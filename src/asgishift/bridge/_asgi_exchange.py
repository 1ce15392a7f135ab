"""The event-loop side of one ASGIToWSGI request: the app's task, ``receive`` and ``send``.

Everything here runs on the process's event-loop thread. It talks to the WSGI
thread that serves the request through exactly two channels, both passed in:

- ``outbox``, an :class:`~asgishift.bridge._outbox.Outbox` of *batches*: lists of event tuples
  (:data:`START`, :data:`BODY`, ...). All messages the app sends between two
  suspensions go out as one batch, so a small response (start + body + task
  done) crosses to the WSGI thread with one ``put``.
  The batch leaves whenever the app's task suspends (``_app_steps.Stepper``) or
  ends; what a task of the app's own sends leaves at once.
- the WSGI thread calls :meth:`LoopSide.feed`, :meth:`LoopSide.resume`,
  :meth:`LoopSide.close`, :meth:`LoopSide.cancel` and :meth:`LoopSide.watch_client`
  through the loop thread's ``call()``.

A client that leaves is seen when a write fails (the WSGI server closes the
response early), or, when the server hands over the client's socket (gunicorn's
``gunicorn.socket``) and the request has waited a while, when that socket shows
the end of the connection: the app is then disconnected as if the server had
closed the response (ASGI HTTP spec, "Disconnected Client"), as an ASGI server
would, so ``request.is_disconnected()`` and an idle stream see it.

Backpressure, both ways: the request body is read from ``wsgi.input`` only when
the app's ``receive()`` asks for it (a :data:`READ` event), one chunk at a time;
and once ``send_buffer`` bytes of response body are on their way, ``send()``
waits until the WSGI thread has handed them all to the server (an :data:`ACK`
event, answered by :meth:`LoopSide.resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import os
import socket
import sys
from typing import Any, Final

from asgishift._types import ASGIApp, Message, Scope
from asgishift.bridge._app_steps import Stepper, steps_of
from asgishift.bridge._asgi_events import (
    PHASE_DONE,
    PHASE_START,
    RULES,
    Phase,
    ProtocolViolation,
    advance,
    body_bytes,
    start_args,
)
from asgishift.bridge._outbox import Outbox
from asgishift.bridge._response import body_allowed

__all__ = [
    "ACK",
    "BODY",
    "CUT",
    "DONE",
    "END",
    "FAIL",
    "FILE",
    "GONE",
    "READ",
    "START",
    "ConnectionClosed",
    "LoopSide",
]

logger = logging.getLogger("asgishift.bridge")

# Event kinds, the first item of each event tuple in a batch.
START = 0  #: (START, status_line, headers, body_allowed)
BODY = 1  #: (BODY, chunk)
FILE = 2  #: (FILE, path_or_None, fd_or_None, offset, count_or_None)
END = 3  #: (END,): the body is complete
READ = 4  #: (READ,): the app waits for the next request-body chunk
ACK = 5  #: (ACK,): send() waits until everything before this was handed on
FAIL = 6  #: (FAIL,): the app failed (logged); 500, or abort a started response
DONE = 7  #: (DONE,): the app's task has ended; always the last event
GONE = 8  #: (GONE,): the client's socket shows it went away; the body ends here
CUT = 9  #: (CUT,): the bridge cancelled the task before the response started

_DISCONNECT: Message = {"type": "http.disconnect"}

#: How the log line of an app that raised says how far its response had come.
_WHEN: Final[dict[Phase, str]] = {
    Phase.START: "",
    Phase.BODY: " (after the response started; the connection is dropped)",
    Phase.DONE: " (after the response was complete; the client has it)",
}

#: Python 3.12+ can start a task eagerly (``asyncio.Task(..., eager_start=True)``).
_EAGER = sys.version_info >= (3, 12)
#: Python 3.11+ takes the task's context as an argument (``create_task(..., context=)``).
_TASK_CONTEXT = sys.version_info >= (3, 11)


class ConnectionClosed(OSError):
    """Signal a ``send()`` after the WSGI server closed the response (client gone).

    ASGI HTTP spec, "Disconnected Client": ``send()`` on a closed connection
    raises a server-specific subclass of :class:`OSError`.
    """


class Link(enum.Enum):
    """The state of the connection as the app sees it."""

    OPEN = "open"  # the WSGI server is still iterating
    CLOSED = "closed"  # the WSGI server closed the iterable early, or the response ended


class Watch(enum.Enum):
    """Whether the client's socket is watched for the end of the connection."""

    OFF = "off"  # not asked to (yet)
    PENDING = "pending"  # asked to; starts once the request body has been read
    ON = "on"  # a reader is registered on the loop
    ENDED = "ended"  # stopped (the response ended, the client left, or data came)


class RequestBody(enum.Enum):
    """Whether more of the request body may still be read from ``wsgi.input``."""

    PENDING = "pending"
    COMPLETE = "complete"


# Module constants for the hot paths (see PHASE_START in ._asgi_events for why).
LINK_OPEN: Final = Link.OPEN
LINK_CLOSED: Final = Link.CLOSED
BODY_PENDING: Final = RequestBody.PENDING
BODY_COMPLETE: Final = RequestBody.COMPLETE
WATCH_OFF: Final = Watch.OFF
WATCH_PENDING: Final = Watch.PENDING
WATCH_ON: Final = Watch.ON
WATCH_ENDED: Final = Watch.ENDED


class LoopSide:
    """Run one ASGI HTTP request on the event loop and post its events to ``outbox``.

    :param loop: the event loop the request runs on (the process's loop thread's).
    :param app: the ASGI 3 application.
    :param scope: the request's HTTP scope (see :func:`~asgishift.bridge._scope.build_scope`).
    :param outbox: where batches (lists of event tuples) go to the WSGI thread.
    :param first: the first ``http.request`` message, when the WSGI thread has
        already read the whole (small) body; ``None`` makes the first
        ``receive()`` ask for a chunk with a :data:`READ` event.
    :param send_buffer: bytes of response body in flight before ``send()`` waits.
    :param disconnect_grace: seconds the app may run on after an early close
        before its task is cancelled.
    :param open_requests: the loop thread's set of open requests: this request is
        in it from :meth:`start` until its task ends, so that process exit can
        end it (see :meth:`~asgishift.bridge._loop_thread.LoopThread.end_open_requests`).
    :param context: the :mod:`contextvars` context the app's task runs in: a copy
        of the WSGI server thread's context at the call (``contextvars.copy_context()``),
        so that what WSGI middleware around the bridge set (a request id, a tracing
        span) reaches the app, while what the app sets stays in this copy and never
        flows back into the server's thread or into the next request.
    """

    __slots__ = (
        "_batch",
        "_body_allowed",
        "_client_fd",
        "_context",
        "_grace_handle",
        "_loop",
        "_open_requests",
        "_pending",
        "_reader",
        "_resumer",
        "_unacked",
        "_waiters",
        "app",
        "body",
        "disconnect_grace",
        "link",
        "outbox",
        "phase",
        "scope",
        "send_buffer",
        "task",
        "violation",
        "watch",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        app: ASGIApp,
        scope: Scope,
        outbox: Outbox[list[tuple[Any, ...]]],
        first: Message | None,
        send_buffer: int,
        disconnect_grace: float,
        open_requests: set[Any],
        context: contextvars.Context,
    ) -> None:
        self.app = app
        self._context = context
        self.scope = scope
        self.outbox = outbox
        # The next message for receive(): the first, read up front, or one whose
        # receive() was cancelled before it arrived.
        self._pending = first
        self.send_buffer = send_buffer
        self.disconnect_grace = disconnect_grace
        self.phase = PHASE_START
        self.link = LINK_OPEN
        self.body = BODY_PENDING if first is None else BODY_COMPLETE
        self.task: asyncio.Task[None] | None = None
        self.violation: ProtocolViolation | None = None
        self._batch: list[tuple[Any, ...]] = []
        self._body_allowed = True
        self._unacked = 0
        self._reader: asyncio.Future[Message] | None = None
        self._resumer: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[Message]] = []
        self._grace_handle: asyncio.TimerHandle | None = None
        self._loop = loop
        self._open_requests = open_requests
        self.watch = WATCH_OFF
        self._client_fd = -1

    # --- called by the WSGI thread through LoopThread.call -------------------------
    def start(self) -> None:
        """Create the app's task (on the loop), in the request's own context."""
        self._open_requests.add(self)
        if _EAGER:
            # The app runs up to its first suspension right here: a small response is
            # complete before this returns, with no extra turn of the loop.
            self.task = asyncio.Task(  # type: ignore[call-arg]
                self._run(), loop=self._loop, eager_start=True, context=self._context
            )
        elif _TASK_CONTEXT:
            self.task = self._loop.create_task(  # type: ignore[call-arg]
                self._run(), context=self._context
            )
        else:
            # Python 3.10: a task copies the context current at its creation.
            self.task = self._context.run(self._loop.create_task, self._run())

    def feed(self, message: Message) -> None:
        """Answer a :data:`READ` with an ``http.request`` or ``http.disconnect`` message."""
        if message.get("more_body") is not True:
            self.body = BODY_COMPLETE
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.set_result(message)
        elif message["type"] == "http.request":
            # Its receive() was cancelled: keep the chunk for the next call, so no
            # body bytes are lost to an app that reads with a timeout.
            self._pending = message
        if message["type"] == "http.disconnect":
            self._disconnect()
        elif self.body is BODY_COMPLETE and self.watch is WATCH_PENDING:
            self._start_watch()

    def resume(self) -> None:
        """Answer an :data:`ACK`: the WSGI server has taken everything sent before it."""
        self._unacked = 0
        resumer, self._resumer = self._resumer, None
        if resumer is not None and not resumer.done():
            resumer.set_result(None)

    def close(self) -> None:
        """The WSGI server closed the response early: disconnect, then cancel after the grace."""
        if self.link is LINK_CLOSED and self.phase is PHASE_DONE:
            return
        self._disconnect()
        task = self.task
        if task is not None and not task.done() and self._grace_handle is None:
            self._grace_handle = self._loop.call_later(self.disconnect_grace, task.cancel)

    def cancel(self) -> None:
        """Cancel the app's task now (the response timed out, or must not outlive the request).

        Also how a stopping server ends the requests still open (a gunicorn worker's
        graceful stop, process exit): a request whose response has not started is
        told so with :data:`CUT`, and its WSGI thread answers ``503 Service
        Unavailable`` rather than blaming the app with a 500. (A WSGI thread that
        cancels a request itself, at a timeout, no longer reads its events.)
        """
        if self.phase is PHASE_START and self.link is LINK_OPEN:
            self._batch.append((CUT,))
        self._disconnect()
        if self.task is not None:
            self.task.cancel()

    def watch_client(self, fd: int) -> None:
        """Watch the client's socket ``fd`` for the end of the connection (on the loop).

        The WSGI thread asks once the request has waited a while (most requests end
        first and never pay for a watch). Watching starts once the request body has
        been read (what the socket holds until then is body) and ends with the
        response, or at the first byte the client sends (a pipelined request: the
        socket can no longer tell). When the client has closed its end (or reset the
        connection), the app is disconnected as by :meth:`close` and the WSGI thread
        gets :data:`GONE`.

        :param fd: the client socket's descriptor; it is only peeked at, never read.
        """
        if self.watch is not WATCH_OFF or self.link is LINK_CLOSED or fd < 0:
            return
        self._client_fd = fd
        self.watch = WATCH_PENDING
        if self.body is BODY_COMPLETE:
            self._start_watch()

    def _start_watch(self) -> None:
        try:
            self._loop.add_reader(self._client_fd, self._check_client)
        except (OSError, ValueError, RuntimeError, NotImplementedError):
            self.watch = WATCH_ENDED  # this loop or descriptor cannot be watched
            return
        self.watch = WATCH_ON

    def _stop_watch(self) -> None:
        if self.watch is WATCH_ON:
            self._loop.remove_reader(self._client_fd)
        self.watch = WATCH_ENDED

    def _check_client(self) -> None:
        """The client's socket is readable: the end of the connection, or data."""
        try:
            # A socket object of the descriptor's own (blocking, no timeout), so the
            # peek never waits; detached below, so the server's socket stays open.
            peeker = socket.socket(fileno=self._client_fd)
        except OSError:
            self._stop_watch()
            return
        try:
            data = peeker.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return  # not readable after all
        except OSError:
            data = b""  # reset by the peer
        finally:
            peeker.detach()
        self._stop_watch()
        if not data:
            self.client_gone("its socket was closed")

    def client_gone(self, how: str) -> None:
        """The server says the client has gone (on the loop): disconnect the app.

        As :meth:`close` does, and the WSGI thread gets :data:`GONE`. Called when
        the watched socket shows the end of the connection, and by the WSGI
        thread when the server's own probe says so (waitress's
        ``waitress.client_disconnected``). Nothing happens once the response
        is complete or the app was disconnected already.

        :param how: how it was seen, for the debug log line.
        """
        if self.link is LINK_CLOSED:
            return
        logger.debug(
            "the client of %s %s went away (%s)", self.scope["method"], self.scope["path"], how
        )
        self._batch.append((GONE,))
        self.flush()
        self.close()

    # --- the app's view -------------------------------------------------------------
    async def receive(self) -> Message:
        """Return the next request message (ASGI HTTP spec, "Request", "Disconnected Client")."""
        if self.link is LINK_CLOSED:
            # The client is gone or the response is complete: nothing more to read
            # (ASGI HTTP spec, "Disconnected Client"), even a body read up front.
            return _DISCONNECT
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        future: asyncio.Future[Message] = self._loop.create_future()
        reader = self._reader
        if reader is None and self.body is BODY_PENDING:
            self._reader = future
            self._batch.append((READ,))
            self.flush()
        elif reader is not None and reader.done():
            # The last receive() gave up (a timeout cancelled it) before its READ
            # was answered: the answer on its way is this call's.
            self._reader = future
        else:
            # Nothing more to read: wait for the disconnect (the response ends, or
            # the client goes). A caller that gives up is forgotten, so a stream
            # that polls for disconnects holds no future per poll.
            waiters = self._waiters
            waiters.append(future)
            try:
                return await future
            finally:
                if not future.done() or future.cancelled():
                    with contextlib.suppress(ValueError):
                        waiters.remove(future)
        return await future

    async def send(self, message: Message) -> None:
        """Take one response message (ASGI HTTP spec, "Response Start", "Response Body").

        :raise ConnectionClosed: after the WSGI server closed the response early.
        :raise ProtocolViolation: for a message out of order or malformed; the
            bridge answers 500 (or aborts a started response) and logs the rule.
        """
        if self.link is LINK_CLOSED and self.phase is not PHASE_DONE:
            raise ConnectionClosed("the client went away (the WSGI server closed the response)")
        try:
            phase = advance(self.phase, message)
            kind = message["type"]
            if kind == "http.response.body":
                body = body_bytes(message)
                if body and self._body_allowed:
                    self._batch.append((BODY, body))
                    self._unacked += len(body)
            elif kind == "http.response.start":
                status, headers = start_args(message)
                # HEAD and 1xx/204/304 responses carry no body, whatever the app sends
                # (RFC 9110; the rule both bridge directions share).
                allowed = self._body_allowed = body_allowed(message["status"], self.scope["method"])
                self._batch.append((START, status, headers, allowed))
            elif kind == "http.response.pathsend":
                path = message.get("path")
                if not isinstance(path, str) or not os.path.isabs(path):
                    raise ProtocolViolation("pathsend", f"path {path!r}")
                if self._body_allowed:
                    self._batch.append((FILE, path, None, 0, None))
            elif self._body_allowed:  # http.response.zerocopysend
                self._batch.append(self._zerocopy(message))
        except ProtocolViolation as exc:
            if self.violation is None:
                self.violation = exc
            raise
        self.phase = phase
        if phase is PHASE_DONE:
            self._batch.append((END,))
            # ASGI HTTP spec: receive() after the response was sent returns http.disconnect.
            self._disconnect()
        elif self._unacked >= self.send_buffer:
            self._batch.append((ACK,))
            self.flush()
            resumer = self._resumer = self._loop.create_future()
            await resumer
            return
        if asyncio.current_task(self._loop) is not self.task:
            # Sent from a task of the app's own (anyio task groups: sse-starlette, an
            # older Starlette's StreamingResponse) while the request's task waits; it
            # may wait until the stream ends, so the batch cannot wait for it.
            self.flush()

    def _zerocopy(self, message: Message) -> tuple[Any, ...]:
        file = message.get("file")
        offset = message.get("offset")
        try:
            fd = file if isinstance(file, int) else file.fileno()  # type: ignore[union-attr]
            if offset is None:
                # ASGI zero-copy extension: without an offset, the file is read from
                # its current position.
                offset = os.lseek(fd, 0, os.SEEK_CUR)
            # The app may close its file once send() returns; the WSGI thread reads a copy.
            fd = os.dup(fd)
        except (AttributeError, OSError, TypeError) as exc:
            raise ProtocolViolation("body", f"zerocopysend file {file!r}") from exc
        count = message.get("count")
        return (FILE, None, fd, int(offset), None if count is None else count)

    # --- internals ------------------------------------------------------------------
    def flush(self) -> None:
        """Post the events collected so far as one batch (called whenever the app suspends)."""
        if self._batch:
            batch, self._batch = self._batch, []
            self.outbox.put(batch)

    def _disconnect(self) -> None:
        self.link = LINK_CLOSED
        if self.watch is not WATCH_OFF:
            self._stop_watch()
        waiters, self._waiters = self._waiters, []
        reader, self._reader = self._reader, None
        if reader is not None:
            waiters.append(reader)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(_DISCONNECT)
        resumer, self._resumer = self._resumer, None
        if resumer is not None and not resumer.done():
            resumer.set_exception(ConnectionClosed("the client went away"))

    async def _run(self) -> None:
        self.task = asyncio.current_task()  # set now: an eager task runs before start() sets it
        failed = False
        try:
            steps = steps_of(self.app(self.scope, self.receive, self.send))
            # The app's first step runs here, not in a Stepper: most apps answer
            # without ever suspending, and then no generator is needed at all.
            try:
                waited_on = steps.send(None)
            except StopIteration:
                pass
            else:
                self.flush()
                await Stepper(steps, waited_on, self.flush)
        except asyncio.CancelledError:
            pass  # cancelled by the bridge, which has said why
        except Exception as exc:
            failed = True
            if exc is self.violation:
                pass  # logged below with the rule
            elif self.link is LINK_CLOSED and self.phase is not PHASE_DONE:
                # The client went away (mid-body or mid-response) and the app raised on
                # noticing it (ConnectionClosed from send(), or a framework's own exception).
                failed = False
                logger.debug(
                    "ASGI app %r stopped with %r after the client went away", self.app, exc
                )
            else:
                logger.error(
                    "ASGI app %r raised %s while serving %s %s%s",
                    self.app,
                    type(exc).__name__,
                    self.scope["method"],
                    self.scope["path"],
                    _WHEN[self.phase],
                    exc_info=exc,
                )
        finally:
            self._finish(failed)

    def _finish(self, failed: bool) -> None:
        violation = self.violation
        if violation is not None:
            failed = True
            logger.error(
                "ASGI app %r broke the ASGI spec while serving %s %s: %s. Rule: %s",
                self.app,
                self.scope["method"],
                self.scope["path"],
                violation.detail,
                violation.rule,
                exc_info=violation,
            )
        elif not failed and self.link is LINK_OPEN and self.phase is not PHASE_DONE:
            failed = True
            key = "no-start" if self.phase is PHASE_START else "incomplete"
            logger.error(
                "ASGI app %r returned without completing the response to %s %s. Rule: %s",
                self.app,
                self.scope["method"],
                self.scope["path"],
                RULES[key],
            )
        self._open_requests.discard(self)
        if self._grace_handle is not None:
            self._grace_handle.cancel()
            self._grace_handle = None
        if failed and (violation is not None or self.phase is not PHASE_DONE):
            # An app that raises once its response is complete (Starlette re-raises
            # after its error handler answered) keeps that response: only its log
            # line tells. A broken rule is a 500 whenever it can still be one.
            self._batch.append((FAIL,))
        self._batch.append((DONE,))
        self._disconnect()
        self.flush()
