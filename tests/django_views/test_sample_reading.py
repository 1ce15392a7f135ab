"""The sample project's ``reading`` app, served by uvicorn as a user runs it.

PostgreSQL (a fresh database, migrated with ``manage.py migrate``), the
project's own ``asgi.py`` (asgishift's bounded handler, lifespan on), and a
stand-in for the external quotes API on 127.0.0.1. The async list/detail/create
flow, the page calling the API through the lifespan's ``httpx.AsyncClient``,
and the ``aatomic`` report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import REPO_ROOT, live_server

PROJECT = REPO_ROOT / "sample_projects" / "django_project"


class QuoteAPI(BaseHTTPRequestHandler):
    """The external API: ``GET /quote`` answers one JSON quote."""

    def do_GET(self) -> None:
        body = json.dumps({"text": "So many books, so little time.", "author": "Zappa"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def quote_api() -> Iterator[str]:
    """URL of a local stand-in for the quotes API."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), QuoteAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/quote"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.live
def test_reading_flow_quote_and_report(postgresql_server: Any, quote_api: str) -> None:
    database = "sample_reading"
    postgresql_server.create_database(database)
    env = {
        "SAMPLE_DB_PORT": str(postgresql_server.port),
        "SAMPLE_DB_NAME": database,
        "SAMPLE_QUOTE_URL": quote_api,
        "SAMPLE_MAX_THREADS": "4",
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
    }
    child = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT / "src")}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=PROJECT, env=child, check=True
    )
    postgresql_server.psql("INSERT INTO shelf_book (title, added) VALUES ('Dune', now())", database)
    book_id = postgresql_server.psql("SELECT id FROM shelf_book", database)
    server = live_server("uvicorn", "mysite.asgi:application", env=env, app_dir=Path(PROJECT))
    with server as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        assert "No notes yet." in client.get("/reading/").text
        form = client.get("/reading/new/")
        assert form.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None
        created = client.post(
                "/reading/new/",
                data={"book": book_id, "text": "Fear is the mind-killer.",
                      "csrfmiddlewaretoken": token.group(1)},
            )  # fmt: skip
        assert created.status_code == 302, created.text
        detail = client.get(created.headers["location"])
        assert "<h1>Dune</h1>" in detail.text
        assert "Fear is the mind-killer." in detail.text
        listing = client.get("/reading/")
        assert "Reading notes (1)" in listing.text
        assert "Dune</a>: Fear is the mind-killer." in listing.text
        quote = client.get("/reading/quote/")
        assert quote.status_code == 200
        assert "So many books, so little time." in quote.text
        assert "1 books on the shelf" in quote.text
        report = client.get("/reading/report/")
        assert "1 notes on 1 books" in report.text
        assert "<li>Dune: 1</li>" in report.text
    assert postgresql_server.psql("SELECT notes FROM reading_reportrun", database) == "1"
