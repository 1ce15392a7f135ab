"""Fixtures for the ASGIToWSGI tests: real WSGI servers serving ``apps/a2w_apps.py``.

gunicorn (gthread and sync workers) and wsgiref run ``a2w_apps:application``
in real subprocesses; tests that need other settings (a short response
timeout, ``--preload``, a lifespan events file) start their own servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from live import LiveServer, live_server

APPS_DIR = Path(__file__).resolve().parent / "apps"

#: (server, extra argv) per WSGI server configuration ASGIToWSGI is tested under.
WSGI_CONFIGS: dict[str, tuple[str, list[str]]] = {
    "gunicorn-gthread": ("gunicorn", []),
    "gunicorn-sync": ("gunicorn", ["-k", "sync"]),
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
    """Start ``app`` under the WSGI configuration ``config`` (see :data:`WSGI_CONFIGS`)."""
    server, args = WSGI_CONFIGS[config]
    return live_server(server, app, extra_args=[*args, *(extra or [])], env=env, app_dir=APPS_DIR)


@pytest.fixture(scope="session", params=WSGI_PARAMS)
def wsgi_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``a2w_apps:application`` under each WSGI server configuration."""
    with serve(request.param) as srv:
        yield srv


@pytest.fixture(scope="session")
def gthread_server() -> Iterator[LiveServer]:
    """Serve ``a2w_apps:application`` under gunicorn gthread (concurrent requests)."""
    with serve("gunicorn-gthread") as srv:
        yield srv
