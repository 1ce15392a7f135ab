"""Render one rule's description: ``--explain``, SARIF help and the rules page.

Each rule is declared once (:class:`asgishift.audit._model.Rule`); this module
turns it into the Markdown shown by ``asgishift audit --explain CODE`` and in
``docs/audit/rules.md`` (:mod:`asgishift.audit.docgen`), and into the SARIF
``help.markdown``/``help.text`` of the rule. It imports only the data model.
"""

from __future__ import annotations

import textwrap

from asgishift.audit._model import FixKind, Rule


def _fence(code: str) -> str:
    return f"```python\n{code.strip(chr(10))}\n```"


def rule_markdown(rule: Rule, *, heading: str = "#") -> str:
    """Return the Markdown description of ``rule``, in ruff's rule-page shape.

    :param rule: the rule.
    :param heading: the Markdown heading marker of the rule's title (``"#"`` for a
        page of its own, ``"##"`` inside the rule reference).
    :return: title, summary, "Why is this bad?", "Example" and "Use instead" blocks,
        without a trailing newline.
    """
    parts = [
        f"{heading} {rule.code}: `{rule.name}`",
        f"*Default severity: {rule.severity.value}. Added in {rule.since}.*",
        f"**What it does.** {rule.summary}",
    ]
    if rule.calls:
        parts.append("**Matches calls to:** " + ", ".join(f"`{c}`" for c in rule.calls) + ".")
    if rule.why:
        parts.append(f"**Why is this bad?** {rule.why.strip()}")
    if rule.example:
        parts.append("**Example:**\n\n" + _fence(rule.example))
    if rule.fixed:
        parts.append("**Use instead:**\n\n" + _fence(rule.fixed))
    parts.append(f"**Automatic fix:** {fix_note(rule)}")
    parts.append(f"Suppress one occurrence with `# noqa: {rule.code}`.")
    return "\n\n".join(parts)


def fix_note(rule: Rule) -> str:
    """Return one sentence saying whether ``asgishift audit --fix`` rewrites ``rule``.

    :param rule: the rule; reads :attr:`Rule.fix`.
    """
    if rule.fix is FixKind.SAFE:
        return "safe; `asgishift audit --fix` applies it."
    if rule.fix is FixKind.UNSAFE:
        return (
            "unsafe (it may change behaviour); `asgishift audit --fix --unsafe-fixes` applies it."
        )
    return "none; fix it by hand."


def rule_text(rule: Rule) -> str:
    """Return a plain-text description of ``rule`` (SARIF ``help.text``).

    :param rule: the rule.
    :return: summary, why, and the indented example and fix, without Markdown.
    """
    parts = [f"{rule.code} ({rule.name}): {rule.summary}", f"Automatic fix: {fix_note(rule)}"]
    if rule.why:
        parts.append(rule.why.strip())
    if rule.example:
        parts.append("Example:\n" + textwrap.indent(rule.example.strip("\n"), "    "))
    if rule.fixed:
        parts.append("Use instead:\n" + textwrap.indent(rule.fixed.strip("\n"), "    "))
    return "\n\n".join(parts)


__all__ = ["fix_note", "rule_markdown", "rule_text"]
