"""The SARIF 2.1.0 report, for GitHub code scanning and SARIF-aware IDEs.

Follows the OASIS SARIF 2.1.0 standard (errata 01) and what GitHub code scanning
reads from it:

- every catalogue rule is a ``reportingDescriptor`` in ``tool.driver.rules``
  (§3.49) with ``shortDescription`` (the summary), ``fullDescription`` (why),
  ``help.text``/``help.markdown`` (why, example, fix) and
  ``defaultConfiguration.level``; results point at it by ``ruleId`` and
  ``ruleIndex``;
- locations are relative URIs with ``uriBaseId`` ``%SRCROOT%``, and
  ``run.originalUriBaseIds`` maps that to the project root (§3.14.14), so the log
  is portable between machines; under GitHub Actions, to the workspace (the
  repository root), which code scanning resolves the URIs against (see :func:`build`);
- columns count Unicode code points (``run.columnKind``, §3.14.17);
- ``partialFingerprints["asgishift/v2"]`` (§3.27.17) is the same line-independent
  fingerprint as the baseline file, so an alert survives a line moving;
- a call chain becomes a related location for the ``async def`` it starts in
  (linked from the message) and one ``codeFlow`` with one ``threadFlow`` whose locations are
  the hops (§3.36, §3.37), shown by code scanning as "Show paths";
- files that could not be audited are ``toolExecutionNotifications`` of the single
  ``invocation`` (§3.20.21); they do not make ``executionSuccessful`` false,
  because the rest of the project was audited.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from asgishift.audit._baseline import FINGERPRINT_KEY
from asgishift.audit._model import FileError, Finding, Hop, Rule
from asgishift.audit._ruledoc import rule_markdown, rule_text
from asgishift.audit.output import Report, call_text, message, sarif_level
from asgishift.audit.output._github import workspace_prefix

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
INFORMATION_URI = "https://pypi.org/project/asgishift/"


def _uri(path: str) -> str:
    # RFC 3986 relative reference: percent-encode everything but the separators.
    return quote(path, safe="/")


def _physical(path: str, line: int, col: int, end_line: int = 0, end_col: int = 0) -> Any:
    region: dict[str, int] = {}
    if line > 0:
        region["startLine"] = line
        if col > 0:
            region["startColumn"] = col
        if end_line >= line:
            region["endLine"] = end_line
            if end_col > 0 and (end_line > line or end_col > col):
                region["endColumn"] = end_col
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path), "uriBaseId": SRCROOT}}
    if region:
        physical["region"] = region
    return physical


def _descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.why or rule.summary},
        "help": {"text": rule_text(rule), "markdown": rule_markdown(rule)},
        "defaultConfiguration": {"level": sarif_level(rule.severity)},
        "properties": {"tags": ["asgi", "async", "performance", rule.family]},
    }


def _hop_location(hop: Hop) -> dict[str, Any]:
    return {
        "location": {
            "physicalLocation": _physical(hop.path, hop.line, hop.col),
            "message": {"text": f"{hop.function} calls {call_text(hop.callee)}"},
        }
    }


def _result(finding: Finding, fingerprint: str, rule: Rule, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": sarif_level(rule.severity),
        "message": {"text": message(rule, finding)},
        "locations": [
            {
                "physicalLocation": _physical(
                    finding.path, finding.line, finding.col, finding.end_line, finding.end_col
                )
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
    }
    if index >= 0:
        result["ruleIndex"] = index
    if finding.chain:
        entry = finding.chain[0]
        # Alert lists show only the message: name the async entry point there too,
        # as an embedded link to a related location (SARIF §3.11.6).
        result["message"]["text"] += f" (reached from async function [{entry.function}](1))"
        result["relatedLocations"] = [
            {
                "id": 1,
                "physicalLocation": _physical(entry.path, entry.line, entry.col),
                "message": {"text": f"async function {entry.function}"},
            }
        ]
        result["codeFlows"] = [
            {
                "message": {"text": f"Reached from async function {entry.function}"},
                "threadFlows": [{"locations": [_hop_location(hop) for hop in finding.chain]}],
            }
        ]
    return result


def _rebase(
    findings: Sequence[Finding], errors: Sequence[FileError], prefix: str
) -> tuple[list[Finding], list[FileError]]:
    """Return ``findings`` and ``errors`` with ``prefix`` put before every path."""

    def hop(h: Hop) -> Hop:
        return dataclasses.replace(h, path=prefix + h.path)

    return (
        [
            dataclasses.replace(f, path=prefix + f.path, chain=tuple(map(hop, f.chain)))
            for f in findings
        ],
        [dataclasses.replace(e, path=prefix + e.path) for e in errors],
    )


def build(report: Report) -> dict[str, Any]:
    """Build the SARIF log (as plain dicts and lists) for ``report``.

    Under GitHub Actions (``$GITHUB_WORKSPACE`` set, the project root inside
    it) URIs are relative to the workspace, and ``%SRCROOT%`` is the workspace:
    code scanning resolves them against the repository root and ignores
    ``uriBaseId``, so in a monorepo root-relative URIs would name the wrong files.

    :param report: the run.
    :return: a SARIF 2.1.0 ``sarifLog`` object with one run.
    """
    workspace = os.environ.get("GITHUB_WORKSPACE")
    prefix = workspace_prefix(report.root, workspace)
    if workspace is None or prefix is None:
        base = report.root
        findings, errors = report.findings, report.errors
    else:
        base = str(Path(workspace).resolve())
        findings, errors = _rebase(report.findings, report.errors, prefix)
    descriptors = [_descriptor(rule) for rule in report.rules.values()]
    index = {rule.code: i for i, rule in enumerate(report.rules.values())}
    # A code outside the catalogue (user-declared) still gets a descriptor, so
    # every ruleId resolves.
    for finding in findings:
        if finding.code not in index:
            index[finding.code] = len(descriptors)
            descriptors.append(_descriptor(report.rule(finding.code)))
    results = [
        _result(finding, fingerprint, report.rule(finding.code), index[finding.code])
        for finding, fingerprint in zip(findings, report.fingerprints, strict=True)
    ]
    # A file that could not be read or parsed leaves the run successful (the
    # rest was audited); one whose analysis raised is a tool failure (SARIF
    # 2.1.0 §3.20.14 executionSuccessful, §3.58.6 level "error").
    notifications = [
        {
            "level": "error" if error.internal else "warning",
            "message": {"text": f"Could not audit {error.path}: {error.message}"},
            "descriptor": {"id": "internal-error" if error.internal else "cannot-audit"},
            "locations": [{"physicalLocation": _physical(error.path, error.line, 0)}],
        }
        for error in errors
    ]
    invocation: dict[str, Any] = {
        "executionSuccessful": not any(error.internal for error in errors)
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    properties: dict[str, Any] = {"filesScanned": report.files_scanned}
    if report.baseline_matched is not None:
        properties["baseline"] = {
            "matched": report.baseline_matched,
            "stale": report.baseline_stale,
        }
    invocation["properties"] = properties
    root_uri = Path(base).as_uri().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "asgishift",
                        "semanticVersion": report.tool_version,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                        "notifications": [
                            {
                                "id": "cannot-audit",
                                "shortDescription": {
                                    "text": "A file could not be read or parsed; it was skipped."
                                },
                            },
                            {
                                "id": "internal-error",
                                "shortDescription": {
                                    "text": "asgishift's analysis of a file raised (a bug in "
                                    "asgishift); the file was skipped."
                                },
                            },
                        ],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
                "columnKind": "unicodeCodePoints",
                "invocations": [invocation],
                "results": results,
            }
        ],
    }


def render(report: Report, stream: TextIO) -> None:
    """Write the SARIF log to ``stream`` as indented JSON ending with a newline.

    Non-ASCII characters are ``\\u`` escapes (see :func:`._json.render`).

    :param report: the run.
    :param stream: where to write.
    """
    json.dump(build(report), stream, indent=2, ensure_ascii=True)
    stream.write("\n")


__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "SRCROOT", "build", "render"]
