"""Entry point servers import in each worker process (``--workers N``, ``--reload``).

Servers need an import string to start an app in a fresh process; the
wrapped app (bridge, router, root path, blocking detector) is not importable
by name, so ``asgishift serve`` puts its :class:`~asgishift.serve.ServeConfig`
in the ``ASGISHIFT_SERVE_CONFIG`` environment variable, which child processes
inherit, and points the server at :func:`create_app` here (uvicorn and
granian in factory mode, hypercorn as ``create_app()``).
"""

from __future__ import annotations

import os

from asgishift._types import ASGIApp
from asgishift.serve._build import build_app
from asgishift.serve._config import config_from_environ
from asgishift.serve._cutoff import cut_on_sigterm
from asgishift.serve._startup_report import REPORT_ENV, report_startup_failure


def create_app() -> ASGIApp:
    """Build the ASGI app described by ``ASGISHIFT_SERVE_CONFIG``.

    :return: the same stack the ``asgishift serve`` process built, reporting a
        failed lifespan startup to it (see :mod:`asgishift.serve._startup_report`); on
        hypercorn also outliving the parent's SIGTERM until the shutdown timeout (see
        :func:`asgishift.serve._cutoff.cut_on_sigterm`).
    :raise RuntimeError: when the environment variable is missing.
    :raise ServeError: when the app cannot be imported in this process.
    """
    config = config_from_environ()
    app = build_app(config)
    if config.server == "hypercorn":
        app = cut_on_sigterm(app, config.bridge.shutdown_timeout)
    report = os.environ.get(REPORT_ENV)
    return report_startup_failure(app, report) if report else app


__all__ = ["create_app"]
