"""Run one of the four servers in a thread of this process, with a graceful stop handle.

For hosts that own the main thread and the process's life, such as Django's
autoreloader (``manage.py runasgi``): :meth:`EmbeddedServer.start` returns
once the server listens (or raises why it could not), :meth:`EmbeddedServer.stop`
sets the server's own exit flag and joins the thread, so open connections
finish and the app's lifespan shutdown runs before the host reloads or exits.

- uvicorn: ``uvicorn.Server`` (skips signal handling off the main thread),
  stopped with ``should_exit``.
- hypercorn: ``hypercorn.asyncio.serve`` with a ``shutdown_trigger``.
- granian: its embedded server (``granian.server.embed``), stopped with ``stop()``;
  request tasks still running then get :data:`GRANIAN_DRAIN_TIMEOUT` seconds to finish.
- daphne: Twisted's reactor without signal handlers. Daphne has no lifespan
  support, so this module sends the lifespan events itself, on daphne's loop.

uvicorn, hypercorn and granian run the app's lifespan startup before they
listen and check their exit flag only after it. So a stop that comes while the
server has not listened yet (the startup hangs on a database, ``start``'s
timeout ran out) cancels the server's task instead: the thread ends and the
app's startup coroutine is cancelled, instead of the thread waiting on it for
ever. The app is watched (:func:`watch_startup`) so that the timeout's error
says it was the app's startup that did not finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any, cast

from asgishift._types import ASGIApp, Message, Receive, Scope, Send
from asgishift.bridge._lifespan import ChildStage, LifespanFailed
from asgishift.serve._build import build_app
from asgishift.serve._config import ServeConfig
from asgishift.serve._errors import ServeConfigError, ServeError
from asgishift.serve._servers import SERVERS, check_port_free, check_server_installed

logger = logging.getLogger("asgishift.serve")


class EmbeddedState(Enum):
    """Where an :class:`EmbeddedServer` is in its life."""

    NEW = "new"
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class StartupError(ServeError):
    """The server stopped before it listened (lifespan startup failed, bind failed, ...)."""


class LifespanPhase(Enum):
    """Where a :class:`LifespanDriver`'s app is in its lifespan, as requests see it."""

    #: startup has not finished: requests wait for it
    STARTING = "starting"
    #: startup completed (or the app has no lifespan): requests run
    SERVING = "serving"
    #: startup failed: requests are answered 503
    FAILED = "failed"
    #: shutdown began: new requests are answered 503, running ones finish first
    STOPPING = "stopping"
    #: shutdown finished: requests are answered 503
    STOPPED = "stopped"


#: Why a request is refused in each phase that refuses requests (the 503 body and log line).
_REFUSALS: dict[LifespanPhase, str] = {
    LifespanPhase.FAILED: "the app's lifespan startup failed",
    LifespanPhase.STOPPING: "the server is shutting down",
    LifespanPhase.STOPPED: "the server has shut down",
}

#: Seconds :meth:`LifespanDriver.shutdown` waits for running requests before the
#: app's lifespan shutdown runs anyway.
DRAIN_TIMEOUT = 30.0


