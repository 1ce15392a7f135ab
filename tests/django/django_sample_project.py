"""Copies of ``sample_projects/django_project`` for live tests, migrated once per session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from live import REPO_ROOT, LiveServer

SAMPLE = REPO_ROOT / "sample_projects" / "django_project"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a sample project process: its own settings, our ``src``."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env["DJANGO_COLORS"] = "nocolor"
    env.update(extra or {})
    return env


def manage(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``manage.py ARGS`` in ``project``; return its output.

    :raise AssertionError: on a non-zero exit, with the output.
    """
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def make_template(root: Path) -> Path:
    """Copy the sample project under ``root`` and migrate its SQLite database."""
    project = root / "django_project"
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
    manage(project, "migrate", "-v", "0")
    return project


def copy_project(template: Path, dest: Path) -> Path:
    """A private copy of a migrated template (edits stay in it)."""
    project = dest / "django_project"
    shutil.copytree(template, project)
    return project


def runasgi_command(server: str, *extra: str) -> list[str]:
    """``manage.py runasgi 127.0.0.1:{port} --server SERVER ...`` for :func:`live.live_server`."""
    return [sys.executable, "manage.py", "runasgi", "127.0.0.1:{port}", "--server", server, *extra]


#: What granian's embedded server prints when its Rust code aborts the process
#: at exit (about one run in 30 under load, 2.8.9), after runasgi had stopped it.
GRANIAN_EXIT_PANIC = "panic in a function that cannot unwind"


def stop_gracefully(
    server: LiveServer,
    timeout: float = 30.0,
    signum: signal.Signals = signal.SIGTERM,
    *,
    group: bool = True,
) -> int:
    """Send ``signum`` to the server's process group (or, ``group=False``, to its
    process only) and wait; return the exit status.

    A granian process that aborts in granian's own code after runasgi reported
    the server stopped (lifespan shutdown done) makes the test an xfail: the
    crash is granian's, and nothing of ours is left to check.
    """
    if group:
        os.killpg(server.process.pid, signum)
    else:
        os.kill(server.process.pid, signum)
    status = server.process.wait(timeout)
    if status == -signal.SIGABRT and server.server == "granian":
        log = server.log()
        if "granian stopped." in log and GRANIAN_EXIT_PANIC in log:
            pytest.xfail("granian aborted in its own code at exit, after it had stopped")
    return status
