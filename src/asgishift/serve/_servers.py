"""Start each supported ASGI server through its own Python API.

Every ``serve_<name>`` function blocks until the server stops (Ctrl+C or
SIGTERM, handled by the server itself). It gets either the built ASGI app
(one process, the app object is served directly) or ``None``, meaning "start
:data:`WORKER_TARGET` in each worker process" (``--workers N``, ``--reload``,
and granian, whose workers always import their app by name).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import importlib
import logging
import math
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from asgishift._types import ASGIApp
from asgishift.serve._app_lifespan import LifespanDriver
from asgishift.serve._errors import (
    AddressUnavailableError,
    PortInUseError,
    ServeConfigError,
    ServerNotInstalledError,
)
from asgishift.serve._startup_report import REPORT_ENV, stop_on_startup_failure

if TYPE_CHECKING:
    from asgishift.serve._config import ServeConfig

logger = logging.getLogger("asgishift.serve")

#: Servers ``--server`` accepts; the first is the default.
SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")
#: Log levels ``--log-level`` accepts (uvicorn's names).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
#: Import string of the factory worker processes call (see ``_worker``).
WORKER_TARGET = "asgishift.serve._worker:create_app"


def check_server_installed(name: str) -> None:
    """Make sure the server ``name`` can be imported.

    :param name: one of :data:`SERVERS`.
    :raise ServeConfigError: for an unknown name.
    :raise ServerNotInstalledError: when its package is missing; the message
        names the ``asgishift[<server>]`` extra to install.
    """
    if name not in SERVERS:
        raise ServeConfigError(f"unknown server {name!r}; use one of {', '.join(SERVERS)}")
    try:
        importlib.import_module(name)
    except ImportError:
        raise ServerNotInstalledError(
            f"--server {name} needs the {name} package, which is not installed in "
            f"{sys.prefix}; install it with: pip install 'asgishift[{name}]'"
        ) from None


def check_port_free(host: str, port: int) -> None:
    """Fail early, with the fix, when ``host:port`` cannot be bound.

    Binds and closes a socket with ``SO_REUSEADDR`` set, as the servers do, so
    connections lingering in TIME_WAIT from a previous run do not count.

    :raise PortInUseError: when another socket listens on the port.
    :raise AddressUnavailableError: when ``host`` is not an address of this machine
        (or binding is not permitted).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use; stop the process holding it "
                    f"or choose another port, e.g. --port {port + 1 if port < 65535 else 8000}"
                ) from None
            raise AddressUnavailableError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pass --host with an "
                "address of this machine, e.g. --host 127.0.0.1",
                host,
                port,
                exc,
            ) from None


def graceful_shutdown_settings(server: str, shutdown_timeout: float | None) -> dict[str, Any]:
    """Return the setting of ``server`` that bounds its wait for open connections at
    shutdown, for :attr:`~asgishift.bridge.BridgeOptions.shutdown_timeout`
    (``--shutdown-timeout``; seconds, ``None`` for ever), as ``{name: value}`` for its
    config (``asgishift serve`` and :class:`~asgishift.serve._embedded.EmbeddedServer`).

    - uvicorn: ``timeout_graceful_shutdown`` (its hint says int; it hands the
      seconds to ``asyncio.timeout``, so a float works);
    - hypercorn: ``graceful_timeout`` (infinity for ``None``);
    - granian: ``workers_kill_timeout``, whole seconds, at least 1 (0 means never);
    - daphne: nothing (it has no such setting).

    :param server: one of :data:`SERVERS`.
    :raise KeyError: for another name.
    """
    if server == "uvicorn":
        return {"timeout_graceful_shutdown": shutdown_timeout}
    if server == "hypercorn":
        return {"graceful_timeout": float("inf") if shutdown_timeout is None else shutdown_timeout}
    if server == "granian":
        return {"workers_kill_timeout": _granian_kill_timeout(shutdown_timeout)}
    if server == "daphne":
        return {}
    raise KeyError(server)


def _exit_0(signum: int, frame: FrameType | None) -> None:
    """Leave with status 0 on a SIGTERM that reaches the process's own handler.

    uvicorn handles SIGTERM itself while it serves, then, after its graceful
    shutdown, raises it again against the handler it found at start: without
    this one the process would die of the signal (status 143).
    """
    raise SystemExit(0)


def _sighup_stops(signum: int, frame: FrameType | None) -> None:
    """Turn a SIGHUP into the SIGTERM the server stops gracefully on (one serving process).

    Raised in this process, the SIGTERM reaches the handler the server installed
    for it: running requests finish (``--shutdown-timeout``), the app's lifespan
    shutdown runs and the command ends with status 0.
    """
    logger.warning(
        "SIGHUP received: stopping gracefully, as on SIGTERM (a single process has no "
        "workers to restart; with --workers 2 or more SIGHUP restarts them)"
    )
    signal.raise_signal(signal.SIGTERM)


