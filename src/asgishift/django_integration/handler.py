"""A bounded Django ASGI handler: few thread hops, long-lived threads, lifespan.

Django's ``ASGIHandler`` (Django docs, "How to deploy with ASGI") runs each
request's sync code on a new thread and, with ``startproject``'s middleware,
crosses between the event loop and threads about 15 times per request. This
handler:

- runs the whole middleware chain in Django's sync mode, so every run of
  sync middleware, the request signals, a sync view and ``response.close()``
  share one thread hop (an ``async def`` view adds one hop back to the loop);
- runs that hop on one of ``max_threads`` long-lived threads sharing one
  job queue (:class:`~asgishift.django_integration._threads.HopThreads`),
  so database connections persist per thread, ``CONN_MAX_AGE`` works, and a
  thread that finishes a request takes the next queued one without a
  context switch. The hop is
  :class:`~asgishift.django_integration._executors.ThreadHop`, which sets up
  the thread as asgiref's ``sync_to_async`` does at half its cost;
- iterates and closes a streaming response inside the request's
  ``ThreadSensitiveContext`` (asgiref ≥ 3.13's ``executor=`` argument, or
  :func:`executor_context`'s fallback) with the thread that ran the view
  held for it (:class:`~asgishift.django_integration._threads.ThreadLease`),
  so its ``sync_to_async`` calls land on that thread; a sync iterator is
  advanced one part per hop to that thread, and a client's
  ``http.disconnect`` stops the iteration and closes the response;
- cancels the async middleware or ``async def`` view running when the client
  sends ``http.disconnect``, as Django >= 5.0's handler cancels the request's
  task (:mod:`asgishift.django_integration._request_watch`); sync middleware
  and views run to their end;
- answers ``lifespan`` (:mod:`asgishift.django_integration.lifespan`) and
  exposes ``scope["state"]`` as ``request.state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import io
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, MutableMapping
from concurrent.futures import Executor
from functools import cached_property
from typing import Any, Final, NamedTuple

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.db import connections
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

import django
from asgishift._types import Receive, Scope, Send
from asgishift.django_integration._executors import DEFAULT_MAX_THREADS, ThreadHop, adopt_context
from asgishift.django_integration._request_watch import (
    ClientLeft,
    RequestWatch,
    WatchState,
    current_watch,
    watched,
)
from asgishift.django_integration._threads import HopThreads, ThreadLease
from asgishift.django_integration.lifespan import Lifespan

logger = logging.getLogger("asgishift.django")


def _asgiref_takes_executor() -> bool:
    import asgiref

    version = tuple(int(part) for part in asgiref.__version__.split(".")[:2])
    return version >= (3, 13)


#: asgiref >= 3.13 (Python >= 3.11) documents ThreadSensitiveContext(executor=...).
TAKES_EXECUTOR = _asgiref_takes_executor()


@contextlib.asynccontextmanager
async def executor_context(executor: Executor) -> AsyncIterator[None]:
    """Send this block's ``sync_to_async(thread_sensitive=True)`` calls to ``executor``.

    With asgiref >= 3.13 this is ``ThreadSensitiveContext(executor=executor)``.
    Older asgiref (the newest for Python 3.10 is 3.12) has no such argument;
    there the context's executor is entered in asgiref's per-context executor
    table (``SyncToAsync.context_to_thread_executor``) and taken out again
    before the context exits, so asgiref neither makes a new thread nor shuts
    ``executor`` down.
    """
    if TAKES_EXECUTOR:
        async with ThreadSensitiveContext(executor=executor):
            yield
        return
    context = ThreadSensitiveContext()
    await context.__aenter__()  # type: ignore[no-untyped-call]
    table = SyncToAsync.context_to_thread_executor
    own = context.token is not None  # not nested in another thread-sensitive context
    if own:
        table[context] = executor
    try:
        yield
    finally:
        if own:
            table.pop(context, None)
        await context.__aexit__(None, None, None)  # type: ignore[no-untyped-call]


try:  # Django >= 5.0: a module-level function
    from django.core.handlers.asgi import get_script_prefix as _module_script_prefix
except ImportError:  # Django 4.2: a method of ASGIHandler
    _module_script_prefix = None


def _script_prefix(handler: ASGIHandler, scope: Scope) -> str:
    if _module_script_prefix is not None:
        return str(_module_script_prefix(scope))
    return str(handler.get_script_prefix(scope))


class RequestState:
    """``request.state``: attribute and item access to the request's ``scope["state"]``.

    Per the ASGI lifespan spec ("Lifespan State") each request's
    ``scope["state"]`` is a shallow copy of what the lifespan hooks stored.
    """

    __slots__ = ("_data",)

    def __init__(self, data: MutableMapping[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(
                f"request.state has no {name!r}; a lifespan hook or asgi_startup receiver "
                "must store it in state first"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __repr__(self) -> str:
        return f"RequestState({dict(self._data)!r})"


class StatefulASGIRequest(ASGIRequest):
    """Django's ``ASGIRequest`` with :attr:`state`, made on first use (most views never
    read it, so most requests never pay for it)."""

    @cached_property
    def state(self) -> RequestState:
        """``request.state``: the request's ``scope["state"]`` (created empty when absent)."""
        return RequestState(self.scope.setdefault("state", {}))


