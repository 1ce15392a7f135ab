"""Shared pytest configuration.

- Makes ``tests/live.py`` importable as ``live``.
- Compiles ``src/`` and the live apps to bytecode once per session: the live
  tests start hundreds of interpreters that import them, and where
  ``PYTHONDONTWRITEBYTECODE`` is set (CI images often set it) each would
  compile them again.
- ``ASGISHIFT_TEST_SERVERS=uvicorn,daphne`` (a comma-separated subset of
  ``live.ASGI_SERVERS``) deselects the tests parametrised over the other ASGI
  servers. ``.ci/run`` gives each matrix corner two of the four servers;
  unset, all run.
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import LIVE_APPS_DIR, SERVERS_VARIABLE, SRC_DIR, excluded_server, selected_servers

# Django for the in-process Django tests (one settings module), and PostgreSQL.
pytest_plugins = ["django_support.plugin"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile ``src/`` and ``tests/live_apps`` (in the controller only, under xdist)."""
    if hasattr(session.config, "workerinput"):
        return
    for directory in (SRC_DIR, LIVE_APPS_DIR):
        compileall.compile_dir(directory, quiet=2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests of the ASGI servers ``ASGISHIFT_TEST_SERVERS`` leaves out."""
    servers = selected_servers(os.environ.get(SERVERS_VARIABLE))
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        (dropped if excluded_server(params, servers) else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
