"""Entry point servers import in each worker process (``--workers N``, ``--reload``).

Servers need an import string to start an app in a fresh process; the
wrapped app (bridge, root path, blocking detector) is not importable by name,
so ``asgishift serve`` puts its settings in the ``ASGISHIFT_SERVE_SETTINGS``
environment variable, which child processes inherit, and points the server at
:func:`create_app` here (uvicorn and granian in factory mode, hypercorn as
``create_app()``).
"""

from __future__ import annotations

from asgishift._types import ASGIApp
from asgishift.serve._build import load_from_settings, settings_from_environ


def create_app() -> ASGIApp:
    """Build the ASGI app described by ``ASGISHIFT_SERVE_SETTINGS``.

    :return: the same stack the ``asgishift serve`` process built.
    :raise RuntimeError: when the environment variable is missing.
    :raise ServeError: when the app cannot be imported in this process.
    """
    app, _ = load_from_settings(settings_from_environ())
    return app


__all__ = ["create_app"]
