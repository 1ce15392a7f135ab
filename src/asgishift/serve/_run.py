"""The serve pipeline: check, load, wrap, then hand over to the server.

Split in two so the command line can print its banner between the checks
(which raise :class:`~asgishift.serve.ServeError` with a one-line fix) and
the blocking server run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

from asgishift._types import ASGIApp
from asgishift.serve._build import (
    SETTINGS_ENV,
    AppSettings,
    build_asgi_app,
    load_from_settings,
    normalise_root_path,
)
from asgishift.serve._detect import Detection
from asgishift.serve._errors import ServeConfigError
from asgishift.serve._servers import (
    ServerOptions,
    check_options,
    check_port_free,
    check_server_installed,
    serve_with,
)

logger = logging.getLogger("asgishift.serve")


@dataclass(frozen=True)
class ServePlan:
    """A checked, loaded app ready to be served; made by :func:`prepare`.

    :param server: the server name.
    :param options: where and how it listens.
    :param settings: how the app is built (also sent to worker processes).
    :param app: the wrapped ASGI app, served directly in one process.
    :param detection: WSGI or ASGI, and why.
    :param by_name: whether the app was given as ``module:attribute`` (worker
        processes can rebuild it).
    """

    server: str
    options: ServerOptions
    settings: AppSettings
    app: ASGIApp
    detection: Detection
    by_name: bool

    def describe(self) -> str:
        """Return the one-line start-up banner naming the URL, server and wrapping."""
        if self.detection.interface == "wsgi":
            kind = (
                f"WSGI app through WSGIToASGI, {self.settings.max_workers} threads; "
                f"detected: {self.detection.reason}"
            )
        else:
            kind = f"ASGI app; detected: {self.detection.reason}"
        extras = []
        if self.options.workers > 1:
            extras.append(f"{self.options.workers} workers")
        if self.options.reload:
            extras.append("reload on changes")
        if self.settings.detect_blocking:
            extras.append(f"blocking detector at {self.settings.loop_lag_ms:g} ms")
        where = self.settings.app
        if self.by_name and self.settings.app_dir not in ("", "."):
            where = f"{self.settings.app} from {self.settings.app_dir}"
        suffix = "".join(f", {extra}" for extra in extras)
        return (
            f"asgishift: serving {where} on {self.options.url(self.settings.root_path)} "
            f"({self.server}, {kind}{suffix})"
        )

    def start(self) -> None:
        """Run the server until it stops; see :func:`asgishift.serve._servers.serve_with`."""
        if self.by_name and (self.options.needs_import_string or self.server == "granian"):
            # Worker processes inherit the environment and rebuild the app
            # from it in asgishift.serve._worker.create_app.
            os.environ[SETTINGS_ENV] = self.settings.to_env()
            serve_with(self.server, None, self.options)
        else:
            serve_with(self.server, self.app, self.options)


def prepare(
    app: object,
    *,
    server: str = "uvicorn",
    host: str = "127.0.0.1",
    port: int = 8000,
    interface: Literal["auto", "wsgi", "asgi"] = "auto",
    factory: bool = False,
    app_dir: str = ".",
    workers: int = 1,
    reload: bool = False,
    root_path: str = "",
    log_level: str = "info",
    max_workers: int = 40,
    detect_blocking: bool = False,
    loop_lag_ms: float = 100.0,
) -> ServePlan:
    """Check everything that can fail before a server starts, and build the app.

    Takes the same arguments as :func:`run`.

    :return: a :class:`ServePlan`; call :meth:`ServePlan.start` to serve.
    :raise ServeError: a subclass naming the fix: the server is not installed,
        the options do not suit the server, the app cannot be imported or
        classified, or the port is taken.
    """
    check_server_installed(server)
    options = ServerOptions(
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level=log_level,
        reload_dirs=(os.path.abspath(app_dir),),
    )
    check_options(server, options)
    if max_workers < 1:
        raise ServeConfigError(f"--max-workers must be at least 1, got {max_workers}")
    by_name = isinstance(app, str)
    settings = AppSettings(
        app=app if isinstance(app, str) else f"<{type(app).__name__} object>",
        app_dir=app_dir,
        factory=factory,
        interface=interface,
        max_workers=max_workers,
        root_path=normalise_root_path(root_path),
        detect_blocking=detect_blocking,
        loop_lag_ms=loop_lag_ms,
    )
    if not by_name and options.needs_import_string:
        raise ServeConfigError(
            "workers > 1 and reload start the app in new processes, which import it by name; "
            "pass the app as a 'module:attribute' string"
        )
    if by_name:
        asgi_app, detection = load_from_settings(settings)
    else:
        loaded = app() if factory and callable(app) else app
        asgi_app, detection = build_asgi_app(loaded, settings)
    check_port_free(host, port)
    return ServePlan(server, options, settings, asgi_app, detection, by_name)


def run(
    app: object,
    *,
    server: str = "uvicorn",
    host: str = "127.0.0.1",
    port: int = 8000,
    interface: Literal["auto", "wsgi", "asgi"] = "auto",
    factory: bool = False,
    app_dir: str = ".",
    workers: int = 1,
    reload: bool = False,
    root_path: str = "",
    log_level: str = "info",
    max_workers: int = 40,
    detect_blocking: bool = False,
    loop_lag_ms: float = 100.0,
) -> None:
    """Serve a WSGI or ASGI application on an ASGI server until it is stopped.

    The Python twin of ``asgishift serve``: WSGI apps (PEP 3333) are wrapped
    in :class:`asgishift.bridge.WSGIToASGI`, ASGI 3 apps are served as they
    are, and the server is started through its own Python API. Blocks until
    the server exits (Ctrl+C or SIGTERM).

    :param app: the application object, or ``"module:attribute"`` to import
        (required for ``workers > 1`` and ``reload``).
    :param server: ``"uvicorn"``, ``"hypercorn"``, ``"daphne"`` or ``"granian"``.
    :param host: address to bind.
    :param port: TCP port to bind.
    :param interface: ``"auto"`` detects WSGI or ASGI (see
        :func:`asgishift.serve.detect_interface`); ``"wsgi"``/``"asgi"`` force it.
    :param factory: ``app`` is a callable taking no arguments that returns the app.
    :param app_dir: directory put first on :data:`sys.path` to import ``app``.
    :param workers: worker processes (uvicorn, hypercorn, granian).
    :param reload: restart when files under ``app_dir`` change (uvicorn,
        hypercorn, granian; granian needs its ``reload`` extra).
    :param root_path: mount prefix, e.g. ``"/api"``, for apps behind a
        path-stripping proxy; becomes ``SCRIPT_NAME`` for WSGI apps.
    :param log_level: ``"critical"``, ``"error"``, ``"warning"``, ``"info"``,
        ``"debug"`` or ``"trace"``.
    :param max_workers: threads in the bridge's pool running the WSGI app.
    :param detect_blocking: wrap the app in
        ``asgishift.runtime.BlockingDetectorMiddleware``.
    :param loop_lag_ms: event-loop lag, in milliseconds, the detector reports.
    :raise ServeError: before the server starts, for any problem :func:`prepare`
        finds; ``str(error)`` names the fix.
    :raise SystemExit: when the server itself fails to start.
    """
    plan = prepare(
        app,
        server=server,
        host=host,
        port=port,
        interface=interface,
        factory=factory,
        app_dir=app_dir,
        workers=workers,
        reload=reload,
        root_path=root_path,
        log_level=log_level,
        max_workers=max_workers,
        detect_blocking=detect_blocking,
        loop_lag_ms=loop_lag_ms,
    )
    logger.info("%s", plan.describe())
    plan.start()


__all__ = ["ServePlan", "prepare", "run"]
