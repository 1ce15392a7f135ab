"""notes_api: the first async endpoints of notesapp, written with FastAPI.

The migration story this sample shows: ``sample_projects/flask_app`` (a WSGI
Flask app) keeps serving every page and its ``/api``; new endpoints are
written as an ASGI app and mounted beside it under ``/v2`` by asgishift's
``HybridRouter``, on one ASGI server, reading the same SQLite database::

    PYTHONPATH=sample_projects/fastapi_api asgishift serve \\
        --app-dir sample_projects/flask_app --factory notesapp:create_app \\
        --mount /v2=notes_api:app

- ``GET /v2/health``: the mount's view of the request (``root_path``, path);
- ``GET /v2/notes``: the notes Flask's ``/api/notes`` lists, read off the event
  loop with :func:`asyncio.to_thread` (``sqlite3`` blocks);
- ``WS /v2/ws``: a WebSocket that answers each text message with the number of
  notes and the message back (the WSGI app could not serve WebSockets at all).

The database is ``notes.sqlite`` in ``NOTESAPP_INSTANCE_PATH``, the same
variable notesapp reads, else in ``sample_projects/flask_app/instance``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

_DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "flask_app" / "instance"


def database_path() -> Path:
    """Return the SQLite file notesapp writes (see the module docstring)."""
    instance = os.environ.get("NOTESAPP_INSTANCE_PATH")
    return (Path(instance) if instance else _DEFAULT_INSTANCE) / "notes.sqlite"


def _read_notes(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT id, title, body FROM note ORDER BY id DESC").fetchall()
    except sqlite3.OperationalError:  # notesapp has not created its table yet
        return []
    finally:
        conn.close()
    return [dict(row) for row in rows]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Runs once per process when the server starts (through the router's fan-out)."""
    print(f"notes_api: reading {database_path()}", flush=True)
    yield {"notes_db": database_path()}
    print("notes_api: stopped", flush=True)


app = FastAPI(title="notes_api", lifespan=lifespan)


@app.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Say which app answered and where it is mounted."""
    return {
        "app": "notes_api",
        "root_path": request.scope.get("root_path", ""),
        "path": request.url.path,
    }


@app.get("/notes")
async def list_notes(request: Request) -> dict[str, Any]:
    """List the notes from notesapp's database, newest first."""
    notes = await asyncio.to_thread(_read_notes, request.state.notes_db)
    return {"notes": notes, "served_by": "notes_api"}


@app.websocket("/ws")
async def notes_socket(websocket: WebSocket) -> None:
    """Answer each text message with ``{"echo": text, "notes": count}``."""
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            notes = await asyncio.to_thread(_read_notes, websocket.state.notes_db)
            await websocket.send_json({"echo": text, "notes": len(notes)})
    except WebSocketDisconnect:
        return
