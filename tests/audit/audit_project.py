"""Audit a small project written into a temporary directory (a helper of the rule tests)."""

from __future__ import annotations

from pathlib import Path

from asgishift.audit._model import AuditConfig, Finding
from asgishift.audit.engine import audit_paths

CONFIG = AuditConfig(cache_dir=None)


def audited(tmp_path: Path, files: dict[str, str]) -> list[Finding]:
    """Write ``files`` (relative path -> source) under ``tmp_path``; return every finding.

    :raise AssertionError: when a file could not be audited.
    """
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    assert result.errors == []
    return result.findings


def findings_of(tmp_path: Path, files: dict[str, str], code: str) -> list[Finding]:
    """Write ``files`` under ``tmp_path`` (see :func:`audited`); return ``code``'s findings."""
    return [f for f in audited(tmp_path, files) if f.code == code]