def _stop_on_sighup(config: ServeConfig) -> Callable[[], None]:
    """Make SIGHUP stop this process gracefully while it serves ``config`` alone.

    Without a handler SIGHUP (a closed terminal, ``kill -HUP``) ended the process
    at once with status 129: no graceful shutdown, no lifespan shutdown, and under
    uvicorn's ``--reload`` the worker process was left serving the port, orphaned.
    Supervisors that handle SIGHUP themselves install their own handler over this
    one: uvicorn's ``--workers``, hypercorn's ``--workers``/``--reload`` and granian
    restart their workers.

    :param config: the configuration being served.
    :return: a function putting the previous handler back; it does nothing off the
        main thread, where no handler can be installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGHUP, _sighup_stops)
    logger.debug("SIGHUP stops %s gracefully", config.server)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous)

    return restore


def _serve_uvicorn(app: ASGIApp | None, options: ServeConfig) -> None:
    import uvicorn

    # Only the main thread may set handlers; uvicorn skips its own elsewhere.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_0) if main else None
    settings: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "log_level": options.log_level,
        **graceful_shutdown_settings("uvicorn", options.bridge.shutdown_timeout),
        # The app is always ASGI 3 here (WSGI apps are already bridged), so
        # uvicorn must not apply its own interface detection.
        "interface": "asgi3",
        # X-Forwarded-* are applied by the app (serve/_proxy.py) on every server.
        "proxy_headers": False,
    }
    report = os.environ.get(REPORT_ENV)
    watch = (
        stop_on_startup_failure(report)
        if report and main and options.workers > 1
        else contextlib.nullcontext()
    )
    try:
        if app is not None and ":" in options.host:
            _serve_uvicorn_ipv6(app, settings)
            return
        with watch:
            uvicorn.run(
                app if app is not None else WORKER_TARGET,
                factory=app is None,
                workers=options.workers if options.workers > 1 else None,
                reload=options.reload,
                reload_dirs=list(options.reload_dirs) if options.reload else None,
                **settings,
            )
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _serve_uvicorn_ipv6(app: ASGIApp, settings: dict[str, Any]) -> None:
    """Serve ``app`` on uvicorn in this process on an IPv6 ``host``, from a socket bound here.

    Given the host, uvicorn's one process listens through ``loop.create_server``,
    which sets ``IPV6_V6ONLY``: ``--host ::`` would refuse IPv4 clients, while
    uvicorn's own ``--workers``/``--reload`` sockets, hypercorn, granian and daphne
    accept both. ``Config.bind_socket`` (what its workers listen on) leaves the
    system's default: both on Linux.

    :param settings: ``uvicorn.Config`` keywords, ``host`` and ``port`` included.
    :raise SystemExit: status 3 when the server did not start, as ``uvicorn.run``.
    """
    import uvicorn

    config = uvicorn.Config(app, **settings)
    server = uvicorn.Server(config)
    # uvicorn's own helper for its worker processes: binds, and logs "running on".
    with config.bind_socket() as sock:
        server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)


def _serve_hypercorn(app: ASGIApp | None, options: ServeConfig) -> None:
    from hypercorn.config import Config

    config = Config()
    host = f"[{options.host}]" if ":" in options.host else options.host
    config.bind = [f"{host}:{options.port}"]
    config.loglevel = "DEBUG" if options.log_level == "trace" else options.log_level.upper()
    # One line per request on stdout, as uvicorn logs them; loglevel above WARNING
    # silences it (hypercorn logs each at INFO).
    config.accesslog = "-"
    for name, value in graceful_shutdown_settings(
        "hypercorn", options.bridge.shutdown_timeout
    ).items():
        setattr(config, name, value)
    if app is not None:
        import asyncio

        from asgishift.serve._cutoff import stop_on_signal

        async def main() -> None:
            # Without a shutdown trigger hypercorn stops only on cancellation,
            # and SIGTERM would kill the process before lifespan shutdown.
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            requests: set[asyncio.Task[Any]] = set()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop_on_signal(stop, requests))
            await serve_hypercorn_bounded(
                app, config, stop, options.bridge.shutdown_timeout, requests
            )

        asyncio.run(main())
        return
    from hypercorn.run import run

    # "mode:module:expression": hypercorn evaluates the expression in the
    # module's namespace, so "create_app()" calls the factory.
    module, _, func = WORKER_TARGET.partition(":")
    config.application_path = f"asgi:{module}:{func}()"
    config.workers = options.workers
    config.use_reloader = options.reload
    exit_code = run(config)
    # hypercorn may return while a worker it terminated still writes its last log
    # lines: let them finish, so that what asgishift reports after this comes last.
    _join_children(_CHILD_EXIT_WAIT)
    if exit_code:
        raise SystemExit(exit_code)


#: Seconds :func:`_join_children` waits for worker processes that are ending.
_CHILD_EXIT_WAIT = 10.0


def _join_children(timeout: float) -> None:
    """Wait up to ``timeout`` seconds in all for this process's multiprocessing children."""
    import multiprocessing
    import time

    deadline = time.monotonic() + timeout
    for child in multiprocessing.active_children():
        child.join(max(0.0, deadline - time.monotonic()))


