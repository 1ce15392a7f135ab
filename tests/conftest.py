"""Shared pytest configuration: make ``tests/live.py`` importable as ``live``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Django for the in-process Django tests (one settings module), and PostgreSQL.
pytest_plugins = ["django_support.plugin"]
