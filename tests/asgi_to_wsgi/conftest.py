"""Fixtures for the ASGIToWSGI tests: real WSGI servers serving ``apps/a2w_apps.py``.

gunicorn (gthread and sync workers) and wsgiref run ``a2w_apps:application``
in real subprocesses; tests that need other settings (a short response
timeout, ``--preload``, a lifespan events file) start their own servers with
:func:`a2w_helpers.serve`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from a2w_helpers import WSGI_PARAMS, serve

from live import LiveServer


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
