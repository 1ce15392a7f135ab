"""JSON API: create, read, update and delete notes under ``/api``."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, abort, jsonify, request, session, url_for
from flask.typing import ResponseReturnValue

from notesapp.db import get_db

bp = Blueprint("api", __name__, url_prefix="/api")

_FIELDS = ("title", "body")


def note_to_dict(row: sqlite3.Row) -> dict[str, Any]:
    """Return a note row as the JSON object the API sends."""
    note = dict(row)
    note["url"] = url_for("api.get_note", note_id=row["id"], _external=False)
    return note


def load_note(note_id: int) -> sqlite3.Row:
    """Return the note row with ``note_id``; abort with 404 when there is none."""
    row = get_db().execute("SELECT * FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        abort(404, description=f"note {note_id} does not exist")
    result: sqlite3.Row = row
    return result


def _payload(*, partial: bool) -> dict[str, str]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description='send a JSON object, e.g. {"title": "...", "body": "..."}')
    unknown = set(data) - set(_FIELDS)
    if unknown:
        abort(400, description=f"unknown fields: {', '.join(sorted(unknown))}")
    values = {key: data[key] for key in _FIELDS if key in data}
    if any(not isinstance(value, str) for value in values.values()):
        abort(400, description="title and body must be strings")
    if not partial and not values.get("title", "").strip():
        abort(400, description="title is required")
    if "title" in values and not values["title"].strip():
        abort(400, description="title must not be empty")
    return values


@bp.get("/notes")
def list_notes() -> ResponseReturnValue:
    """List notes, newest first; ``?q=`` filters on the title."""
    query = request.args.get("q", "")
    rows = get_db().execute(
        "SELECT * FROM note WHERE title LIKE ? ORDER BY id DESC", (f"%{query}%",)
    )
    return jsonify(notes=[note_to_dict(row) for row in rows])


@bp.post("/notes")
def create_note() -> ResponseReturnValue:
    """Create a note from ``{"title": ..., "body": ...}``; 201 with a Location header."""
    values = _payload(partial=False)
    conn = get_db()
    cursor = conn.execute(
        "INSERT INTO note (title, body, author) VALUES (?, ?, ?)",
        (values["title"], values.get("body", ""), session.get("user")),
    )
    conn.commit()
    row = load_note(int(cursor.lastrowid or 0))
    return note_to_dict(row), 201, {"Location": url_for("api.get_note", note_id=row["id"])}


@bp.get("/notes/<int:note_id>")
def get_note(note_id: int) -> ResponseReturnValue:
    """Return one note, or 404."""
    return note_to_dict(load_note(note_id))


@bp.route("/notes/<int:note_id>", methods=["PUT", "PATCH"])
def update_note(note_id: int) -> ResponseReturnValue:
    """Replace (PUT) or change some fields of (PATCH) a note."""
    load_note(note_id)
    values = _payload(partial=request.method == "PATCH")
    if request.method == "PUT":
        values.setdefault("body", "")
    conn = get_db()
    assignments = ", ".join(f"{key} = ?" for key in values)
    conn.execute(
        f"UPDATE note SET {assignments}, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
        "WHERE id = ?",
        (*values.values(), note_id),
    )
    conn.commit()
    return note_to_dict(load_note(note_id))


@bp.delete("/notes/<int:note_id>")
def delete_note(note_id: int) -> ResponseReturnValue:
    """Delete a note; 204 on success, 404 if it does not exist."""
    load_note(note_id)
    conn = get_db()
    conn.execute("DELETE FROM note WHERE id = ?", (note_id,))
    conn.commit()
    return "", 204


@bp.get("/session")
def session_info() -> ResponseReturnValue:
    """Return who is signed in and how many pages this session has viewed."""
    return {"user": session.get("user"), "visits": session.get("visits", 0)}


@bp.get("/boom")
def boom() -> ResponseReturnValue:
    """Fail on purpose, to show the 500 handler."""
    raise RuntimeError("boom: this endpoint always fails, to demonstrate the 500 handler")
