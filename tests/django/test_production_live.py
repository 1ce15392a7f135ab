"""The production commands of docs/django.md, each started once against the sample project."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from django_sample_project import (
    child_env,
    copy_project,
    make_template,
    manage,
    stop_gracefully,
)

from live import live_server, wait_for

pytestmark = pytest.mark.live

PY = sys.executable
APP = "mysite.asgi:application"
GUNICORN = (PY, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "2")
GRANIAN = (PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("sample"))


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            [*GUNICORN, "-k", "uvicorn_worker.UvicornWorker", APP],
            id="gunicorn-uvicorn-worker",
        ),
        pytest.param(
            [*GRANIAN, "--port", "{port}", "--workers", "2", APP],
            id="granian",
        ),
    ],
)
def test_production_command_serves_the_sample(
    command: list[str], template: Path, tmp_path: Path
) -> None:
    project = copy_project(template, tmp_path)
    with live_server("prod", APP, command=command, app_dir=project, env=child_env()) as live:
        assert httpx.get(live.url + "/count/", timeout=10).json() == {"books": 0}
        state = httpx.get(live.url + "/async-count/", timeout=10).json()
        assert state["started_at"]  # lifespan ran in the worker serving it
        assert "Welcome to the shelf" in httpx.get(live.url + "/", timeout=10).text


def test_asgishift_serve_workers_on_postgres_keeps_connections(
    template: Path, tmp_path: Path, postgresql_server: Any
) -> None:
    project = copy_project(template, tmp_path)
    database = "sample_serve"
    postgresql_server.create_database(database)
    env = {
        "SAMPLE_DB_PORT": str(postgresql_server.port),
        "SAMPLE_DB_NAME": database,
        "SAMPLE_CONN_MAX_AGE": "60",
        "SAMPLE_MAX_THREADS": "3",
    }
    manage(project, "migrate", "-v", "0", env=env)
    command = [PY, "-m", "asgishift", "serve", APP, "--workers", "2", "--port", "{port}"]
    with live_server(
        "uvicorn", APP, command=command, app_dir=project, env=child_env(env), timeout=60
    ) as live:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            for _ in range(40):
                assert client.get("/count/").json() == {"books": 0}
        connected = postgresql_server.count_connections(database)
        assert 1 <= connected <= 2 * 3  # workers x max_threads, not one per request
        assert stop_gracefully(live) == 0
    wait_for(
        lambda: postgresql_server.count_connections(database) == 0,
        10,
        "the workers' connections to close at shutdown",
    )
