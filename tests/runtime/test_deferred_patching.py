"""Installing a BlockingDetector imports no third-party package: one not imported yet is
patched when the application imports it, with the same result as before."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgishift.runtime import BlockingDetector

SRC = Path(__file__).resolve().parents[2] / "src"

#: Third-party packages the catalogue watches that a plain interpreter has not imported.
_WATCHED_PACKAGES = ("requests", "httpx", "urllib3", "sqlalchemy", "psycopg", "redis")

_INSTALL_IN_A_FRESH_INTERPRETER = """
import json, sys
from asgishift.runtime import BlockingDetector
before = len(sys.modules)
detector = BlockingDetector().install()
after = len(sys.modules)
imported = sorted(set({packages!r}) & set(sys.modules))
import requests, sqlalchemy.orm
wrapped = [
    hasattr(obj, "__asgishift_blocking__")
    for obj in (requests.get, requests.Session.get, sqlalchemy.orm.Session.execute)
]
print(json.dumps({{"added": after - before, "imported": imported, "wrapped": wrapped}}))
"""


def test_install_imports_no_watched_package_and_patches_it_on_import() -> None:
    """Before, ``install()`` imported every installed package the catalogue names
    (requests, httpx, SQLAlchemy, psycopg...): ``sys.modules`` grew by about 620."""
    code = _INSTALL_IN_A_FRESH_INTERPRETER.format(packages=_WATCHED_PACKAGES)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["imported"] == [], seen
    assert seen["wrapped"] == [True, True, True], seen
    assert seen["added"] < 300, seen


@pytest.fixture
def late_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package ``late_pkg_s15`` on ``sys.path``, not imported yet: a function
    ``late_pkg_s15.io.fetch``, a submodule only imported on demand, and a constant."""
    package = tmp_path / "late_pkg_s15"
    package.mkdir()
    (package / "__init__.py").write_text("LIMIT = 3\n", encoding="utf-8")
    (package / "io.py").write_text(
        "import time\n\ndef fetch():\n    time.sleep(0)\n    return 'fetched'\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "late_pkg_s15"
    for name in ("late_pkg_s15.io", "late_pkg_s15"):
        sys.modules.pop(name, None)


def _on_loop(func: object) -> object:
    async def call() -> object:
        assert callable(func)
        return func()

    return asyncio.run(call())


def test_a_package_imported_after_install_is_watched(late_package: str) -> None:
    names = [f"{late_package}.io.fetch", f"{late_package}.LIMIT"]
    with BlockingDetector([], extra_blocking=names) as detector:
        assert late_package not in sys.modules
        assert detector.unpatchable == {}
        io = importlib.import_module(f"{late_package}.io")
        assert _on_loop(io.fetch) == "fetched"
        # The constant's reason is known once its package is imported.
        assert "not a function" in detector.unpatchable[f"{late_package}.LIMIT"]
    assert [(event.code, event.call) for event in detector.events] == [
        ("ASH199", f"{late_package}.io.fetch")
    ]
    assert not hasattr(io.fetch, "__asgishift_blocking__")


def test_a_package_imported_after_uninstall_is_left_alone(late_package: str) -> None:
    meta_path = list(sys.meta_path)
    with BlockingDetector([], extra_blocking=[f"{late_package}.io.fetch"]):
        assert len(sys.meta_path) == len(meta_path) + 1
    assert sys.meta_path == meta_path
    io = importlib.import_module(f"{late_package}.io")
    assert not hasattr(io.fetch, "__asgishift_blocking__")
    assert io.__loader__ is io.__spec__.loader


def test_a_module_patched_on_import_keeps_its_own_loader(late_package: str) -> None:
    with BlockingDetector([], extra_blocking=[f"{late_package}.io.fetch"]):
        io = importlib.import_module(f"{late_package}.io")
        assert hasattr(io.fetch, "__asgishift_blocking__")
        assert type(io.__loader__).__name__ == "SourceFileLoader"
        assert io.__spec__.loader is io.__loader__


def test_a_package_that_is_not_installed_is_still_reported_at_install() -> None:
    with BlockingDetector([], extra_blocking=["no_such_pkg_s15.fetch"]) as detector:
        assert "not installed" in detector.unpatchable["no_such_pkg_s15.fetch"]


#: Modules of ``asgishift audit``'s analysis (the AST walker, file discovery) and what
#: they import, none of which declares a rule.
_ANALYSIS_MODULES = (
    "asgishift.audit._walk",
    "asgishift.audit._walk_names",
    "asgishift.audit._closure",
    "asgishift.audit._discover",
    "asgishift.audit.engine",
    "pathspec",
)


def test_install_reads_the_rules_without_the_audit_analysis() -> None:
    """The detector reads the ``ASH1xx`` rules' ``calls`` from the catalogue, which
    needs the rule declarations only. Before, loading the catalogue imported the audit's
    AST walker and file discovery as well (pathspec included): about 60 modules more."""
    code = (
        "import sys; from asgishift.runtime import BlockingDetector;"
        "BlockingDetector().install();"
        f"print(sorted(set({_ANALYSIS_MODULES!r}) & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
