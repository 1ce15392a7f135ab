"""Paths and version facts shared by the Flask integration tests."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

#: Directory holding the test apps (put on sys.path and the servers' PYTHONPATH).
FLASK_APPS_DIR = Path(__file__).resolve().parent / "apps"


def _release(distribution: str) -> tuple[int, int]:
    """Return the installed ``distribution``'s (major, minor) version."""
    major, minor = version(distribution).split(".")[:2]
    return int(major), int(minor)


#: Flask 3.0's ``stream_with_context`` pushes the request context when it is called, so in
#: an ``async def`` view the context is pushed on the event loop and popped where the body is
#: read, which ``contextvars`` refuses ("was created in a different Context"). Stock Flask
#: 3.0 fails the same way under any WSGI server; Flask 3.1 pushes it when iteration starts.
ASYNC_STREAM_WITH_CONTEXT = _release("flask") >= (3, 1)
#: Werkzeug 3.1 sends ``Accept-Ranges: bytes`` with a whole file from ``send_file``; 3.0
#: sends it with ranged responses only.
ACCEPT_RANGES_ON_WHOLE_FILES = _release("werkzeug") >= (3, 1)
