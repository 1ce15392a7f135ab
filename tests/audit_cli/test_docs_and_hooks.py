"""Generated docs stay in sync with the catalogue and the parser; the pre-commit hook is sane."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from audit_cli_helpers import RULES, SLEEP

from asgishift.audit import _ruledoc, docgen
from asgishift.audit import rules as catalogue
from asgishift.audit._cli import build_parser
from asgishift.cli import build_parser as build_top_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "audit"


@pytest.mark.parametrize("page", ["rules.md", "cli.md"])
def test_committed_page_is_up_to_date(page: str) -> None:
    expected = docgen.generated_pages(DOCS)[DOCS / page]
    current = (DOCS / page).read_text(encoding="utf-8")
    assert current == expected, (
        f"docs/audit/{page} is stale; regenerate it with `python -m asgishift.audit.docgen`"
    )


def test_check_mode_reports_a_stale_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert docgen.main(["--docs-dir", str(tmp_path)]) == 0
    assert docgen.main(["--docs-dir", str(tmp_path), "--check"]) == 0
    (tmp_path / "rules.md").write_text("old\n", encoding="utf-8")
    assert docgen.main(["--docs-dir", str(tmp_path), "--check"]) == 1
    assert "rules.md is stale" in capsys.readouterr().err


def test_rules_page_has_a_section_per_catalogue_rule() -> None:
    page = (DOCS / "rules.md").read_text(encoding="utf-8")
    for rule in catalogue.all_rules():
        assert f"## {rule.code}: `{rule.name}`" in page
        assert f"(#{rule.code.lower()}-{rule.name})" in page


def test_rule_markdown_sections() -> None:
    text = _ruledoc.rule_markdown(SLEEP)
    assert text.startswith("# ASH101: `blocking-sleep`\n")
    assert "**What it does.** A blocking sleep runs in async code." in text
    assert "**Matches calls to:** `time.sleep`." in text
    assert "**Example:**\n\n```python\nimport time\n" in text
    assert "**Use instead:**\n\n```python\nimport asyncio\n" in text


def test_rules_page_escapes_table_cells() -> None:
    rule = RULES[0].__class__(**{**RULES[0].__dict__, "summary": "a | b"})
    assert "| a \\| b |" in docgen.rules_page([rule])


def test_cli_page_lists_every_flag() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        for option in action.option_strings:
            assert f"`{option}" in page, option


def test_standalone_and_subcommand_parsers_agree() -> None:
    # The docs read the stand-alone parser; users run the sub-command. Same flags.
    top = build_top_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "audit"
    ]
    assert [a.option_strings for a in sub._actions] == [
        a.option_strings for a in build_parser()._actions
    ]


def test_pre_commit_hook() -> None:
    yaml = pytest.importorskip("yaml")
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "asgishift-audit"
    assert hook["language"] == "python"
    assert hook["types"] == ["python"]
    assert hook["pass_filenames"] is False
    program, command = hook["entry"].split()
    assert program == "asgishift"
    args = build_top_parser().parse_args([command, *hook["args"]])
    assert args.paths == [Path(".")]
    assert callable(args.handler)


def test_the_documented_exclude_example_skips_migrations_of_every_app(tmp_path: Path) -> None:
    import re

    from asgishift.audit._config import load_config
    from asgishift.audit.engine import audit_paths

    text = (DOCS / "index.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[tool\.asgishift\.audit\]\n.*?)```", text, re.S)
    assert block is not None
    (tmp_path / "pyproject.toml").write_text(block.group(1), encoding="utf-8")
    blocking = "import time\n\n\nasync def f():\n    time.sleep(1)\n"
    for rel in ("migrations/0001_initial.py", "shop/migrations/0001_initial.py", "shop/views.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(blocking, encoding="utf-8")
    loaded = load_config([tmp_path])
    loaded.config.cache_dir = None
    result = audit_paths([tmp_path], root=loaded.root, config=loaded.config)
    assert [f.path for f in result.findings] == ["shop/views.py"]
