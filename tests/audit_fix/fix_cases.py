"""Shared helpers for the ``--fix`` tests: build a small Django-shaped project from a case."""

from __future__ import annotations

from pathlib import Path

from asgishift.audit import engine
from asgishift.audit._model import AuditConfig, AuditResult

CASES = Path(__file__).parent / "cases"

#: case name -> (rule codes the case's findings carry, needs --unsafe-fixes)
FIX_CASES: dict[str, tuple[frozenset[str], bool]] = {
    "orm_methods": (frozenset({"ASH201"}), False),
    "model_save": (frozenset({"ASH204"}), False),
    "queryset_for": (frozenset({"ASH202"}), True),
    "time_sleep": (frozenset({"ASH101"}), True),
    "sync_helper": (frozenset({"ASH101", "ASH102", "ASH201"}), True),
}

VIEWS = "app/views.py"


def make_project(root: Path, case: str) -> Path:
    """Write ``root/app/{models,helpers,views}.py`` with ``case``'s *before* as the views.

    :return: the views file.
    """
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    app = root / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    for name in ("models", "helpers"):
        text = (CASES / f"{name}.py.txt").read_text(encoding="utf-8")
        (app / f"{name}.py").write_text(text, encoding="utf-8")
    views = app / "views.py"
    views.write_bytes((CASES / f"{case}_before.py.txt").read_bytes())
    return views


def audit(root: Path) -> AuditResult:
    """Audit ``root`` (no cache) with the real engine."""
    return engine.audit_paths([root], root=root, config=AuditConfig(cache_dir=None, jobs=1))


def touches_views(result: AuditResult, codes: frozenset[str]) -> list[str]:
    """Findings of ``codes`` written in, or reached from, the views file."""
    return [
        f"{f.code} {f.path}:{f.line}"
        for f in result.findings
        if f.code in codes and (f.path == VIEWS or (f.chain and f.chain[0].path == VIEWS))
    ]
