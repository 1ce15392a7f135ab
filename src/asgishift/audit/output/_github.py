"""GitHub Actions annotations: one workflow command per finding.

A workflow step running ``asgishift audit --format github`` makes each finding an
annotation on the pull request's diff::

    ::error file=shop/views.py,line=14,col=5,endLine=14,endColumn=18,title=ASH101 blo...
    ...cking-sleep::Blocking call time.sleep() stops the event loop; ...

(one line in the real output)

Escaping follows GitHub's workflow-command rules (the ``@actions/core`` toolkit's
``escapeData``/``escapeProperty``): in the message ``%``, ``\\r`` and ``\\n``
become ``%25``, ``%0D`` and ``%0A``; property values (file, title) also escape
``:`` and ``,`` as ``%3A`` and ``%2C``, because those delimit the properties.
A chain is appended to the message on extra lines (escaped newlines render as
line breaks in the annotation).

GitHub resolves ``file=`` against the checkout (``$GITHUB_WORKSPACE``), which may
differ from the audit's project root in a monorepo, so paths are rewritten
relative to the workspace (or the current directory outside Actions) when the
root lies inside it, in ``file=`` and in the chain alike. Files that could not be
read or parsed become ``::warning`` annotations, files whose analysis raised (a bug
in asgishift, exit status 2) ``::error`` annotations. The last line is the
plain-text summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from asgishift.audit._model import Severity
from asgishift.audit.output import Report, call_text, message
from asgishift.audit.output._text import arrow_for, summary_line

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(value: str) -> str:
    """Escape a workflow-command message (the part after ``::``).

    :param value: any text.
    :return: ``value`` with ``%``, CR and LF percent-encoded (``%`` first, so the
        encoding itself is not re-encoded).
    """
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow-command property value (``file=``, ``title=``).

    :param value: any text.
    :return: :func:`escape_data` of ``value`` with ``:`` and ``,`` also encoded.
    """
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, properties: dict[str, str | int], text: str) -> str:
    """Build one workflow command line, e.g. ``::error file=a.py,line=3::text``.

    :param name: ``error``, ``warning`` or ``notice``.
    :param properties: property name to value, in output order; values are escaped.
    :param text: the message; escaped.
    """
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name} {props}::{escape_data(text)}" if props else f"::{name}::{escape_data(text)}"


def workspace_prefix(root: str, workspace: str | None) -> str | None:
    """Return what to put before a path relative to ``root`` to make it relative to ``workspace``.

    :param root: the absolute project root.
    :param workspace: ``$GITHUB_WORKSPACE`` (or the current directory), or ``None``.
    :return: ``""`` when ``root`` is the workspace, ``"services/api/"`` when it lies
        inside it, ``None`` when it does not (or there is no workspace).
    """
    if workspace is None:
        return None
    try:
        inside = Path(root).relative_to(Path(workspace).resolve()).as_posix()
    except ValueError:
        return None
    return "" if inside == "." else f"{inside}/"


def workspace_path(root: str, path: str, workspace: str | None) -> str:
    """Return ``path`` (relative to ``root``) relative to the GitHub workspace.

    :param root: the absolute project root.
    :param path: a finding path relative to ``root`` (POSIX).
    :param workspace: ``$GITHUB_WORKSPACE`` or the current directory; ``None``
        keeps ``path``.
    :return: a POSIX path relative to ``workspace`` when the file lies inside it,
        otherwise ``path`` unchanged.
    """
    prefix = workspace_prefix(root, workspace)
    return path if prefix is None else prefix + path


def render(report: Report, stream: TextIO) -> None:
    """Write one workflow command per finding and per unaudited file, then the summary.

    :param report: the run.
    :param stream: standard output of the workflow step (GitHub reads commands there).
    """
    workspace = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    arrow = arrow_for(stream)
    for finding in report.findings:
        rule = report.rule(finding.code)
        text = message(rule, finding)
        if finding.chain:
            hops = [
                f"{workspace_path(report.root, h.path, workspace)}:{h.line} in {h.function} "
                f"{arrow} {call_text(h.callee)}"
                for h in finding.chain
            ]
            text += "\nvia " + "\n    ".join(hops)
        properties: dict[str, str | int] = {
            "file": workspace_path(report.root, finding.path, workspace),
            "line": finding.line,
            "col": finding.col,
        }
        if finding.end_line >= finding.line:
            properties["endLine"] = finding.end_line
            if finding.end_col > 0:
                properties["endColumn"] = finding.end_col
        properties["title"] = f"{finding.code} {rule.name}"
        stream.write(command(_COMMAND[rule.severity], properties, text) + "\n")
    for error in report.errors:
        properties = {"file": workspace_path(report.root, error.path, workspace)}
        if error.line:
            properties["line"] = error.line
        if error.internal:  # a bug in asgishift, which fails the job (exit status 2)
            properties["title"] = "asgishift failed on this file"
            stream.write(command("error", properties, error.message) + "\n")
        else:
            properties["title"] = "asgishift could not audit this file"
            stream.write(command("warning", properties, error.message) + "\n")
    shown = "see the annotations above" if any(e.internal for e in report.errors) else None
    stream.write(summary_line(report, errors_shown=shown or "see the warnings above") + "\n")


__all__ = [
    "command",
    "escape_data",
    "escape_property",
    "render",
    "workspace_path",
    "workspace_prefix",
]
