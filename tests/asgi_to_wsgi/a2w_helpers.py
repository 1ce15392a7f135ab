"""Helpers for the ASGIToWSGI tests: start real WSGI servers serving ``apps/a2w_apps.py``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from live import LiveServer, live_server

APPS_DIR = Path(__file__).resolve().parent / "apps"

#: (server, extra argv) per WSGI server configuration ASGIToWSGI is tested under.
WSGI_CONFIGS: dict[str, tuple[str, list[str]]] = {
    "gunicorn-gthread": ("gunicorn", []),
    # --threads 1: with the --threads 8 of live.py's command line, gunicorn quietly
    # runs the gthread worker when asked for sync.
    "gunicorn-sync": ("gunicorn", ["-k", "sync", "--threads", "1"]),
    "wsgiref": ("wsgiref", []),
}
WSGI_PARAMS = [pytest.param(name, id=name, marks=pytest.mark.live) for name in WSGI_CONFIGS]


def serve(
    config: str,
    app: str = "a2w_apps:application",
    *,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> AbstractContextManager[LiveServer]:
    """Start ``app`` under the WSGI configuration ``config`` (see :data:`WSGI_CONFIGS`).

    :param extra: more argv for the server (e.g. ``["--preload", "-w", "2"]``).
    :param env: environment variables for the server (see ``a2w_apps``).
    """
    server, args = WSGI_CONFIGS[config]
    return live_server(server, app, extra_args=[*args, *(extra or [])], env=env, app_dir=APPS_DIR)
