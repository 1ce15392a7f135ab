"""The JSON report: one object with a ``version`` field, for scripts.

Schema, version 1 (fields are only ever added within a version; a removal or a
change of meaning bumps ``version``)::

    {
      "version": 1,
      "tool": {"name": "asgishift", "version": "0.1.0"},
      "root": "/abs/project",            # finding paths are relative to it
      "files_scanned": 12,
      "files_parsed": 12,
      "findings": [
        {
          "code": "ASH101",
          "name": "blocking-sleep",
          "severity": "error",            # "error" | "warning" | "note"
          "message": "Blocking call time.sleep() ...",
          "path": "shop/views.py",        # POSIX, relative to root
          "line": 14, "col": 5,           # 1-based
          "end_line": 14, "end_col": 18,  # end_col is just past the end
          "snippet": "time.sleep(1)",
          "fingerprint": "9f0c...",       # 32 hex chars, stable across line moves
          "chain": [                      # async entry point first; [] when direct
            {"path": "shop/views.py", "line": 9, "col": 5,
             "function": "shop.views.checkout", "callee": "shop.payments.charge"}
          ]
        }
      ],
      "errors": [                         # files that could not be audited
        {"path": "broken.py", "line": 3, "message": "..."}
      ],
      "summary": {
        "findings": 1,
        "by_code": {"ASH101": 1},
        "files_with_findings": 1,
        "errors": 0,
        "baseline": null                  # or {"matched": 4, "stale": 1}
      }
    }

Findings keep the report order: sorted by path, line, column, code. The same
contract as a JSON Schema (draft 2020-12) ships with the package as
``asgishift/audit/output/report-v1.schema.json`` (:func:`schema`).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from asgishift.audit.output import Report, message

JSON_VERSION = 1
SCHEMA_FILE = f"report-v{JSON_VERSION}.schema.json"


def schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of this version of the report.

    :return: the parsed schema, for validating reports with :mod:`jsonschema`.
    """
    from importlib import resources

    text = resources.files("asgishift.audit.output").joinpath(SCHEMA_FILE).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def build(report: Report) -> dict[str, Any]:
    """Build the JSON document (as plain dicts and lists) for ``report``.

    :param report: the run.
    :return: an object matching the version-1 schema above.
    """
    findings = []
    for finding, fingerprint in zip(report.findings, report.fingerprints, strict=True):
        rule = report.rule(finding.code)
        findings.append(
            {
                "code": finding.code,
                "name": rule.name,
                "severity": rule.severity.value,
                "message": message(rule, finding),
                "path": finding.path,
                "line": finding.line,
                "col": finding.col,
                "end_line": finding.end_line,
                "end_col": finding.end_col,
                "snippet": finding.snippet,
                "fingerprint": fingerprint,
                "chain": [
                    {
                        "path": hop.path,
                        "line": hop.line,
                        "col": hop.col,
                        "function": hop.function,
                        "callee": hop.callee,
                    }
                    for hop in finding.chain
                ],
            }
        )
    baseline = (
        None
        if report.baseline_matched is None
        else {"matched": report.baseline_matched, "stale": report.baseline_stale}
    )
    document: dict[str, Any] = {
        "version": JSON_VERSION,
        "tool": {"name": "asgishift", "version": report.tool_version},
        "root": report.root,
        "files_scanned": report.files_scanned,
    }
    if report.files_parsed >= 0:
        document["files_parsed"] = report.files_parsed
    return document | {
        "findings": findings,
        "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in report.errors],
        "summary": {
            "findings": len(report.findings),
            "by_code": dict(sorted(report.counts().items())),
            "files_with_findings": len({f.path for f in report.findings}),
            "errors": len(report.errors),
            "baseline": baseline,
        },
    }


def render(report: Report, stream: TextIO) -> None:
    """Write the JSON report to ``stream``, indented, ending with a newline.

    Non-ASCII characters are ``\\u`` escapes, so the report survives a console whose
    encoding is not UTF-8 (Windows runners) and parses to the same strings.

    :param report: the run.
    :param stream: where to write.
    """
    json.dump(build(report), stream, indent=2, ensure_ascii=True)
    stream.write("\n")


__all__ = ["JSON_VERSION", "SCHEMA_FILE", "build", "render", "schema"]
