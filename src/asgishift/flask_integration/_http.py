"""Serve an HTTP request to an ``async def`` Flask view on the event loop.

The request body is collected on the loop (bounded by ``max_body_size``,
``413`` beyond it; no further than just past Flask's ``MAX_CONTENT_LENGTH``,
which Werkzeug then answers with ``413`` when the view reads it) into an
in-memory ``wsgi.input``; Flask's request context
is pushed in the server's request task; the pipeline
(:mod:`asgishift.flask_integration._pipeline`) awaits hooks and the view; the
context is popped (teardown functions) before a body already in memory is
sent, as under a WSGI server, and after a streamed one; the
response is sent from the loop (ASGI HTTP spec, "Response Start" / "Response
Body"). A response whose body is an async iterable (an async generator given to
``Response``) streams message by message and stops when the client
disconnects; a body already in memory goes out in one message; any other sync
iterable (a generator, ``send_file``) is read in a worker thread block by block
(:class:`SyncBody`), so the loop stays free, and is closed when the client
disconnects.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import io
import logging
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from flask.ctx import RequestContext

from asgishift._types import Environ, Receive, Send
from asgishift.bridge._error_response import error_messages
from asgishift.bridge._server_io import send_messages
from asgishift.flask_integration._loop import tearing_down
from asgishift.flask_integration._wire import asgi_headers

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Request, Response

    from asgishift.bridge import BridgeOptions
    from asgishift.flask_integration._pipeline import AsyncPipeline

logger = logging.getLogger("asgishift.flask")

__all__ = [
    "BodyThreads",
    "BodyTooLarge",
    "SyncBody",
    "TeardownFailed",
    "read_body",
    "serve_async_request",
]

_NO_BODY_STATUSES = frozenset({204, 304})


class BodyThreads:
    """The worker threads reading sync response bodies of async views (:class:`SyncBody`).

    The pool starts on first use and :meth:`shutdown` stops it (ASGI
    ``lifespan.shutdown``); a later request starts a new one, so an app
    served again (a second test client) works and an app dropped after its
    shutdown leaves no thread behind.

    :param max_workers: the most threads, the bridge's ``max_workers``.
    """

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> Executor:
        """Return the running pool, starting one if none runs."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="asgishift-flask-body"
                )
            return self._pool

    def shutdown(self) -> None:
        """Stop the pool without waiting: idle threads exit at once, a thread
        still reading a block (a generator waiting in ``next()``) once that
        block is read; reads not yet started are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class BodyTooLarge(Exception):
    """The request body is longer than ``max_body_size`` (answered with ``413``)."""


async def read_body(
    receive: Receive, limit: int | None, stop_after: int | None = None
) -> bytes | None:
    """Collect the whole request body from ``http.request`` messages.

    :param limit: the most bytes accepted, ``None`` for no limit.
    :param stop_after: bytes; once more than this arrived, stop reading and
        return what came so far (longer than ``stop_after``), ``None`` to read all.
    :return: the body, or ``None`` when the client disconnected first.
    :raise BodyTooLarge: once more than ``limit`` bytes arrived.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if limit is not None and size > limit:
                raise BodyTooLarge(f"request body larger than {limit} bytes")
            parts.append(chunk)
            if stop_after is not None and size > stop_after:
                return b"".join(parts)
        if not message.get("more_body", False):
            return b"".join(parts) if len(parts) != 1 else parts[0]


async def send_plain(send: Send, status: int, method: str, text: str) -> None:
    """Send a short ``text/plain`` response (errors found before the app runs).

    :param method: the request method (``"HEAD"`` gets no body).
    :param text: the body.
    """
    await send_messages(send, error_messages(status, method, body=text.encode()))


