"""Error pages: JSON for API clients, HTML for browsers."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError


def wants_json() -> bool:
    """Return whether the client should get JSON: API paths or an Accept preferring it."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def handle_http_error(error: HTTPException) -> ResponseReturnValue:
    """Render any HTTP error (404, 405, 400, 413...) in the client's format."""
    code = error.code or 500
    if wants_json():
        return {"error": error.name, "status": code, "detail": error.description}, code
    return render_template("error.html", error=error, code=code), code


def handle_server_error(error: InternalServerError) -> ResponseReturnValue:
    """Render an unhandled exception as a 500 without leaking its details."""
    detail = "The server hit an unexpected error; it has been logged."
    if wants_json():
        return {"error": "Internal Server Error", "status": 500, "detail": detail}, 500
    return render_template("error.html", error=error, code=500, detail=detail), 500


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_server_error)
