"""``asgishift audit --fix / --diff / --unsafe-fixes`` through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fix_cases import CASES, make_project

from asgishift.audit._ruledoc import rule_markdown
from asgishift.audit.fix import REWRITES, rule_fixes
from asgishift.audit.fix._plan import DIRECT_FIXES
from asgishift.audit.rules import all_rules, get_rule


def _audit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asgishift", "audit", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_diff_prints_the_rewrite_and_writes_nothing(tmp_path: Path) -> None:
    views = make_project(tmp_path, "orm_methods")
    run = _audit(tmp_path, "--diff")
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("--- a/app/views.py\n+++ b/app/views.py\n")
    assert "\n-    book = Book.objects.get(pk=pk)\n" in run.stdout
    assert "\n+    book = await Book.objects.aget(pk=pk)\n" in run.stdout
    assert "Would fix 10 findings in 1 file." in run.stderr
    assert views.read_bytes() == (CASES / "orm_methods_before.py.txt").read_bytes()


def test_fix_writes_and_reports_what_is_left(tmp_path: Path) -> None:
    views = make_project(tmp_path, "orm_methods")
    run = _audit(tmp_path, "--fix")
    assert "Fixed 10 findings in 1 file." in run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("No blocking calls found")
    assert views.read_text("utf-8") == (CASES / "orm_methods_after.py.txt").read_text("utf-8")


def test_unsafe_fixes_are_counted_then_applied_with_the_flag(tmp_path: Path) -> None:
    views = make_project(tmp_path, "time_sleep")
    run = _audit(tmp_path, "--fix")
    assert run.returncode == 1
    assert "Fixed 0 findings in 0 files; 2 skipped as unsafe (apply them with --unsafe-fixes)." in (
        run.stderr
    )
    assert "ASH101" in run.stdout
    run = _audit(tmp_path, "--fix", "--unsafe-fixes")
    assert "Fixed 2 findings in 1 file." in run.stderr
    assert run.returncode == 0, run.stdout
    assert views.read_text("utf-8") == (CASES / "time_sleep_after.py.txt").read_text("utf-8")


def test_a_generator_helper_is_refused_with_its_location(tmp_path: Path) -> None:
    views = make_project(tmp_path, "time_sleep")
    source = (
        "import time\n\n\ndef rows():\n    time.sleep(1)\n    yield 1\n\n\n"
        "async def v():\n    return [x for x in rows()]\n"
    )
    views.write_text(source, encoding="utf-8")
    run = _audit(tmp_path, "--fix", "--unsafe-fixes")
    assert run.returncode == 1, run.stderr
    assert "app/views.py:10:24: app.views.rows(): the helper is a generator function" in (
        run.stderr
    )
    assert "Fixed 0 findings in 0 files; 1 not rewritten: the helper is a generator" in (run.stderr)
    assert views.read_text("utf-8") == source


def test_diff_without_anything_to_fix_exits_0(tmp_path: Path) -> None:
    make_project(tmp_path, "orm_methods")
    (tmp_path / "app" / "views.py").write_text("async def v():\n    return 1\n", "utf-8")
    run = _audit(tmp_path, "--diff")
    assert (run.returncode, run.stdout) == (0, "")


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_fix_field_matches_the_rewrites(rule: object) -> None:
    from asgishift.audit._model import Rule

    assert isinstance(rule, Rule)
    kinds = rule_fixes(rule.code)
    if not kinds:
        assert rule.fix is None
    elif rule.code in DIRECT_FIXES:
        assert rule.fix is REWRITES[DIRECT_FIXES[rule.code]].safety
    else:
        assert rule.fix is REWRITES[kinds[0]].safety


def test_explain_says_whether_a_rule_has_a_fix(tmp_path: Path) -> None:
    run = _audit(tmp_path, "--explain", "ASH202")
    assert run.returncode == 0
    assert "**Automatic fix:** unsafe" in run.stdout
    assert "**Automatic fix:** safe" in rule_markdown(get_rule("ASH201"))
    assert "**Automatic fix:** none" in rule_markdown(get_rule("ASH301"))
