"""Audit engine entry point (contract stub; the real engine replaces this)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from asgishift.audit._model import AuditConfig, AuditResult


def audit_paths(
    paths: Sequence[Path],
    *,
    root: Path,
    config: AuditConfig,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit the Python files under ``paths`` (stub: finds nothing yet)."""
    return AuditResult(findings=[], errors=[], files_scanned=0, root=root.resolve().as_posix())


__all__ = ["audit_paths"]
