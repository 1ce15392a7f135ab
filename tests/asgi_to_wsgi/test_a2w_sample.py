"""``sample_projects/fastapi_on_gunicorn`` runs as its README says: gunicorn with its own
config (two gthread workers, lifespan startup in ``post_fork``), FastAPI through ASGIToWSGI."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from live import live_server

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_projects" / "fastapi_on_gunicorn"
DEADLINE = 20.0


@pytest.mark.live
def test_sample_fastapi_on_gunicorn() -> None:
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
            "127.0.0.1:{port}", "--log-level", "warning", "wsgi:application"]  # fmt: skip
    with live_server("gunicorn", "", command=argv, app_dir=SAMPLE_DIR) as srv:
        listing = httpx.get(f"{srv.url}/quotes", timeout=DEADLINE)
        assert listing.status_code == 200
        assert listing.json()["quotes"]["1"]["text"].startswith("Make it work")
        assert listing.json()["worker_pid"] != srv.process.pid  # a worker, not the master
        created = httpx.post(
            f"{srv.url}/quotes", json={"text": "hi", "author": "me"}, timeout=DEADLINE
        )
        assert created.status_code == 201
        assert httpx.get(f"{srv.url}/quotes/999", timeout=DEADLINE).status_code == 404
        with httpx.stream(
            "GET", f"{srv.url}/ticks", params={"count": 3, "interval": 0.05}, timeout=DEADLINE
        ) as stream:
            assert [line for line in stream.iter_lines() if line] == [
                "data: tick 0",
                "data: tick 1",
                "data: tick 2",
            ]