class LifespanDriver:
    """Send ASGI lifespan events to an app, for servers without lifespan support (daphne),
    and hold requests to the app's lifespan as servers with lifespan support do.

    A thin adapter over the bridge's :class:`~asgishift.bridge._lifespan.ChildStage`,
    which follows the ASGI lifespan spec: an app that raises or returns on the
    ``lifespan`` scope before answering is taken to not support it (as uvicorn's
    ``lifespan="auto"`` does), and the run goes on without it.

    Daphne accepts connections before :meth:`startup` has finished, so the app
    it serves is :meth:`gate` of the app: a request that arrives while startup
    runs waits for it; after a failed startup, and once :meth:`shutdown` has
    begun, requests are answered ``503 Service Unavailable`` (a WebSocket is
    closed before its handshake) with one log line each. :meth:`shutdown` lets
    running requests finish (up to :data:`DRAIN_TIMEOUT` seconds) before the
    app's shutdown runs, so no request runs against an app that has not started
    or has shut down. All methods run on the server's event loop.

    :param app: the ASGI 3 app.
    """

    def __init__(self, app: ASGIApp) -> None:
        #: the lifespan ``state`` dict, to be copied into each request's scope
        self.state: dict[str, Any] = {}
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._child = ChildStage("the app", app, scope)
        self.phase = LifespanPhase.STARTING
        self._settled = asyncio.Event()  # startup is over, one way or the other
        self._running = 0  # requests admitted and not finished
        self._idle = asyncio.Event()
        self._idle.set()

    async def startup(self) -> None:
        """Run the app's startup, then let waiting requests in (or refuse them).

        :raise StartupError: when the app answers ``lifespan.startup.failed``
            (or anything but ``lifespan.startup.complete``).
        """
        try:
            await self._child.start()
        except LifespanFailed as exc:
            self._settle(LifespanPhase.FAILED)
            raise StartupError(f"lifespan startup: {exc}") from exc
        except BaseException:
            self._settle(LifespanPhase.FAILED)
            raise
        self._settle(LifespanPhase.SERVING)

    async def shutdown(self, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        """Refuse new requests, let running ones finish (at most ``drain_timeout``
        seconds), then run the app's shutdown (nothing when it does not support
        lifespan or never started); log a failure. After a failed startup,
        requests go on being refused as such."""
        self._settle(LifespanPhase.STOPPING)  # stopped while starting
        if self.phase is LifespanPhase.SERVING:
            self.phase = LifespanPhase.STOPPING
        if self._running:
            try:
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
            except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
                logger.warning(
                    "%d request(s) still running %g s after shutdown began; "
                    "running the app's lifespan shutdown anyway",
                    self._running,
                    drain_timeout,
                )
        try:
            await self._child.stop()
        except LifespanFailed as exc:
            logger.error("lifespan shutdown failed: %s", exc)
        finally:
            if self.phase is LifespanPhase.STOPPING:  # a failed startup stays FAILED
                self.phase = LifespanPhase.STOPPED

    def gate(self, app: ASGIApp) -> ASGIApp:
        """Return ``app`` behind this driver's lifespan: ``http`` and ``websocket``
        requests wait for startup, get a shallow copy of the lifespan state as
        ``scope["state"]`` (ASGI lifespan spec, "Lifespan State"), and are refused
        outside :attr:`LifespanPhase.SERVING`; other scopes pass through."""

        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            if self.phase is LifespanPhase.STARTING:
                logger.info(
                    "%s %s waits for lifespan startup to finish",
                    scope.get("method", "WEBSOCKET"),
                    scope.get("path", ""),
                )
                await self._settled.wait()
            if self.phase is not LifespanPhase.SERVING:
                await _refuse(scope, send, _REFUSALS[self.phase])
                return
            if "state" not in scope:
                scope["state"] = dict(self.state)
            self._running += 1
            self._idle.clear()
            try:
                await app(scope, receive, send)
            finally:
                self._running -= 1
                if not self._running:
                    self._idle.set()

        return gated

    def _settle(self, phase: LifespanPhase) -> None:
        """Leave :attr:`LifespanPhase.STARTING` for ``phase`` (once) and wake waiting requests."""
        if self.phase is LifespanPhase.STARTING:
            self.phase = phase
            self._settled.set()


async def _refuse(scope: Scope, send: Send, reason: str) -> None:
    """Answer a request the app must not see: 503 for HTTP, a close before the
    handshake for a WebSocket (the server then answers 403); log why."""
    logger.error(
        "%s %s refused: %s", scope.get("method", "WEBSOCKET"), scope.get("path", ""), reason
    )
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013})
        return
    body = f"503 Service Unavailable: {reason}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def watch_startup(app: ASGIApp, on_phase: Callable[[LifespanPhase], None]) -> ASGIApp:
    """Return ``app`` with its lifespan startup reported to ``on_phase`` (other scopes pass).

    For servers that drive the lifespan themselves. ``on_phase`` gets
    :attr:`LifespanPhase.STARTING` when the app receives ``lifespan.startup``,
    then :attr:`LifespanPhase.SERVING` or :attr:`LifespanPhase.FAILED` when it
    sends ``lifespan.startup.complete`` or ``lifespan.startup.failed`` (ASGI
    lifespan spec). It runs on the server's loop and must not block.

    :param app: the ASGI 3 app.
    :param on_phase: called with each phase, in order.
    """

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                on_phase(LifespanPhase.STARTING)
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                on_phase(LifespanPhase.SERVING)
            elif message["type"] == "lifespan.startup.failed":
                on_phase(LifespanPhase.FAILED)
            await send(message)

        await app(scope, watched_receive, watched_send)

    return watched


