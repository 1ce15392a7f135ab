"""Before/after fixture tests for every ``--fix`` rewrite, on the real engine's findings.

Each case in ``cases/`` is the views module of a small project (models and helpers
beside it); the test audits it, fixes it, and checks that the result is the
hand-reviewed ``*_after.py.txt``, that it compiles, and that it audits clean for
the case's rules.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fix_cases import CASES, FIX_CASES, audit, make_project, touches_views

from asgishift.audit.fix import fix_findings
from asgishift.audit.fix._cli import run_fixes


@pytest.mark.parametrize("case", sorted(FIX_CASES))
def test_fix_turns_before_into_after(case: str, tmp_path: Path) -> None:
    codes, unsafe = FIX_CASES[case]
    views = make_project(tmp_path, case)
    before = audit(tmp_path)
    assert touches_views(before, codes), "the case must give the audit something to fix"

    err = io.StringIO()
    changed, after = run_fixes(
        before, unsafe=unsafe, write=True, reaudit=lambda: audit(tmp_path), err=err
    )

    assert changed == 1
    expected = (CASES / f"{case}_after.py.txt").read_text(encoding="utf-8")
    assert views.read_text(encoding="utf-8") == expected
    compile(expected, str(views), "exec")
    assert touches_views(after, codes) == []
    assert touches_views(audit(tmp_path), codes) == []
    assert err.getvalue().startswith("Fixed ")


@pytest.mark.parametrize("case", sorted(FIX_CASES))
def test_fixing_the_fixed_code_changes_nothing(case: str, tmp_path: Path) -> None:
    views = make_project(tmp_path, case)
    views.write_bytes((CASES / f"{case}_after.py.txt").read_bytes())
    report = fix_findings(audit(tmp_path).findings, tmp_path, unsafe=True)
    assert report.changes == []
    assert views.read_bytes() == (CASES / f"{case}_after.py.txt").read_bytes()


@pytest.mark.parametrize("case", sorted(c for c, (_, unsafe) in FIX_CASES.items() if unsafe))
def test_unsafe_fixes_wait_for_the_flag(case: str, tmp_path: Path) -> None:
    codes, _ = FIX_CASES[case]
    views = make_project(tmp_path, case)
    result = audit(tmp_path)
    report = fix_findings(result.findings, tmp_path, unsafe=False)
    assert report.changes == []
    assert views.read_bytes() == (CASES / f"{case}_before.py.txt").read_bytes()
    skipped = len(touches_views(result, codes))
    assert f"{skipped} skipped as unsafe" in report.summary(written=True)