async def serve_hypercorn_bounded(
    app: ASGIApp,
    config: Any,
    stop: asyncio.Event,
    shutdown_timeout: float | None,
    requests: set[asyncio.Task[Any]] | None = None,
) -> None:
    """Run ``hypercorn.asyncio.serve`` until ``stop`` is set, then for at most
    ``shutdown_timeout`` seconds more (``None``: until its connections end).

    Hypercorn's own ``graceful_timeout`` (set in ``config`` as well) is not enough:
    on Python 3.12.1 and later it never starts while a connection is open (see
    :mod:`~asgishift.serve._cutoff`), so the requests still running then are cancelled
    here, and hypercorn closes their connections and runs the lifespan shutdown.

    :param app: the ASGI 3 app.
    :param config: a ``hypercorn.config.Config`` with the bind address set.
    :param stop: set to begin the graceful shutdown (SIGTERM, Ctrl+C, a reload).
    :param shutdown_timeout: seconds (``--shutdown-timeout``).
    :param requests: filled with the running requests' tasks (see
        :func:`~asgishift.serve._cutoff.tracked`), for a caller that may cancel them
        sooner (a second Ctrl+C); by default a set of its own.
    """
    from hypercorn.asyncio import serve

    from asgishift.serve._cutoff import serve_until_stopped, tracked

    requests = set() if requests is None else requests
    serving = serve(
        cast(Any, tracked(app, requests)), config, mode="asgi", shutdown_trigger=stop.wait
    )
    await serve_until_stopped(serving, stop, requests, shutdown_timeout, "hypercorn")


_DAPHNE_VERBOSITY = {"critical": 0, "error": 0, "warning": 0, "info": 1, "debug": 2, "trace": 3}


def _serve_daphne(app: ASGIApp | None, options: ServeConfig) -> None:
    if app is None:  # pragma: no cover - ServeConfig rejects this first
        raise ServeConfigError("daphne needs the app object; it cannot start worker processes")
    level = "DEBUG" if options.log_level == "trace" else options.log_level.upper()
    # daphne's own CLI configures the root logger the same way; without it
    # "Listening on TCP address" and errors would go nowhere.
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-8s %(name)s %(message)s")
    # daphne.server installs Twisted's asyncio reactor on import, so it is
    # imported here, after the app, never at module import time.
    from daphne.endpoints import build_endpoint_description_strings  # type: ignore[import-untyped]
    from daphne.server import Server  # type: ignore[import-untyped]

    endpoints = build_endpoint_description_strings(host=options.host, port=options.port)
    from daphne.access import AccessLogGenerator  # type: ignore[import-untyped]

    verbosity = _DAPHNE_VERBOSITY[options.log_level]
    # daphne has no lifespan support: the driver sends the app its lifespan events
    # and holds requests to them, as uvicorn, hypercorn and granian do.
    driver = LifespanDriver(app)
    server = Server(
        application=driver.gate(app),
        endpoints=endpoints,
        verbosity=verbosity,
        # daphne's own command line logs each request to stdout from verbosity 1.
        action_logger=AccessLogGenerator(sys.stdout) if verbosity >= 1 else None,
    )
    _drive_daphne_lifespan(driver, options.bridge.shutdown_timeout)
    server.run()


def _drive_daphne_lifespan(driver: LifespanDriver, shutdown_timeout: float | None) -> None:
    """Run ``driver``'s startup once daphne's reactor runs, its shutdown before it stops.

    A failed startup stops the reactor; the startup report (``_startup_report.py``)
    then carries the app's reason to ``asgishift serve``'s exit status 3. At a
    stop (Ctrl+C, SIGTERM), daphne first cancels the requests still running (it
    has no graceful shutdown), then the app's lifespan shutdown runs.

    :param shutdown_timeout: seconds running requests may take before the app's
        shutdown runs anyway (``None``: no limit).
    """
    import daphne.server  # type: ignore[import-untyped]
    from twisted.internet import defer
    from twisted.internet import reactor as twisted_reactor

    loop = daphne.server.twisted_loop
    reactor = cast(Any, twisted_reactor)  # zope interfaces, which mypy reads as plain classes

    def start() -> None:
        def started(future: asyncio.Future[None]) -> None:
            if future.cancelled() or future.exception() is not None:
                reactor.stop()

        asyncio.ensure_future(driver.startup(), loop=loop).add_done_callback(started)

    def stop() -> defer.Deferred[None]:
        future = asyncio.ensure_future(driver.shutdown(shutdown_timeout), loop=loop)
        return defer.Deferred.fromFuture(future)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)