async def serve_async_request(
    app: Flask,
    pipeline: AsyncPipeline,
    req: Request,
    environ: Environ,
    receive: Receive,
    send: Send,
    options: BridgeOptions,
    body_threads: BodyThreads,
) -> None:
    """Run one request to an async endpoint on the loop and send its response.

    :param req: the request object made while matching (reused for the context).
    :param environ: its environ; ``wsgi.input`` is set here.
    :param options: ``max_body_size`` (bytes; ``413`` beyond it) and
        ``request_timeout`` (seconds until the response starts; ``504`` past
        it, the view is cancelled) apply as they do on the bridge.
    :param body_threads: where a sync response body is read (:class:`SyncBody`).
    """
    max_body_size = options.max_body_size
    length = environ.get("CONTENT_LENGTH")
    if max_body_size is not None and length is not None and int(length) > max_body_size:
        await send_plain(send, 413, environ["REQUEST_METHOD"], "Content Too Large")
        return
    # Flask's MAX_CONTENT_LENGTH: Werkzeug answers 413 (through the app's error
    # handlers) when the view reads a body longer than it, so no more than one
    # byte past it is worth buffering, and none when Content-Length says so.
    flask_limit: int | None = app.config.get("MAX_CONTENT_LENGTH")
    try:
        if flask_limit is not None and length is not None and int(length) > flask_limit:
            body: bytes | None = b""
        else:
            body = await read_body(receive, max_body_size, flask_limit)
    except BodyTooLarge:
        await send_plain(send, 413, environ["REQUEST_METHOD"], "Content Too Large")
        return
    if body is None:
        return  # the client left before the body was complete
    if body and length is None:
        environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    ctx = _RequestContextExit(app, RequestContext(app, environ, request=req))
    try:
        try:
            ctx.push()
            if options.request_timeout is None:
                response = await pipeline.full_dispatch_request()
            else:
                timed = await _within(pipeline, options.request_timeout)
                if timed is None:
                    logger.error(
                        "504 Gateway Timeout: async view for %s [%s] did not answer within %s s "
                        "(ASGISHIFT_REQUEST_TIMEOUT); it was cancelled",
                        environ.get("PATH_INFO"),
                        environ.get("REQUEST_METHOD"),
                        options.request_timeout,
                    )
                    await send_plain(send, 504, environ["REQUEST_METHOD"], "Gateway Timeout")
                    return
                response = timed
        except Exception as e:
            ctx.error = e
            response = await pipeline.handle_exception(e)
        except BaseException as e:
            ctx.error = e
            raise
        try:
            await send_response(
                response,
                environ,
                receive,
                send,
                body_threads.executor(),
                before_sending=ctx.pop_before_sending,
            )
        except TeardownFailed as failed:
            logger.error(
                "500 Internal Server Error: a teardown function failed for %s [%s]; "
                "the response was not sent",
                environ.get("PATH_INFO"),
                environ.get("REQUEST_METHOD"),
                exc_info=failed.__cause__,
            )
            await send_plain(send, 500, environ["REQUEST_METHOD"], "Internal Server Error")
    finally:
        ctx.pop()


class TeardownFailed(Exception):
    """A teardown function raised while the request context was popped before the
    response went out (the exception is the ``__cause__``); answered with ``500``."""


class _RequestContextExit:
    """One async request's Flask request context, popped once.

    Popped before the response goes out when its body is already in memory,
    as under a WSGI server (Flask's ``wsgi_app`` pops it before the server
    sends the body), so a failing teardown function (a commit) turns the
    response into a ``500``; after the last chunk of a streamed body, which
    may need the context.

    :param app: the Flask app.
    :param ctx: the request context, not yet pushed.
    """

    def __init__(self, app: Flask, ctx: RequestContext) -> None:
        self._app = app
        self._ctx = ctx
        self._popped = False
        #: The exception the request ended with (handed to the teardown functions).
        self.error: BaseException | None = None

    def push(self) -> None:
        """Push the context (:meth:`flask.ctx.RequestContext.push`)."""
        self._ctx.push()

    def pop(self) -> None:
        """Pop the context, running the teardown functions, unless already done.

        :raise Exception: whatever a teardown function raises.
        """
        if self._popped:
            return
        self._popped = True
        error = self.error
        if error is not None and self._app.should_ignore_error(error):
            error = None
        with tearing_down():
            self._ctx.pop(error)

    def pop_before_sending(self) -> None:
        """:meth:`pop`, for :func:`send_response`'s ``before_sending``.

        :raise TeardownFailed: when a teardown function raises.
        """
        try:
            self.pop()
        except Exception as exc:
            raise TeardownFailed(f"a teardown function failed: {exc!r}") from exc


async def _within(pipeline: AsyncPipeline, timeout: float) -> Response | None:
    """Run the pipeline for at most ``timeout`` seconds; ``None`` when it was cancelled."""
    task = asyncio.ensure_future(pipeline.full_dispatch_request())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


