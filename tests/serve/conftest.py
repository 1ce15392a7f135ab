"""Fixtures for the ``asgishift serve`` tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def hide_module(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that writes a ``sitecustomize`` hiding modules; it returns its dir.

    Setting ``sys.modules[name] = None`` makes ``import name`` raise
    ``ModuleNotFoundError``, exactly as when the package is not installed.
    """

    def make(*names: str) -> Path:
        shim = tmp_path / "shim"
        shim.mkdir(exist_ok=True)
        lines = ["import sys"] + [f"sys.modules[{name!r}] = None" for name in names]
        (shim / "sitecustomize.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return shim

    return make
