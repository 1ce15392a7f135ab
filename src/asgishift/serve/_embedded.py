"""Run one of the four servers in a thread of this process, with a graceful stop handle.

For hosts that own the main thread and the process's life, such as Django's
autoreloader (``manage.py runasgi``): :meth:`EmbeddedServer.start` returns
once the server listens (or raises why it could not), :meth:`EmbeddedServer.stop`
sets the server's own exit flag and joins the thread, so open connections
finish and the app's lifespan shutdown runs before the host reloads or exits.

- uvicorn: ``uvicorn.Server`` (skips signal handling off the main thread),
  stopped with ``should_exit``.
- hypercorn: ``hypercorn.asyncio.serve`` with a ``shutdown_trigger``; requests still
  running after the shutdown timeout are cancelled (:mod:`~._cutoff`).
- granian: its embedded server (``granian.server.embed``), stopped with ``stop()``;
  requests still running after the shutdown timeout are cancelled (:mod:`~._cutoff`),
  and request tasks still running then get :data:`GRANIAN_DRAIN_TIMEOUT` seconds to finish.
- daphne: Twisted's reactor without signal handlers. Daphne has no lifespan
  support, so :class:`~._app_lifespan.LifespanDriver` sends the lifespan events
  itself, on daphne's loop.

uvicorn, hypercorn and granian run the app's lifespan startup before they
listen and check their exit flag only after it. So a stop that comes while the
server has not listened yet (the startup hangs on a database, ``start``'s
timeout ran out) cancels the server's task instead: the thread ends and the
app's startup coroutine is cancelled, instead of the thread waiting on it for
ever. The app is watched (:func:`~._app_lifespan.watch_startup`) so that the timeout's error
says it was the app's startup that did not finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

from asgishift._types import ASGIApp
from asgishift.serve._app_lifespan import LifespanDriver, LifespanPhase, watch_startup
from asgishift.serve._build import build_app
from asgishift.serve._config import ServeConfig
from asgishift.serve._cutoff import serve_until_stopped, tracked
from asgishift.serve._errors import ServeConfigError, StartupError
from asgishift.serve._servers import (
    SERVERS,
    check_port_free,
    check_server_installed,
    graceful_shutdown_settings,
    serve_hypercorn_bounded,
)

logger = logging.getLogger("asgishift.serve")


class EmbeddedState(Enum):
    """Where an :class:`EmbeddedServer` is in its life."""

    NEW = "new"
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


#: Seconds :meth:`EmbeddedServer.stop` waits, beyond the shutdown timeout, for the
#: app's lifespan shutdown.
STOP_GRACE = 30.0


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
        #: Seconds open connections get at :meth:`stop` (``None``: for ever).
        self.shutdown_timeout = config.bridge.shutdown_timeout
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

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: set the server's exit flag, then join its thread, so
        open connections finish (for at most the config's
        :attr:`~asgishift.bridge.BridgeOptions.shutdown_timeout`; see
        :func:`~asgishift.serve._servers.graceful_shutdown_settings`) and lifespan
        shutdown runs.

        :param timeout: seconds to wait for the thread; by default
            :attr:`shutdown_timeout` plus :data:`STOP_GRACE` (for the lifespan
            shutdown), or for ever when :attr:`shutdown_timeout` is ``None``.
        """
        if timeout is None and self.shutdown_timeout is not None:
            timeout = self.shutdown_timeout + STOP_GRACE
        if self._thread is None or self.state in (EmbeddedState.STOPPED, EmbeddedState.NEW):
            return
        listening = self.state is not EmbeddedState.STARTING
        self.state = EmbeddedState.STOPPING
        if self._request_stop is not None:
            self._request_stop(not listening)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("%s did not stop within %g s", self.server, timeout or 0)
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
        if self.server == "granian":
            # Free the run's cyclic garbage (the closed loop, its tasks and what
            # of granian's they hold) here, while the interpreter is whole: left
            # for a collection at interpreter exit, granian 2.8's code could
            # abort the process (tests/serve/test_embedded_startup.py).
            gc.collect()

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

            # daphne has no graceful timeout of its own: the driver's drain is it.
            timeout = self.shutdown_timeout
            future = asyncio.run_coroutine_threadsafe(
                self._daphne_driver.shutdown(timeout), daphne.server.twisted_loop
            )
            with contextlib.suppress(Exception):
                future.result(None if timeout is None else timeout + STOP_GRACE)
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
        **graceful_shutdown_settings("uvicorn", embedded.shutdown_timeout),
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
    from hypercorn.config import Config

    config = Config()
    host = f"[{embedded.host}]" if ":" in embedded.host else embedded.host
    config.bind = [f"{host}:{embedded.port}"]
    config.loglevel = "DEBUG" if embedded.log_level == "trace" else embedded.log_level.upper()
    config.accesslog = None
    for name, value in graceful_shutdown_settings("hypercorn", embedded.shutdown_timeout).items():
        setattr(config, name, value)
    await serve_hypercorn_bounded(app, config, stop, embedded.shutdown_timeout)


async def _serve_granian(embedded: EmbeddedServer, app: ASGIApp, stop: asyncio.Event) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    requests: set[asyncio.Task[Any]] = set()
    server = Server(
        tracked(app, requests),
        address=embedded.host,
        port=embedded.port,
        interface=Interfaces.ASGI,
        log_level=LogLevels("debug" if embedded.log_level == "trace" else embedded.log_level),
    )
    await serve_until_stopped(
        server.serve(),
        stop,
        requests,
        embedded.shutdown_timeout,
        "granian",
        begin_stop=server.stop,
    )
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

__all__ = ["EmbeddedServer", "EmbeddedState", "StartupError"]