def _startup_timeout(timeout: float) -> StartupError:
    """The error for an app whose lifespan startup outlasts ``timeout`` seconds."""
    return StartupError(f"the app's lifespan startup did not finish within {timeout:g} s")


class EmbeddedServer:
    """The server of a :class:`~asgishift.serve.ServeConfig`, run in a thread of this process.

    :param config: server, host, port and log level are used; ``workers`` and
        ``reload`` must be off (the host process reloads).
    :param app: the ASGI 3 app to serve; by default
        :func:`asgishift.serve.build_app` of ``config``.
    :raise ServeConfigError: for ``workers`` above 1 or ``reload``.
    :raise ServerNotInstalledError: when the server's package is missing (names the extra).
    :raise ServeError: from :func:`~asgishift.serve.build_app`.
    """

    def __init__(self, config: ServeConfig, app: ASGIApp | None = None) -> None:
        if config.needs_import_string:
            raise ServeConfigError(
                "an embedded server runs in this process: workers=1 and reload=False"
            )
        check_server_installed(config.server)
        self.config = config
        self.server = config.server
        self.app = app if app is not None else build_app(config)
        self.host = config.host
        self.port = config.port
        self.log_level = config.log_level
        self.state = EmbeddedState.NEW
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        #: Stops the server from another thread: gracefully, or (``True``) by
        #: cancelling it, for a server that has not listened yet.
        self._request_stop: Callable[[bool], None] | None = None
        #: Where the app's lifespan startup is, as :func:`watch_startup` saw it
        #: (``None``: not begun, or the server is daphne, whose driver knows).
        self.lifespan_phase: LifespanPhase | None = None

    # -- public ------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the server thread and wait until the port accepts connections
        and the app's lifespan startup has finished.

        :param timeout: seconds to wait for each (listening; with daphne, whose
            lifespan this class drives, then the app's startup).
        :raise PortInUseError: when the port is taken (checked before starting).
        :raise StartupError: when the server stops or fails before listening,
            the app's lifespan startup fails or does not finish in time, or
            :meth:`stop` is called from another thread meanwhile.
        """
        check_port_free(self.host, self.port)
        self.state = EmbeddedState.STARTING
        self._thread = threading.Thread(
            target=self._run, name=f"asgishift-{self.server}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while True:
            if self.state is not EmbeddedState.STARTING:
                raise StartupError(f"{self.server} was stopped before it listened")
            if not self._thread.is_alive():
                self.state = EmbeddedState.FAILED
                raise StartupError(
                    f"{self.server} stopped before listening on {self.host}:{self.port}"
                    + (f": {self._error!r}" if self._error else " (see the log above)")
                )
            if self._listening():
                break
            if time.monotonic() > deadline:
                starting = self.lifespan_phase is LifespanPhase.STARTING
                self.stop()
                if starting:
                    raise _startup_timeout(timeout)
                raise StartupError(f"{self.server} not listening after {timeout:g} s")
            time.sleep(0.05)
        if self.server == "daphne":
            self._daphne_lifespan_startup(timeout)
        if self.state is EmbeddedState.STARTING:  # not stopped meanwhile
            self.state = EmbeddedState.SERVING

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully: set the server's exit flag, then join its thread, so
        open connections finish and lifespan shutdown runs.

        :param timeout: seconds to wait for the thread.
        """
        if self._thread is None or self.state in (EmbeddedState.STOPPED, EmbeddedState.NEW):
            return
        listening = self.state is not EmbeddedState.STARTING
        self.state = EmbeddedState.STOPPING
        if self._request_stop is not None:
            self._request_stop(not listening)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("%s did not stop within %g s", self.server, timeout)
        self.state = EmbeddedState.STOPPED

    def wait(self) -> None:
        """Block until the server thread ends (it stops on :meth:`stop` or on failure)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(0.5)

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the server thread, if any."""
        return self._error

    # -- thread side -------------------------------------------------------------

    def _listening(self) -> bool:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "::1" if host == "::" else host
        with (
            contextlib.suppress(OSError),
            socket.create_connection((host, self.port), timeout=0.5),
        ):
            return True
        return False

    def _run(self) -> None:
        try:
            if self.server == "daphne":
                self._run_daphne()
            else:
                asyncio.run(self._serve_async())
        except BaseException as exc:  # reported by start()/error
            self._error = exc
            logger.error("%s stopped with an error: %r", self.server, exc)

    async def _serve_async(self) -> None:
        """Run uvicorn, hypercorn or granian until stopped; cancel one not listening yet.

        The server runs in this coroutine, the thread's only task besides the
        server's own, so that granian's wait for the app's tasks
        (:func:`_finish_app_tasks`) does not wait on it.
        """
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        main = asyncio.current_task()
        assert main is not None
        aborted = asyncio.Event()

        def abort() -> None:
            if self.lifespan_phase is LifespanPhase.SERVING:
                # The app's startup finished since start() last looked: the
                # server honours its exit flag now, and shutdown runs.
                stop.set()
                return
            # Not listening yet: the server is still in the app's lifespan
            # startup and would not look at its exit flag until that ends.
            logger.warning(
                "%s stopped before it listened: cancelling the app's lifespan startup", self.server
            )
            aborted.set()
            main.cancel()

        def request_stop(before_listening: bool) -> None:
            loop.call_soon_threadsafe(abort if before_listening else stop.set)

        self._request_stop = request_stop
        app = watch_startup(self.app, self._lifespan_phase)
        try:
            await _ASYNC_SERVERS[self.server](self, app, stop)
        except asyncio.CancelledError:
            if not aborted.is_set():
                raise

    def _lifespan_phase(self, phase: LifespanPhase) -> None:
        """Record where the app's lifespan startup is (:func:`watch_startup`'s callback)."""
        self.lifespan_phase = phase

    def _run_daphne(self) -> None:
        from daphne.endpoints import (  # type: ignore[import-untyped]
            build_endpoint_description_strings,
        )
        from daphne.server import Server  # type: ignore[import-untyped]
        from twisted.internet import reactor

        verbosity = {"debug": 2, "trace": 3}.get(self.log_level, 1)
        self._daphne_driver = LifespanDriver(self.app)
        server = Server(
            application=self._daphne_driver.gate(self.app),
            endpoints=build_endpoint_description_strings(host=self.host, port=self.port),
            signal_handlers=False,
            verbosity=verbosity,
        )

        def request_stop(before_listening: bool) -> None:
            # The driver runs daphne's lifespan: stopping it cancels a startup.
            import daphne.server  # type: ignore[import-untyped]

            future = asyncio.run_coroutine_threadsafe(
                self._daphne_driver.shutdown(), daphne.server.twisted_loop
            )
            with contextlib.suppress(Exception):
                future.result(30)
            reactor.callFromThread(server.stop)

        self._request_stop = request_stop
        server.run()

    def _daphne_lifespan_startup(self, timeout: float) -> None:
        """Run the app's lifespan startup on daphne's loop and wait for it (daphne
        already listens: :class:`LifespanDriver` holds the requests meanwhile).

        :raise StartupError: when startup fails, does not finish within
            ``timeout`` seconds, or :meth:`stop` is called (from another thread)
            before it finishes; the server is stopped first.
        """
        import daphne.server

        future = asyncio.run_coroutine_threadsafe(
            self._daphne_driver.startup(), daphne.server.twisted_loop
        )
        deadline = time.monotonic() + timeout
        try:
            # In slices, and on done() rather than a TimeoutError from result():
            # that could be the app's own exception.
            while not future.done():
                concurrent.futures.wait((future,), timeout=0.05)
                if self.state is not EmbeddedState.STARTING:
                    raise StartupError(
                        f"{self.server} was stopped while the app's lifespan startup ran"
                    )
                if time.monotonic() > deadline and not future.done():
                    raise _startup_timeout(timeout)
            future.result()
        except BaseException:
            future.cancel()  # the held requests are refused (startup failed)
            if self.state is EmbeddedState.STARTING:
                self.stop()
            raise


async def _serve_uvicorn(embedded: EmbeddedServer, app: ASGIApp, stop: asyncio.Event) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=embedded.host,
        port=embedded.port,
        log_level=embedded.log_level,
        lifespan="auto",
        interface="asgi3",
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():  # failed startup: uvicorn logged why
        stopper.cancel()
        await task
        if not server.started:
            raise StartupError("uvicorn did not start (see its log above)")
        return
    server.should_exit = True
    await task


async def _serve_hypercorn(embedded: EmbeddedServer, app: ASGIApp, stop: asyncio.Event) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    host = f"[{embedded.host}]" if ":" in embedded.host else embedded.host
    config.bind = [f"{host}:{embedded.port}"]
    config.loglevel = "DEBUG" if embedded.log_level == "trace" else embedded.log_level.upper()
    config.accesslog = None
    await serve(cast(Any, app), config, shutdown_trigger=stop.wait, mode="asgi")


async def _serve_granian(embedded: EmbeddedServer, app: ASGIApp, stop: asyncio.Event) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address=embedded.host,
        port=embedded.port,
        interface=Interfaces.ASGI,
        log_level=LogLevels("debug" if embedded.log_level == "trace" else embedded.log_level),
    )
    task = asyncio.ensure_future(server.serve())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        server.stop()  # type: ignore[no-untyped-call]
    else:
        stopper.cancel()
    await task
    await _finish_app_tasks(GRANIAN_DRAIN_TIMEOUT)