class Prepared(NamedTuple):
    """What the sync part of a request hands back to the loop.

    :param response: the response.
    :param body: a non-streaming response's content, read before it was closed.
    :param context: a streaming response's context as the sync part left it, for
        the loop to take over before it iterates (as ``sync_to_async`` would).
    """

    response: HttpResponseBase
    body: bytes | None
    context: contextvars.Context | None


class StreamEnd(enum.Enum):
    """How sending a streaming response ended."""

    SENT = "sent"  # to its end
    DISCONNECTED = "disconnected"  # the client left first; the iteration was cancelled


_SENT: Final = StreamEnd.SENT
_DISCONNECTED: Final = StreamEnd.DISCONNECTED
_LEFT: Final = WatchState.LEFT


async def _disconnected(receive: Receive) -> None:
    """Return once ``receive`` gives ``http.disconnect`` (ASGI HTTP spec, "Disconnect -
    receive event"); once the request body was read, nothing else is due."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _until_disconnect(sending: Coroutine[Any, Any, None], receive: Receive) -> StreamEnd:
    """Run ``sending`` while waiting for the client's ``http.disconnect``, whichever ends first.

    At a disconnect ``sending`` is cancelled; both tasks are waited for, also
    when the caller is cancelled.

    :return: :attr:`StreamEnd.SENT` when ``sending`` returned first, else
        :attr:`StreamEnd.DISCONNECTED` (what ``sending`` then raised is logged at debug level).
    :raise Exception: what ``sending`` raised before any disconnect, or what
        ``receive`` raised.
    """
    sender = asyncio.ensure_future(sending)
    listener = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait((sender, listener), return_when=asyncio.FIRST_COMPLETED)
    finally:
        listener.cancel()
        sender.cancel()
        outcomes = await asyncio.gather(sender, listener, return_exceptions=True)
    if sender in done:
        sender.result()
        return _SENT
    listener.result()
    if not isinstance(outcomes[0], asyncio.CancelledError | None):
        logger.debug("streaming response failed after its client left", exc_info=outcomes[0])
    return _DISCONNECTED


class BoundedASGIHandler(ASGIHandler):
    """Django's ASGI handler with a bounded thread pool, one-hop sync chain and lifespan.

    :param max_threads: threads (and so database connections at most) per
        process; a request waits for a free thread when all are busy.
    :raise ValueError: for ``max_threads`` below 1.

    Serves ``http`` and ``lifespan`` scopes; a ``websocket`` scope raises
    ``ValueError`` (route WebSockets with Channels' ``ProtocolTypeRouter``).
    """

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        # BaseHandler.__init__ only sets attributes; ASGIHandler.__init__
        # would load the chain in async mode, which is what this class avoids.
        super(ASGIHandler, self).__init__()
        self.load_middleware(is_async=False)
        self.pool = HopThreads(max_threads)
        self.lifespan = Lifespan(type(self), self._close_thread_connections)
        self._hop = ThreadHop()
        self._prefix_of: Callable[[Scope], str] = (
            _module_script_prefix if _module_script_prefix is not None else self.get_script_prefix
        )

    #: ``request.state`` is made on first use.
    request_class = StatefulASGIRequest

    def _close_thread_connections(self) -> None:
        self.pool.run_on_every_thread(connections.close_all)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point (ASGI HTTP and lifespan specs).

        :raise ValueError: for scope types other than ``http`` and ``lifespan``.
        """
        kind = scope["type"]
        if kind == "http":
            await self.handle(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            raise ValueError(
                f"asgishift's Django handler serves http and lifespan, not {kind}; "
                "set ASGI_APPLICATION to a channels ProtocolTypeRouter for WebSockets"
            )

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, executor: Executor | None = None
    ) -> None:
        """Read the body, run the sync part in one hop (on the next free pool thread,
        or on ``executor``'s thread when given), send the response.

        A non-streaming response is complete when the hop returns: its context is
        not copied back to the caller (nothing of Django runs here after it). A
        streaming response's is, before it is iterated here.
        """
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body_file: Any = io.BytesIO(message.get("body", b""))
        else:
            try:
                body_file = await self._read_rest(message, receive)
            except RequestAborted:
                return
        lease = ThreadLease()
        watch = RequestWatch(receive)
        try:
            try:
                prepared: Prepared = await self._hop(
                    self.pool if executor is None else executor,
                    self._respond,
                    scope,
                    body_file,
                    lease,
                    watch,
                    copy_back=False,
                    # The server cancelled this task (its shutdown timeout ran out,
                    # say). Under Django's handler the view runs in it and gets the
                    # cancellation; here the chain's async parts run in tasks of
                    # their own, which the watch cancels, so the hop ends.
                    on_cancel=watch.cancel,
                )
            except ClientLeft:
                return
            finally:
                watch.stop()
            if prepared.body is not None:
                await self._send(prepared.response, prepared.body, send)
            else:
                await self._stream(scope, prepared, lease, receive, send)
        finally:
            lease.release()
            body_file.close()

    async def _stream(
        self, scope: Scope, prepared: Prepared, lease: ThreadLease, receive: Receive, send: Send
    ) -> None:
        """Send a streaming response until its end or the client's ``http.disconnect``,
        then close it on its view thread (held by ``lease``).

        Like Django's ``ASGIHandler`` (Django ≥ 5.0), a disconnect cancels the
        iteration: an ``async def`` generator gets ``CancelledError`` where it
        awaits; a sync iterator stops between two parts (the part being made
        is finished first: a thread cannot be interrupted), and
        ``response.close()`` closes a generator on its thread. Nothing more is
        sent, and the thread goes back to the pool.
        """
        if prepared.context is not None:
            adopt_context(prepared.context)
        # Iterating may call sync_to_async(thread_sensitive=True) (an async
        # iterator using the ORM): that and close() go to the thread that ran
        # the view, which _respond() held for this lease.
        async with executor_context(lease):
            set_script_prefix(self._prefix_of(scope))
            try:
                await self._send_start(prepared.response, send)
                end = await _until_disconnect(
                    self._send_parts(prepared.response, lease, send), receive
                )
                if end is _DISCONNECTED:
                    logger.debug("client left during a streaming response; it was stopped")
            finally:
                await sync_to_async(prepared.response.close, thread_sensitive=True)()

    async def read_body(self, receive: Receive) -> Any:
        """Read the request body (ASGI HTTP spec, "Request"): a body that arrives in one
        message goes into a ``BytesIO``; longer ones into Django's spooled temporary file.

        :raise RequestAborted: when the client disconnects first.
        """
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            return io.BytesIO(message.get("body", b""))
        return await self._read_rest(message, receive)

    async def _read_rest(self, message: MutableMapping[str, Any], receive: Receive) -> Any:
        """The body of a request whose first message was ``message`` and is not all of it.

        :raise RequestAborted: when the client disconnects first.
        """
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        first = message.get("body", b"")

        async def replay() -> Any:
            nonlocal first
            if first is not None:
                chunk, first = first, None
                return {"type": "http.request", "body": chunk, "more_body": True}
            return await receive()

        return await super().read_body(replay)

    async def _send_start(self, response: HttpResponseBase, send: Send) -> None:
        """Send ``http.response.start`` for ``response`` (ASGI HTTP spec, "Response Start"),
        its cookies as ``Set-Cookie`` headers."""
        headers = [
            (name.encode("latin-1"), str(value).encode("latin-1"))
            for name, value in response.items()
        ]
        for cookie in response.cookies.values():
            headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )

    async def _send(self, response: HttpResponseBase, body: bytes, send: Send) -> None:
        """Send a non-streaming ``response`` whose content is ``body`` (ASGI HTTP spec,
        "Response Start"/"Response Body").

        What Django's ``send_response`` does, without closing the response: this
        handler closes it in the request's one hop already. A body of at most one
        chunk goes in one message.
        """
        await self._send_start(response, send)
        if len(body) <= self.chunk_size:
            await send({"type": "http.response.body", "body": body})
        else:
            for chunk, last in self.chunk_bytes(body):
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})

    async def _send_parts(self, response: HttpResponseBase, lease: ThreadLease, send: Send) -> None:
        """Send a streaming response's parts, then the closing empty body message.

        An async iterator (``response.is_async``, Django docs,
        "StreamingHttpResponse objects") is iterated here and ``aclose()``-d
        however the iteration ends. A sync one is advanced one part per hop on
        the lease's thread (Django's own ``__aiter__`` reads it whole into a
        list first, which a client that leaves cannot stop).
        """
        if response.is_async:
            parts = aiter(response.streaming_content)
            try:
                async for part in parts:
                    await self._send_part(part, send)
            finally:
                await parts.aclose()
        else:
            iterator = iter(response.streaming_content)
            while (part := await self._hop(lease, next, iterator, None)) is not None:
                await self._send_part(part, send)
        await send({"type": "http.response.body"})

    async def _send_part(self, part: bytes, send: Send) -> None:
        """Send one part of a streaming body, in ``chunk_size`` pieces, ``more_body`` set."""
        for chunk, _ in self.chunk_bytes(part):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    def make_view_atomic(self, view: Callable[..., Any]) -> Callable[..., Any]:
        """Django's ``BaseHandler.make_view_atomic`` (``ATOMIC_REQUESTS``), with an
        ``async def`` view put under the request's :class:`RequestWatch`, which cancels
        it when the client leaves while it runs (as Django >= 5.0's handler does)."""
        view = super().make_view_atomic(view)
        return watched(view) if iscoroutinefunction(view) else view

    def adapt_method_mode(
        self,
        is_async: bool,
        method: Callable[..., Any],
        method_is_async: bool | None = None,
        debug: bool = False,
        name: str | None = None,
    ) -> Callable[..., Any]:
        """Django's ``BaseHandler.adapt_method_mode``; an async middleware, or an async
        ``process_view``/``process_template_response``/``process_exception`` hook, that
        the sync chain calls through ``async_to_sync`` is put under the request's
        :class:`RequestWatch` first, so a client that leaves cancels it where it awaits
        (as Django >= 5.0's handler cancels the whole chain).

        :param is_async: the mode ``method`` is adapted to (``False`` here: the chain
            is loaded in sync mode).
        :param method: the middleware or hook.
        :param method_is_async: whether ``method`` is async; found out when ``None``.
        :param debug: log the adaptation at debug level, naming ``name``.
        :return: ``method`` callable in the ``is_async`` mode.
        """
        if method_is_async is None:
            method_is_async = iscoroutinefunction(method)
        if debug and not name:
            name = f"method {method.__qualname__}()"
        if method_is_async and not is_async:
            method = watched(method)
        return super().adapt_method_mode(is_async, method, method_is_async, debug, name)  # type: ignore[no-any-return]

    def _respond(
        self, scope: Scope, body_file: Any, lease: ThreadLease, watch: RequestWatch
    ) -> Prepared:
        """The sync part of a request, on a pool thread.

        Sends ``request_started``, builds the request, runs the sync
        middleware chain and view, and, for a non-streaming response, reads
        its content and closes it here (``request_finished``, which recycles
        database connections per ``CONN_MAX_AGE``) so no second hop is needed.
        A streaming response holds this thread with ``lease`` until the loop
        has iterated and closed it.

        :raise ClientLeft: when the client left while the chain ran and ran async
            code (``watch`` cancelled the async middleware or view then running).
            As under Django's handler, the ``CancelledError`` ends the middleware
            chain where it passes, and ``request_finished`` is sent here; a
            response the chain returned anyway is closed (which sends
            ``request_finished``) and not sent.
        """
        set_script_prefix(self._prefix_of(scope))
        signals.request_started.send(sender=type(self), scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            response: HttpResponseBase = error_response
        else:
            current_watch.set(watch)  # this hop's own context: for watched()
            try:
                response = self.get_response(request)
            except asyncio.CancelledError:
                if watch.state is not _LEFT:
                    raise
                signals.request_finished.send(sender=type(self))
                raise ClientLeft() from None
            if watch.state is _LEFT:
                response.close()
                raise ClientLeft()
            response._handler_class = type(self)
        if response.streaming:
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
            lease.hold()
            return Prepared(response, None, contextvars.copy_context())
        body: bytes = response.content
        response.close()
        return Prepared(response, body, None)


def get_asgi_application(*, max_threads: int = DEFAULT_MAX_THREADS) -> BoundedASGIHandler:
    """Set up Django and return the bounded ASGI handler; a drop-in for Django's
    ``django.core.asgi.get_asgi_application()`` in a project's ``asgi.py``.

    :param max_threads: threads running sync code (middleware, sync views,
        ORM calls) per process; also the most database connections per alias.
    :raise ValueError: for ``max_threads`` below 1.
    """
    django.setup(set_prefix=False)
    return BoundedASGIHandler(max_threads=max_threads)


__all__ = ["BoundedASGIHandler", "RequestState", "StatefulASGIRequest", "get_asgi_application"]
