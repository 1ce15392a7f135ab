"""notesapp: a small but complete Flask app to run on ASGI servers through asgishift.

It is written as an ordinary WSGI Flask project (app factory, blueprints,
Jinja templates, SQLite, sessions, streamed uploads, ``send_file``
downloads, server-sent events) and knows nothing about ASGI: ``asgishift
serve --factory notesapp:create_app`` runs it unchanged.

Configuration comes from, in order: defaults below, ``config.py`` in the
instance folder (if present), environment variables ``NOTESAPP_*``, and the
``test_config`` mapping. The instance folder (database, uploads, generated
download, secret key) is ``./instance`` next to this package unless
``NOTESAPP_INSTANCE_PATH`` names another directory.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from notesapp import api, db, errors, files, live, pages

MiB = 1024 * 1024


def _secret_key(instance: Path) -> str:
    """Return the secret key stored in the instance folder, creating it once.

    Every worker process must sign sessions with the same key, so it is kept
    in a file. The key is written to a temporary file and hard-linked into
    place: the link either creates the complete file or fails because another
    worker got there first, so no worker can read a half-written key.
    """
    path = instance / "secret_key"
    if not path.exists():
        fd, tmp_name = tempfile.mkstemp(dir=instance, prefix=".secret-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32))
            os.link(tmp_name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp_name)
    return path.read_text(encoding="ascii").strip()


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the notes application.

    :param test_config: settings that override everything else (used by tests).
    :return: the Flask app (a WSGI application).
    """
    instance_path = os.environ.get("NOTESAPP_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
    )
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        DATABASE=str(instance / "notes.sqlite"),
        UPLOAD_FOLDER=str(instance / "uploads"),
        # Size in bytes of the file served by /files/large, generated on first use.
        DOWNLOAD_SIZE=32 * MiB,
        # Uploads above this many bytes are refused with 413.
        MAX_CONTENT_LENGTH=1024 * MiB,
        # Pause in seconds between server-sent events unless ?interval= says otherwise.
        SSE_INTERVAL=1.0,
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("NOTESAPP")
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(instance)
    Path(app.config["UPLOAD_FOLDER"]).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(files.bp)
    app.register_blueprint(live.bp)
    errors.register(app)
    # The ASGI extension: async views on the server's loop, WebSockets, lifespan.
    live.ext.init_app(app)
    return app