#: Seconds granian's app tasks may still run after it stopped (see :func:`_finish_app_tasks`).
GRANIAN_DRAIN_TIMEOUT = 10.0


async def _finish_app_tasks(timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the other tasks of this loop to finish.

    Granian's embedded server returns from ``serve()`` while an app's request
    coroutine may still be running after its response was sent (Django's stock
    handler leaving its ``ThreadSensitiveContext``); ``asyncio.run`` would then
    cancel it and granian would log the ``CancelledError`` as an app error.
    """
    current = asyncio.current_task()
    pending = {task for task in asyncio.all_tasks() if task is not current}
    if pending:
        _, still_running = await asyncio.wait(pending, timeout=timeout)
        if still_running:
            logger.warning(
                "%d request task(s) still running %g s after granian stopped; cancelling them",
                len(still_running),
                timeout,
            )


_ServeFunction = Callable[[EmbeddedServer, ASGIApp, asyncio.Event], Coroutine[Any, Any, None]]
_ASYNC_SERVERS: dict[str, _ServeFunction] = {
    "uvicorn": _serve_uvicorn,
    "hypercorn": _serve_hypercorn,
    "granian": _serve_granian,
}
assert set(_ASYNC_SERVERS) | {"daphne"} == set(SERVERS)

__all__ = [
    "EmbeddedServer",
    "EmbeddedState",
    "LifespanDriver",
    "LifespanPhase",
    "StartupError",
    "watch_startup",
]
