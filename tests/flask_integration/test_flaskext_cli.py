"""``flask run-asgi`` (the ``flask.commands`` entry point) starting real servers."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from flaskext_helpers import FLASK_APPS_DIR

from live import live_server

FLASK = [sys.executable, "-c", "from flask.cli import main; main()"]


def test_run_asgi_is_listed_by_flask() -> None:
    result = subprocess.run(
        [*FLASK, "--app", "flaskext_live_app", "--help"],
        cwd=FLASK_APPS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "run-asgi" in result.stdout


@pytest.mark.live
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_run_asgi_serves_the_extension(server: str) -> None:
    argv = [*FLASK, "--app", "flaskext_live_app", "run-asgi", "--server", server]
    argv += ["--host", "127.0.0.1", "--port", "{port}"]
    with live_server(server, "", command=argv, app_dir=FLASK_APPS_DIR) as srv:
        body = httpx.get(srv.url + "/async/3", timeout=10).json()
    # same_loop is only True when before_serving ran on the serving loop.
    assert body["same_loop"] is True
    assert body["n"] == 3


@pytest.mark.live
def test_run_asgi_reload_serves_by_import_path() -> None:
    argv = [*FLASK, "--app", "flaskext_live_app", "run-asgi", "--reload", "--port", "{port}"]
    with live_server("uvicorn", "", command=argv, app_dir=FLASK_APPS_DIR, timeout=60) as srv:
        body = httpx.get(srv.url + "/async/4", timeout=10).json()
    assert body["same_loop"] is True


def test_run_asgi_unknown_server_is_a_usage_error() -> None:
    result = subprocess.run(
        [*FLASK, "--app", "flaskext_live_app", "run-asgi", "--server", "nope"],
        cwd=FLASK_APPS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "nope" in result.stderr
