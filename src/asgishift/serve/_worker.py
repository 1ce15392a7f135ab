"""Entry point servers import in each worker process (``--workers N``, ``--reload``).

Servers need an import string to start an app in a fresh process; the
wrapped app (bridge, router, root path, blocking detector) is not importable
by name, so ``asgishift serve`` puts its :class:`~asgishift.serve.ServeConfig`
in the ``ASGISHIFT_SERVE_CONFIG`` environment variable, which child processes
inherit, and points the server at :func:`create_app` here (uvicorn and
granian in factory mode, hypercorn as ``create_app()``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback

from asgishift._types import ASGIApp, Receive, Scope, Send
from asgishift.bridge._lifespan import Lifespan, serve_lifespan
from asgishift.serve._build import build_app
from asgishift.serve._config import config_from_environ
from asgishift.serve._cutoff import cut_on_sigterm
from asgishift.serve._errors import AppImportError
from asgishift.serve._proxy import with_proxy_headers
from asgishift.serve._startup_report import REPORT_ENV, report_startup_failure

logger = logging.getLogger("asgishift.serve")


def create_app() -> ASGIApp:
    """Build the ASGI app described by ``ASGISHIFT_SERVE_CONFIG``.

    :return: the same stack the ``asgishift serve`` process built, reporting a
        failed lifespan startup to it (see :mod:`asgishift.serve._startup_report`); on
        hypercorn also outliving the parent's SIGTERM until the shutdown timeout (see
        :func:`asgishift.serve._cutoff.cut_on_sigterm`).
    With ``--reload``, an app that fails to load (an edit left a syntax error,
    say) is replaced by one answering ``500`` with the traceback, until the next
    change restarts the worker; the error is logged as well.

    :raise RuntimeError: when the environment variable is missing.
    :raise ServeError: when the app cannot be imported in this process
        (without ``--reload``).
    """
    config = config_from_environ()
    try:
        app = build_app(config)
    except Exception as exc:
        if not config.reload:
            raise
        # An edit broke the app: keep the worker, so the reloader restarts it once
        # the file is fixed, and show the error to the developer's browser.
        if isinstance(exc, AppImportError):
            details = f"{exc.details}{exc}\n"
        else:
            details = traceback.format_exc()
        logger.error("cannot load %s after a change:\n%s", config.app_label, details)
        return _error_app(f"asgishift serve --reload: cannot load {config.app_label}\n\n{details}")
    app = with_proxy_headers(app, config.forwarded_allow_ips)
    if config.server in ("uvicorn", "hypercorn"):
        _leave_sighup_to_parent()
    if config.server == "hypercorn":
        app = cut_on_sigterm(app, config.bridge.shutdown_timeout)
    report = os.environ.get(REPORT_ENV)
    return report_startup_failure(app, report) if report else app


def _leave_sighup_to_parent() -> None:
    """Ignore SIGHUP in this uvicorn or hypercorn worker process; its parent handles it.

    A closed terminal sends SIGHUP to the whole process group. A worker without a
    handler died of it at once, without its lifespan shutdown (``--on-shutdown``
    hooks), while its parent restarted the workers (uvicorn's and hypercorn's
    ``--workers``, hypercorn's ``--reload``) or stopped them (uvicorn's ``--reload``,
    see :func:`asgishift.serve._servers.serve_with`) gracefully anyway. Only in the
    main thread, where the server loads the app; elsewhere nothing is changed.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _error_app(text: str) -> ASGIApp:
    """Return an ASGI 3 app answering every HTTP request ``500`` with ``text`` (UTF-8)
    and closing every WebSocket (code 1011); its lifespan succeeds without hooks."""
    body = text.encode("utf-8", "replace")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, Lifespan(()))
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1011})
        elif scope["type"] == "http":
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    return app


__all__ = ["create_app"]
