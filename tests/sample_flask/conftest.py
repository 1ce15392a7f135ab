"""Run ``sample_projects/flask_app`` (notesapp) under each ASGI server via ``asgishift serve``."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest
from notes_helpers import DOWNLOAD_SIZE, SAMPLE_DIR, NotesServer

from live import ASGI_SERVER_PARAMS, live_server


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def notes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotesServer]:
    """Serve notesapp on one ASGI server with a fresh instance folder (xdist-safe)."""
    server: str = request.param
    instance = tmp_path_factory.mktemp(f"notesapp-{server}")
    argv = [sys.executable, "-m", "asgishift", "serve", "--server", server, "--port", "{port}"]
    argv += ["--app-dir", str(SAMPLE_DIR), "--factory", "notesapp:create_app"]
    argv += ["--log-level", "warning"]
    env = {
        "NOTESAPP_INSTANCE_PATH": str(instance),
        "NOTESAPP_DOWNLOAD_SIZE": str(DOWNLOAD_SIZE),
    }
    with live_server(server, "", command=argv, env=env, app_dir=SAMPLE_DIR) as srv:
        yield NotesServer(srv.url, instance, srv)


@pytest.fixture
def client(notes: NotesServer) -> Iterator[httpx.Client]:
    """A fresh client session against the running notesapp."""
    with notes.client() as session:
        yield session
