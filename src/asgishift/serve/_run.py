"""The serve pipeline: check, load, wrap, then hand over to the server.

Split in two so the command line can print its banner between the checks
(which raise :class:`~asgishift.serve.ServeError` with a one-line fix) and
the blocking server run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from asgishift.serve._build import BuiltApp, build
from asgishift.serve._config import CONFIG_ENV, ServeConfig
from asgishift.serve._proxy import with_proxy_headers
from asgishift.serve._servers import check_port_free, check_server_installed, serve_with
from asgishift.serve._startup_report import report_startup_failure, startup_report

logger = logging.getLogger("asgishift.serve")


@dataclass(frozen=True)
class ServePlan:
    """A checked, loaded app ready to be served; made by :func:`prepare`.

    :param config: what to serve and how (also sent to worker processes).
    :param built: the wrapped ASGI app, served directly in one process, and
        how it was wrapped.
    """

    config: ServeConfig
    built: BuiltApp

    def describe(self) -> str:
        """Return the one-line start-up banner naming the URL, server and wrapping."""
        config = self.config
        kind = f"{self.built.wrapping}; detected: {self.built.detection.reason}"
        extras = [f"mount {prefix}={_label(spec)}" for prefix, spec in config.mounts]
        hooks = len(config.on_startup) + len(config.on_shutdown)
        if hooks:
            extras.append(f"{hooks} lifespan hook{'s' if hooks > 1 else ''}")
        if config.workers > 1:
            extras.append(f"{config.workers} workers")
        if config.reload:
            extras.append("reload on changes")
        if config.detect_blocking and config.loop_lag_ms:
            extras.append(f"blocking detector at {config.loop_lag_ms:g} ms")
        elif config.detect_blocking:
            extras.append("blocking detector, loop-lag monitor off")
        where = config.app_label
        if config.by_name and config.app_dir not in ("", "."):
            where = f"{where} from {config.app_dir}"
        suffix = "".join(f", {extra}" for extra in extras)
        return f"asgishift: serving {where} on {config.url()} ({config.server}, {kind}{suffix})"

    @property
    def app(self) -> object:
        """Return the ASGI app served in this process."""
        return self.built.app

    def start(self) -> None:
        """Run the server until it stops; see :func:`asgishift.serve._servers.serve_with`.

        :raise StartupError: when the app's lifespan startup failed (an
            ``--on-startup`` hook raised, say), in this or a worker process,
            whatever the server then did; the message names the failure.
        :raise SystemExit: when the server exits with a failure status otherwise.
        """
        config = self.config
        with startup_report() as report:
            try:
                if config.by_name and (config.needs_import_string or config.server == "granian"):
                    # Worker processes inherit the environment and rebuild the
                    # app from it in asgishift.serve._worker.create_app.
                    os.environ[CONFIG_ENV] = config.to_env()
                    serve_with(None, config)
                else:
                    app = with_proxy_headers(self.built.app, config.forwarded_allow_ips)
                    serve_with(report_startup_failure(app, report.path), config)
            except (Exception, SystemExit):
                report.raise_failure()
                raise
            report.raise_failure()


def _label(spec: object) -> str:
    return spec if isinstance(spec, str) else f"<{type(spec).__name__} object>"


def prepare(config: ServeConfig) -> ServePlan:
    """Check everything that can fail before a server starts, and build the app.

    :param config: what to serve and how.
    :return: a :class:`ServePlan`; call :meth:`ServePlan.start` to serve.
    :raise ServeError: a subclass naming the fix: the server is not installed,
        the app cannot be imported or classified, or the port is taken.
    """
    check_server_installed(config.server)
    if config.needs_import_string:
        # Fails here, with the fix, rather than in a worker process.
        config.to_env()
    built = build(config)
    check_port_free(config.host, config.port)
    return ServePlan(config, built)


def run(config: ServeConfig) -> None:
    """Serve a WSGI or ASGI application on an ASGI server until it is stopped.

    The Python twin of ``asgishift serve``: WSGI apps (PEP 3333) are wrapped
    in :class:`asgishift.bridge.WSGIToASGI` with ``config.bridge``, ASGI 3
    apps are served as they are, mounts and lifespan hooks go through
    :class:`asgishift.bridge.HybridRouter`, and the server is started through
    its own Python API. Blocks until the server exits (Ctrl+C or SIGTERM).

    >>> run(ServeConfig(app="myproject.wsgi:application", port=8080))  # doctest: +SKIP

    :param config: every option; see :class:`~asgishift.serve.ServeConfig`.
        ``config.app`` must be an import string for ``workers > 1`` and ``reload``.
    :raise ServeError: before the server starts, for any problem :func:`prepare`
        finds; ``str(error)`` names the fix. Its subclass ``StartupError`` when
        the app's lifespan startup fails (an ``on_startup`` hook raises).
    :raise SystemExit: when the server itself fails to start.
    """
    plan = prepare(config)
    logger.info("%s", plan.describe())
    plan.start()


__all__ = ["ServePlan", "prepare", "run"]