async def send_response(
    response: Response,
    environ: Environ,
    receive: Receive,
    send: Send,
    body_threads: Executor,
    *,
    before_sending: Callable[[], None] | None = None,
) -> None:
    """Send a Flask response object to the ASGI server.

    Status, headers and body come from Werkzeug's own
    ``get_wsgi_headers``/``get_app_iter`` (what its WSGI call uses:
    ``HEAD`` and ``204``/``304`` bodies dropped, ``Location`` made absolute
    when configured); an async-iterable body is iterated on the loop, a sync
    one not in memory on ``body_threads`` (:class:`SyncBody`).

    :param before_sending: called when the body is already in memory, once it
        was read and before anything is sent; what it raises propagates with
        nothing sent. Not called for a streamed body.
    """
    status = response.status_code
    headers = asgi_headers(response.get_wsgi_headers(environ).to_wsgi_list())
    body = _unwrap_stream_with_context(response.response)
    if isinstance(body, AsyncIterable) and not isinstance(body, (bytes, str)):
        await _send_async_body(status, headers, body, environ, receive, send)
        return
    app_iter: Iterable[bytes] = response.get_app_iter(environ)
    if not response.is_sequence and not isinstance(app_iter, (list, tuple)):
        sync_body = SyncBody(app_iter, body_threads)
        try:
            await _stream(status, headers, sync_body.chunks(), environ, receive, send)
        finally:
            # Shielded: a cancelled request still closes the iterable once its
            # block is read.
            await asyncio.shield(sync_body.close())
        return
    try:
        # The whole body is already in memory (JSON, templates): one message.
        data = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    if before_sending is not None:
        before_sending()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class SyncBody:
    """A sync response body read in worker threads, one block at a time.

    Each block is read (``next()``) on ``threads`` only after the previous
    one was sent, so a slow client holds the iterable back
    (backpressure) and the loop serves other requests meanwhile. Every step and
    :meth:`close` run in one :class:`contextvars.Context` copied here, so a
    ``stream_with_context`` generator pushes and pops Flask's contexts in the
    same context, and under one lock, so ``close()`` never meets a generator
    still executing (PEP 3333: ``close()`` is called once iteration stops,
    finished or not).

    :param app_iter: the WSGI iterable of ``bytes`` (Werkzeug's ``get_app_iter``).
    :param threads: the executor the blocks are read on; a generator that waits
        in ``next()`` (an SSE feed) holds one of its threads meanwhile, so it is
        sized like the bridge's pool, not the loop's default executor (at most
        ``min(32, cpu + 4)`` threads).
    """

    def __init__(self, app_iter: Iterable[bytes], threads: Executor) -> None:
        self._app_iter = app_iter
        self._threads = threads
        self._iterator: Iterator[bytes] | None = None
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()

    def _step(self) -> bytes | None:
        """Return the next block, ``None`` at the end (in a worker thread)."""
        with self._lock:
            if self._iterator is None:
                self._iterator = iter(self._app_iter)
            return self._context.run(next, self._iterator, None)

    def _close(self) -> None:
        """Call the iterable's ``close()``, after any block being read (in a worker thread)."""
        with self._lock:
            close = getattr(self._app_iter, "close", None)
            if close is not None:
                self._context.run(close)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the blocks; cancelling it leaves a block being read to finish in its thread.

        :raise Exception: whatever the iterable raises.
        """
        loop = asyncio.get_running_loop()
        while True:
            chunk = await loop.run_in_executor(self._threads, self._step)
            if chunk is None:
                return
            yield chunk

    async def close(self) -> None:
        """Close the iterable in a worker thread once no block is being read.

        :raise Exception: whatever its ``close()`` raises.
        """
        await asyncio.get_running_loop().run_in_executor(self._threads, self._close)


def _unwrap_stream_with_context(body: Any) -> Any:
    """Return the async generator ``flask.stream_with_context`` was given, else ``body``.

    Flask's ``stream_with_context`` only wraps sync iterables; given an async
    generator it returns a wrapper function whose ``__wrapped__`` is that
    generator (``functools.update_wrapper``). The request context is kept
    pushed here until the stream ends, so the generator itself is what to send.
    """
    seen = 0
    while callable(body) and seen < 4:
        wrapped = getattr(body, "__wrapped__", None)
        if inspect.isasyncgen(wrapped):
            return wrapped
        if wrapped is None:
            break
        body = wrapped
        seen += 1
    return body


async def _send_async_body(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: AsyncIterable[Any],
    environ: Environ,
    receive: Receive,
    send: Send,
) -> None:
    charset = "utf-8"

    async def encoded() -> Any:
        async for chunk in body:
            yield chunk.encode(charset) if isinstance(chunk, str) else chunk

    try:
        if environ["REQUEST_METHOD"] == "HEAD" or status in _NO_BODY_STATUSES:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await _stream(status, headers, encoded(), environ, receive, send)
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()


async def _stream(
    status: int,
    headers: list[tuple[bytes, bytes]],
    chunks: Any,
    environ: Environ,
    receive: Receive,
    send: Send,
) -> None:
    """Send the response start, then each chunk, until done or the client leaves."""

    async def produce() -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        async for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    producer = asyncio.ensure_future(produce())
    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (producer, watcher):
            task.cancel()
        await asyncio.gather(producer, watcher, return_exceptions=True)
    if producer.done() and not producer.cancelled() and producer.exception() is not None:
        exc = producer.exception()
        assert exc is not None
        logger.error(
            "streaming response to %s failed after it started",
            environ.get("PATH_INFO"),
            exc_info=exc,
        )
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
