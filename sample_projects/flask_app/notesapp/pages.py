"""HTML pages rendered with Jinja: the note list, a note, sign-in, and about."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from notesapp.api import load_note
from notesapp.db import get_db

bp = Blueprint("pages", __name__)

#: A plain (unsigned) cookie remembering the last page view, next to the signed session.
LAST_VISIT_COOKIE = "notesapp_last_visit"


@bp.before_app_request
def count_visit() -> None:
    """Count page views in the session (API and file routes do not count)."""
    if request.blueprint == "pages":
        session["visits"] = session.get("visits", 0) + 1


@bp.after_app_request
def remember_last_visit(response: Response) -> Response:
    """Set the last-visit cookie on every page response."""
    if request.blueprint == "pages":
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        response.set_cookie(LAST_VISIT_COOKIE, stamp, max_age=30 * 24 * 3600, samesite="Lax")
    return response


@bp.get("/")
def index() -> ResponseReturnValue:
    """List the notes, with a form to add one."""
    notes = get_db().execute("SELECT * FROM note ORDER BY id DESC").fetchall()
    return render_template(
        "index.html", notes=notes, last_visit=request.cookies.get(LAST_VISIT_COOKIE)
    )


@bp.post("/")
def add_note() -> ResponseReturnValue:
    """Create a note from the HTML form, then redirect to the list (post/redirect/get)."""
    title = request.form.get("title", "").strip()
    if not title:
        flash("A note needs a title.")
        return redirect(url_for("pages.index"))
    conn = get_db()
    conn.execute(
        "INSERT INTO note (title, body, author) VALUES (?, ?, ?)",
        (title, request.form.get("body", ""), session.get("user")),
    )
    conn.commit()
    flash(f"Added “{title}”.")
    return redirect(url_for("pages.index"))


@bp.get("/notes/<int:note_id>")
def note(note_id: int) -> ResponseReturnValue:
    """Show one note (404 page if it does not exist)."""
    return render_template("note.html", note=load_note(note_id))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in with just a name (a demo of the session cookie, not of authentication)."""
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        if name:
            session["user"] = name
            flash(f"Signed in as {name}.")
            return redirect(url_for("pages.index"))
        flash("Type a name to sign in.")
    return render_template("login.html")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Forget the signed-in user but keep the visit counter."""
    session.pop("user", None)
    flash("Signed out.")
    return redirect(url_for("pages.index"))


@bp.get("/about")
def about() -> ResponseReturnValue:
    """Show how the app is being served (the WSGI environ the bridge built)."""
    environ = request.environ
    details = {
        "SERVER_SOFTWARE": environ.get("SERVER_SOFTWARE", ""),
        "SCRIPT_NAME": environ.get("SCRIPT_NAME", ""),
        "wsgi.multithread": environ.get("wsgi.multithread"),
        "wsgi.multiprocess": environ.get("wsgi.multiprocess"),
        # Differs between requests under --workers N: each worker is a process.
        "process id": os.getpid(),
    }
    return render_template("about.html", details=details)
