"""Shared fixtures for the Flask integration tests: the live app on each ASGI server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flaskext_helpers import FLASK_APPS_DIR

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

sys.path.insert(0, str(FLASK_APPS_DIR))


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def flask_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """``flaskext_live_app:asgi_app`` on one ASGI server (uvicorn, hypercorn, daphne, granian)."""
    server: str = request.param
    with live_server(server, "flaskext_live_app:asgi_app", app_dir=FLASK_APPS_DIR) as srv:
        yield srv
