"""Meta-tests of the rule catalogue: every rule is well formed and its example is honest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig, Rule
from asgishift.audit.engine import audit_paths
from asgishift.audit.rules import all_rules, calls_index, get_rule

RULES = all_rules()
# ASH199's example calls a helper the user declared blocking in the config.
CONFIG = AuditConfig(cache_dir=None, extra_blocking=["legacy.slow_lookup"])


def _codes_for(source: str, tmp_path: Path) -> list[str]:
    """Audit ``source`` as a one-file project and return the codes found."""
    (tmp_path / "example.py").write_text(source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    assert result.errors == []
    return [f.code for f in result.findings]


@pytest.mark.parametrize("rule", [pytest.param(r, id=r.code) for r in RULES])
def test_example_fires(rule: Rule, tmp_path: Path) -> None:
    assert rule.code in _codes_for(rule.example, tmp_path)


@pytest.mark.parametrize("rule", [pytest.param(r, id=r.code) for r in RULES])
def test_fixed_does_not_fire(rule: Rule, tmp_path: Path) -> None:
    assert rule.code not in _codes_for(rule.fixed, tmp_path)


@pytest.mark.parametrize("rule", [pytest.param(r, id=r.code) for r in RULES])
def test_message_formats_with_the_findings_args(rule: Rule, tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(rule.example, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    finding = next(f for f in result.findings if f.code == rule.code)
    text = rule.message.format(**finding.args)
    assert "{" not in text
    assert finding.args["call"] in text


def test_codes_are_unique_well_formed_and_sorted() -> None:
    codes = [r.code for r in RULES]
    assert codes == sorted(set(codes))
    assert all(re.fullmatch(r"ASH\d{3}", c) for c in codes)


def test_names_are_unique_kebab_case() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)+", n) for n in names)


@pytest.mark.parametrize("rule", [pytest.param(r, id=r.code) for r in RULES])
def test_rule_text_is_complete(rule: Rule) -> None:
    assert rule.summary.endswith(".")
    assert rule.why
    assert rule.example != rule.fixed
    assert rule.family in {"ASH1", "ASH2", "ASH3", "ASH4"}


def test_blocking_calls_are_dotted_and_owned_once() -> None:
    index = calls_index()
    assert index["time.sleep"] == "ASH101"
    assert index["requests.Session.get"] == "ASH102"
    assert index["builtins.open"] == "ASH105"
    owners: dict[str, str] = {}
    for rule in RULES:
        for name in rule.calls:
            assert re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", name), name
            assert owners.setdefault(name, rule.code) == rule.code, name


def test_get_rule_is_case_insensitive() -> None:
    assert get_rule("ash101") is get_rule("ASH101")


def test_get_rule_unknown_code_lists_known_codes() -> None:
    with pytest.raises(KeyError, match=r"unknown rule code 'ASH999'; known codes: ASH101"):
        get_rule("ASH999")


def test_fix_kind_is_declared_and_documented() -> None:
    from asgishift.audit._model import FixKind
    from asgishift.audit._ruledoc import rule_markdown, rule_text

    assert get_rule("ASH201").fix is FixKind.SAFE
    assert get_rule("ASH101").fix is FixKind.UNSAFE
    assert get_rule("ASH305").fix is None
    assert "--unsafe-fixes" in rule_markdown(get_rule("ASH101"))
    assert "Automatic fix: safe" in rule_text(get_rule("ASH201"))
    assert "none; fix it by hand" in rule_markdown(get_rule("ASH305"))
