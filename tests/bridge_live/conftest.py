"""Fixtures for the live tests of the WSGI->ASGI bridge.

Each ASGI server of :data:`live.ASGI_SERVERS` runs ``tests/live_apps/bridge_apps.py``
in a real subprocess. The plain servers are session-scoped (one per server and
xdist worker); tests keep apart by sending a fresh ``X-Test-Id`` and reading
``/_state`` for that id only. Configurations that change the bridge options
start their own servers in their test modules.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator

import pytest

from live import ASGI_SERVER_PARAMS, LIVE_APPS_DIR, LiveServer, live_server

# The tests share tests/live_apps/bridge_data.py with the app (pure stdlib).
sys.path.insert(0, str(LIVE_APPS_DIR))

from bridge_helpers import new_test_id


@pytest.fixture(scope="session")
def payload_env() -> Iterator[dict[str, str]]:
    """Give the servers a directory for ``/file`` payloads, deleted after the session.

    Up to 73 MiB per file size; the servers themselves are killed and cannot
    clean up after themselves.
    """
    with tempfile.TemporaryDirectory(prefix="asgishift-bridge-files-") as tmp:
        yield {"BRIDGE_APP_FILE_DIR": tmp}


@pytest.fixture(scope="session", params=ASGI_SERVER_PARAMS)
def server(request: pytest.FixtureRequest, payload_env: dict[str, str]) -> Iterator[LiveServer]:
    """Serve ``bridge_apps:app`` (validated) on each ASGI server."""
    with live_server(request.param, "bridge_apps:app", env=payload_env) as srv:
        yield srv


@pytest.fixture(scope="session", params=ASGI_SERVER_PARAMS)
def raw_server(request: pytest.FixtureRequest, payload_env: dict[str, str]) -> Iterator[LiveServer]:
    """Serve ``bridge_apps:raw_app`` (no validator) on each ASGI server."""
    with live_server(request.param, "bridge_apps:raw_app", env=payload_env) as srv:
        yield srv


@pytest.fixture
def test_id() -> str:
    """Return a fresh ``X-Test-Id`` for this test."""
    return new_test_id()
