"""Paths shared by the Flask integration tests."""

from __future__ import annotations

from pathlib import Path

#: Directory holding the test apps (put on sys.path and the servers' PYTHONPATH).
FLASK_APPS_DIR = Path(__file__).resolve().parent / "apps"
