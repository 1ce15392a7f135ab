"""``asgishift audit``: a static analyser for blocking calls reachable from async code.

The public surface::

    from pathlib import Path
    from asgishift.audit import AuditConfig, audit_paths

    result = audit_paths([Path("src")], root=Path("."), config=AuditConfig())
    for finding in result.findings:
        print(finding.path, finding.line, finding.code)

The data model (:class:`AuditConfig`, :class:`AuditResult`, :class:`Finding`,
:class:`Hop`, :class:`FileError`, :class:`Rule`, :class:`Severity`,
:class:`FixKind`) lives in :mod:`asgishift.audit._model`, the engine in
:mod:`asgishift.audit.engine` and the rule catalogue in
:mod:`asgishift.audit.rules`. The engine and the catalogue load on first use,
so ``import asgishift.audit`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from asgishift.audit._model import (
    AuditConfig,
    AuditResult,
    FileError,
    Finding,
    FixKind,
    Hop,
    Rule,
    Severity,
)

if TYPE_CHECKING:
    from asgishift.audit.engine import audit_paths, noqa_codes
    from asgishift.audit.rules import all_rules, get_rule

_LAZY = {
    "audit_paths": "asgishift.audit.engine",
    "noqa_codes": "asgishift.audit.engine",
    "all_rules": "asgishift.audit.rules",
    "get_rule": "asgishift.audit.rules",
}


def __getattr__(name: str) -> Any:
    """Load the engine or the catalogue on first access of one of their names (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'asgishift.audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuditConfig",
    "AuditResult",
    "FileError",
    "Finding",
    "FixKind",
    "Hop",
    "Rule",
    "Severity",
    "all_rules",
    "audit_paths",
    "get_rule",
    "noqa_codes",
]
