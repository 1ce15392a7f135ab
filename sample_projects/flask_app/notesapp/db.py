"""SQLite access with the standard library: one connection per request, kept on ``g``."""

from __future__ import annotations

import sqlite3
from importlib import resources

from flask import Flask, current_app, g


def get_db() -> sqlite3.Connection:
    """Return this request's connection, opening it on first use."""
    if "db" not in g:
        # The bridge runs each request on a pool thread; the connection lives
        # and dies with the request, so it never crosses threads.
        conn = sqlite3.connect(current_app.config["DATABASE"], timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        g.db = conn
    connection: sqlite3.Connection = g.db
    return connection


def close_db(_exc: BaseException | None = None) -> None:
    """Close the request's connection, if one was opened."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_db(app: Flask) -> None:
    """Create the tables if they do not exist yet (idempotent, safe in every worker)."""
    schema = resources.files("notesapp").joinpath("schema.sql").read_text(encoding="utf-8")
    conn = sqlite3.connect(app.config["DATABASE"], timeout=10)
    try:
        # WAL lets readers and one writer work at once across worker processes.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(schema)
        conn.commit()
    finally:
        conn.close()


def init_app(app: Flask) -> None:
    """Create the schema and close connections at the end of each request."""
    init_db(app)
    app.teardown_appcontext(close_db)