def logs_access(log_level: str) -> bool:
    """Return whether ``--log-level`` ``log_level`` logs one line per request.

    uvicorn logs them at ``info`` and below; asgishift turns the other servers'
    access logs on at the same levels.
    """
    return log_level in ("info", "debug", "trace")


def _granian_log_level(level: str) -> Any:
    from granian.log import LogLevels

    return LogLevels("debug" if level == "trace" else level)


def _granian_kill_timeout(shutdown_timeout: float | None) -> int | None:
    """Return granian's ``workers_kill_timeout`` for ``--shutdown-timeout`` (seconds).

    granian has no timeout for open connections; it kills a worker process that
    has not stopped within this many whole seconds (at least 1: 0 means never).
    """
    return None if shutdown_timeout is None else max(1, math.ceil(shutdown_timeout))


def _forget_modules_under(directories: tuple[str, ...]) -> None:
    """Drop modules loaded from ``directories`` (not site-packages) from :data:`sys.modules`.

    granian forks its workers from this process when the platform's start
    method is ``fork``; a forked worker would find the app modules that were
    imported here to check the app, and never see edited code after a reload.
    """
    roots = tuple(os.path.join(os.path.abspath(d), "") for d in directories)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or "site-packages" in path or "dist-packages" in path:
            continue
        if os.path.abspath(path).startswith(roots):
            del sys.modules[name]


def _serve_granian(app: ASGIApp | None, options: ServeConfig) -> None:
    from granian.constants import Interfaces

    if app is None:
        from granian.server import Server

        if options.reload:
            _forget_modules_under(options.reload_dirs)

        Server(
            WORKER_TARGET,
            factory=True,
            interface=Interfaces.ASGI,
            address=options.host,
            port=options.port,
            workers=options.workers,
            reload=options.reload,
            reload_paths=[Path(d) for d in options.reload_dirs] if options.reload else None,
            log_level=_granian_log_level(options.log_level),
            log_access=logs_access(options.log_level),
            **graceful_shutdown_settings("granian", options.bridge.shutdown_timeout),
        ).serve()
        return
    # An app object (Python API only): granian's embedded server runs it in
    # this process's event loop. It installs no signal handlers, so we do.
    # It has no timeout for open connections: the requests still running
    # --shutdown-timeout seconds after the signal are cancelled (serve/_cutoff.py).
    from granian.server.embed import Server as EmbeddedServer

    from asgishift.serve._cutoff import serve_until_stopped, stop_on_signal, tracked

    requests: set[asyncio.Task[Any]] = set()
    embedded = EmbeddedServer(
        tracked(app, requests),
        address=options.host,
        port=options.port,
        interface=Interfaces.ASGI,
        log_level=_granian_log_level(options.log_level),
        log_access=logs_access(options.log_level),
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_on_signal(stop, requests))
        await serve_until_stopped(
            embedded.serve(),
            stop,
            requests,
            options.bridge.shutdown_timeout,
            "granian",
            begin_stop=embedded.stop,
        )

    asyncio.run(main())
    # Free the run's cyclic garbage (the closed loop, its tasks and what of
    # granian's they hold) while the interpreter is whole: left for the
    # collection at interpreter exit, granian 2.8's code can abort the process
    # (as in serve/_embedded.py; tests/serve/test_serve_live.py).
    gc.collect()


_SERVE: dict[str, Callable[[ASGIApp | None, ServeConfig], None]] = {
    "uvicorn": _serve_uvicorn,
    "hypercorn": _serve_hypercorn,
    "daphne": _serve_daphne,
    "granian": _serve_granian,
}


def serve_with(app: ASGIApp | None, config: ServeConfig) -> None:
    """Run the server ``config.server`` until it stops.

    :param app: the ASGI app to serve in this process, or ``None`` to have
        every worker process build it from :data:`WORKER_TARGET`.
    :param config: the server (checked with :func:`check_server_installed`
        first), address, workers, reload and log level.
    :raise SystemExit: when the server exits with a failure status.
    """
    logger.debug("starting %s with %s", config.server, config)
    restore = _stop_on_sighup(config)
    try:
        _SERVE[config.server](app, config)
    finally:
        restore()


__all__ = [
    "LOG_LEVELS",
    "SERVERS",
    "WORKER_TARGET",
    "check_port_free",
    "check_server_installed",
    "graceful_shutdown_settings",
    "serve_with",
]
