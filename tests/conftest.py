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
- ``-n auto`` starts two xdist workers per usable core: the live tests spend
  about half their time waiting on servers they started and on clients, so
  one worker per core left the cores half idle (the whole suite on 2 cores:
  8 min with 2 workers, 4.5 min with 4).
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


@pytest.hookimpl(optionalhook=True)  # an xdist hook: a run with -p no:xdist lacks it
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core this process may run on (at most 16)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cores = os.cpu_count() or 1
    return min(16, 2 * cores)


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
