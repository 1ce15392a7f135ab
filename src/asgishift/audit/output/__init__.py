"""Render an audit run as text, JSON, SARIF 2.1.0 or GitHub Actions annotations.

Every format reads one :class:`Report` (the run's findings plus everything a
format needs to describe them) and writes to a text stream. The formats import
nothing heavy at module level, so ``asgishift audit --format github`` never
imports :mod:`rich`.

- ``text`` (``_text``): for people; colour only on a terminal.
- ``json`` (``_json``): for scripts; the schema is documented there.
- ``sarif`` (``_sarif``): SARIF 2.1.0 for GitHub code scanning and IDEs.
- ``github`` (``_github``): workflow commands that annotate the diff in GitHub Actions.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from asgishift.audit._model import FileError, Finding, Rule, Severity

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "github")


@dataclass
class Report:
    """One audit run, ready to render.

    :param findings: the findings to report (after ``--baseline``), sorted by
        ``(path, line, col, code)``.
    :param fingerprints: the line-independent fingerprint of each finding, same
        order (:func:`asgishift.audit._baseline.fingerprints`, computed before the
        baseline was applied so they match the baseline file).
    :param errors: files that could not be audited.
    :param files_scanned: number of Python files read.
    :param root: absolute project root; finding paths are relative to it.
    :param rules: every rule the run could report, by code, in catalogue order.
    :param baseline_matched: findings suppressed by ``--baseline``, or ``None``
        when no baseline was given.
    :param baseline_stale: baseline entries that matched nothing (fixed code).
    :param tool_version: the asgishift version that produced the report.
    :param files_parsed: files parsed, when fewer than ``files_scanned``
        (``--reachable-only``); ``-1`` when not known.
    """

    findings: list[Finding]
    fingerprints: list[str]
    errors: list[FileError]
    files_scanned: int
    root: str
    rules: dict[str, Rule]
    baseline_matched: int | None = None
    baseline_stale: int = 0
    tool_version: str = field(default="0.0.0")
    files_parsed: int = -1

    def rule(self, code: str) -> Rule:
        """Return the rule for ``code``, or a placeholder for a code the catalogue lacks.

        The engine may report user-declared codes (``extra-blocking``) that have no
        catalogue entry; formats still need a name and a message for them.

        :param code: a finding's code.
        """
        known = self.rules.get(code)
        if known is not None:
            return known
        return Rule(
            code=code,
            name=f"rule-{code.lower()}",
            summary=f"Finding {code}.",
            message="",
            why="",
            example="",
            fixed="",
        )

    def counts(self) -> Counter[str]:
        """Count the findings per rule code."""
        return Counter(f.code for f in self.findings)


#: A callee that is a (dotted) name, to be shown with call parentheses.
_DOTTED = re.compile(r"[\w.]+")


class _Missing(dict[str, str]):
    """Format mapping that leaves an unknown ``{placeholder}`` visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def message(rule: Rule, finding: Finding) -> str:
    """Format the finding's message from its rule's template.

    :param rule: the rule that fired.
    :param finding: supplies the template arguments.
    :return: the message; a placeholder the finding lacks stays as ``{name}``, and
        a malformed template is returned unformatted rather than crashing the report.
        A rule without a template (a code outside the catalogue) gets its
        arguments listed, or its summary.
    """
    if not rule.message:
        return ", ".join(f"{k}={v}" for k, v in finding.args.items()) or rule.summary
    try:
        return string.Formatter().vformat(rule.message, (), _Missing(finding.args))
    except (ValueError, IndexError, AttributeError):
        return rule.message


def call_text(callee: str) -> str:
    """Show a chain hop's callee as a call: ``time.sleep`` becomes ``time.sleep()``.

    A hazard that is not a call by name is already worded for people (``list()``,
    ``iteration (for ... in queryset)``, ``slicing with a step``) and is shown as it is.

    :param callee: :attr:`~asgishift.audit._model.Hop.callee`.
    """
    return f"{callee}()" if _DOTTED.fullmatch(callee) else callee


def sarif_level(severity: Severity) -> str:
    """Map a :class:`Severity` onto SARIF ``level`` (SARIF 2.1.0 §3.27.10)."""
    return severity.value


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """Return ``"1 finding"`` / ``"2 findings"``; ``nouns`` overrides the ``s`` plural."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def summary_counts(counts: Mapping[str, int]) -> str:
    """Return ``"2 ASH101, 1 ASH201"``, sorted by code."""
    return ", ".join(f"{n} {code}" for code, n in sorted(counts.items()))


Renderer = Callable[[Report, TextIO], None]


def get_renderer(fmt: str, *, color: bool | None = None) -> Renderer:
    """Return the function that writes ``fmt``.

    :param fmt: one of :data:`FORMATS`.
    :param color: text format only: ``None`` detects a terminal (honouring
        ``NO_COLOR`` and ``FORCE_COLOR``), ``False`` never colours.
    :raise ValueError: for an unknown format.
    """
    if fmt == "text":
        from asgishift.audit.output._text import render as render_text

        return lambda report, stream: render_text(report, stream, color=color)
    if fmt == "json":
        from asgishift.audit.output._json import render as render_json

        return render_json
    if fmt == "sarif":
        from asgishift.audit.output._sarif import render as render_sarif

        return render_sarif
    if fmt == "github":
        from asgishift.audit.output._github import render as render_github

        return render_github
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def rules_by_code(rules: Iterable[Rule]) -> dict[str, Rule]:
    """Index rules by code, keeping their order."""
    return {rule.code: rule for rule in rules}


__all__ = [
    "FORMATS",
    "Renderer",
    "Report",
    "call_text",
    "get_renderer",
    "message",
    "plural",
    "rules_by_code",
    "sarif_level",
    "summary_counts",
]
