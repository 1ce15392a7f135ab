"""gunicorn settings for the quotes API served through ASGIToWSGI."""

from __future__ import annotations

from typing import Any

bind = "127.0.0.1:8000"
worker_class = "gthread"
workers = 2
threads = 8


def post_fork(server: Any, worker: Any) -> None:
    """Run the app's lifespan startup as each worker starts, not at its first request."""
    from wsgi import application

    application.startup()
