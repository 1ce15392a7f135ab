"""The documented command: sample_projects/fastapi_api mounted beside the Flask notesapp."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from live import REPO_ROOT, live_server

DOC = REPO_ROOT / "docs" / "migrating.md"
FLASK_DIR = REPO_ROOT / "sample_projects" / "flask_app"
API_DIR = REPO_ROOT / "sample_projects" / "fastapi_api"


def _documented_flags() -> list[str]:
    """Return the ``asgishift serve`` flags of the command in docs/migrating.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"PYTHONPATH=sample_projects/fastapi_api asgishift serve (.+)", text)
    assert match, "docs/migrating.md lost the mount command"
    return match.group(1).split()


def test_docs_give_the_command_this_test_runs() -> None:
    assert _documented_flags() == [
        "--app-dir",
        "sample_projects/flask_app",
        "--factory",
        "notesapp:create_app",
        "--mount",
        "/v2=notes_api:app",
    ]


@pytest.mark.live
def test_fastapi_beside_flask_under_uvicorn(tmp_path: Path) -> None:
    flags = [
        str(REPO_ROOT / f) if f.startswith("sample_projects/") else f for f in _documented_flags()
    ]
    argv = [sys.executable, "-m", "asgishift", "serve", *flags, "--port", "{port}"]
    env = {"NOTESAPP_INSTANCE_PATH": str(tmp_path)}
    with live_server("uvicorn", "", command=argv, app_dir=API_DIR, env=env) as srv:
        created = httpx.post(f"{srv.url}/api/notes", json={"title": "from flask"})
        flask_list = httpx.get(f"{srv.url}/api/notes").json()
        fastapi_list = httpx.get(f"{srv.url}/v2/notes").json()
        health = httpx.get(f"{srv.url}/v2/health").json()
        home = httpx.get(f"{srv.url}/")
        docs = httpx.get(f"{srv.url}/v2/docs")

        async def talk() -> object:
            async with websockets.connect(srv.url.replace("http", "ws") + "/v2/ws") as socket:
                await socket.send("ping")
                return json.loads(await socket.recv())

        reply = asyncio.run(talk())
        srv.wait_for_log(r"notes_api: reading " + re.escape(str(tmp_path)))
    assert created.status_code == 201
    assert [n["title"] for n in flask_list["notes"]] == ["from flask"]
    assert fastapi_list["served_by"] == "notes_api"
    assert [n["title"] for n in fastapi_list["notes"]] == ["from flask"]
    assert health == {"app": "notes_api", "root_path": "/v2", "path": "/v2/health"}
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
    assert docs.status_code == 200
    assert reply == {"echo": "ping", "notes": 1}
