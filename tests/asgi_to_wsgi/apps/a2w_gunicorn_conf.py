"""gunicorn settings for the live tests: run lifespan startup at worker start."""

from __future__ import annotations

from typing import Any


def post_fork(server: Any, worker: Any) -> None:
    """Start the app's lifespan in the new worker, before it accepts a request."""
    import a2w_apps

    a2w_apps.bridge.startup()
