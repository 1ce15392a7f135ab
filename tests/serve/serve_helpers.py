"""Helpers for the ``asgishift serve`` tests: run the command line as users do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from live import REPO_ROOT

SERVE_APPS_DIR = Path(__file__).resolve().parent / "apps"


def serve_argv(*args: str) -> list[str]:
    """Return the argv of ``python -m asgishift serve ARGS``."""
    return [sys.executable, "-m", "asgishift", "serve", *args]


def run_serve(
    *args: str, extra_pythonpath: Sequence[Path] = (), cwd: Path = SERVE_APPS_DIR
) -> subprocess.CompletedProcess[str]:
    """Run ``asgishift serve`` to completion (for commands that must fail before serving).

    :param extra_pythonpath: directories put first on ``PYTHONPATH`` (import shims).
    """
    env = dict(os.environ)
    paths = [*map(str, extra_pythonpath), str(REPO_ROOT / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        serve_argv(*args),
        capture_output=True,
        text=True,
        cwd=str(cwd),
        env=env,
        timeout=60,
        check=False,
    )
