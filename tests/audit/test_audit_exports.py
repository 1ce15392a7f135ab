"""The public surface of ``asgishift.audit``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import asgishift.audit as audit


def test_all_is_sorted_and_complete() -> None:
    assert audit.__all__ == sorted(audit.__all__)
    assert set(audit.__all__) == {
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
    }


def test_every_public_name_resolves_to_its_defining_module() -> None:
    from asgishift.audit import _model, engine, rules

    homes = {"audit_paths": engine, "noqa_codes": engine, "all_rules": rules, "get_rule": rules}
    for name in audit.__all__:
        assert getattr(audit, name) is getattr(homes.get(name, _model), name), name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        audit.no_such_name  # noqa: B018


def test_import_is_cheap() -> None:
    code = (
        "import sys, asgishift.audit\n"
        "heavy = [m for m in ('asgishift.audit.engine', 'asgishift.audit.rules', 'pathspec')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
