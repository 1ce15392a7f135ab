"""The human-readable report: findings grouped by file, chains hop by hop, a summary.

Example (colour only when writing to a terminal)::

    shop/views.py
      14:5  ASH101  Blocking call time.sleep() in async function; use asyncio.sleep()
            via shop/views.py:9 in shop.views.checkout → shop.payments.charge()
                shop/payments.py:22 in shop.payments.charge → time.sleep()

    Found 1 finding (1 ASH101) in 1 file; 12 files scanned.

Files that could not be audited are not part of the report: the CLI writes them to
stderr (``path:line: cannot audit: message``) so a pipe of stdout stays clean.
Colour follows :class:`rich.console.Console` detection: on when the stream is a
terminal, off otherwise, ``NO_COLOR`` turns it off and ``FORCE_COLOR`` on.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import TextIO

from asgishift.audit._model import FileError, Severity
from asgishift.audit.output import Report, message, plural, summary_counts

_SEVERITY_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.NOTE: "bold cyan",
}


def arrow_for(stream: TextIO) -> str:
    """Return ``"→"``, or ``"->"`` when ``stream``'s encoding cannot encode it.

    :param stream: the output stream; a cp1252 console (Windows) cannot encode
        the arrow, and the report must not crash on it.
    """
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "\u2192".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "\u2192"


def format_error(error: FileError) -> str:
    """Format a file that could not be audited as ``path:line: cannot audit: message``.

    :param error: the engine's report for that file; ``line`` ``0`` is left out.
    """
    where = f"{error.path}:{error.line}" if error.line else error.path
    return f"{where}: cannot audit: {error.message}"


def summary_line(report: Report, *, errors_shown: str = "see stderr") -> str:
    """Return the closing summary, e.g. ``Found 3 findings (2 ASH101, ...) in 2 files; ...``.

    :param report: the run.
    :param errors_shown: where the format lists the files that could not be audited.
    """
    scanned = plural(report.files_scanned, "file") + " scanned"
    parts = []
    if report.findings:
        files = len({f.path for f in report.findings})
        parts.append(
            f"Found {plural(len(report.findings), 'finding')} "
            f"({summary_counts(report.counts())}) in {plural(files, 'file')}; {scanned}."
        )
    else:
        parts.append(f"No blocking calls found; {scanned}.")
    if report.errors:
        parts.append(f"{plural(len(report.errors), 'file')} could not be audited ({errors_shown}).")
    if report.baseline_matched is not None:
        stale = ""
        if report.baseline_stale:
            entries = plural(report.baseline_stale, "baseline entry", "baseline entries")
            stale = f"; {entries} no longer found (rewrite it with --write-baseline)"
        parts.append(f"Baseline: {plural(report.baseline_matched, 'finding')} suppressed{stale}.")
    return " ".join(parts)


def render(report: Report, stream: TextIO, *, color: bool | None = None) -> None:
    """Write the text report to ``stream``.

    :param report: the run.
    :param stream: where to write; colour is decided from it.
    :param color: ``None`` detects (terminal, ``NO_COLOR``, ``FORCE_COLOR``);
        ``False`` never colours (``--output FILE``); ``True`` always does.
    """
    # rich costs ~30 ms to import; only the text format pays it.
    from rich.console import Console
    from rich.text import Text

    if color is None and os.environ.get("NO_COLOR"):
        # rich keeps bold/underline under NO_COLOR; a user who asks for no colour
        # in a log usually wants no escape codes at all.
        color = False
    console = Console(
        file=stream,
        color_system=None if color is False else "auto",
        force_terminal=True if color is True else None,
        no_color=True if color is False else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,  # never re-wrap: lines must stay greppable and copy-pastable
    )
    arrow = arrow_for(stream)
    for path, group in groupby(report.findings, key=lambda f: f.path):
        console.print(Text(path, style="bold underline"))
        for finding in group:
            rule = report.rule(finding.code)
            line = Text("  ")
            line.append(f"{finding.line}:{finding.col}", style="dim")
            line.append("  ")
            line.append(finding.code, style=_SEVERITY_STYLE[rule.severity])
            line.append(f"  {message(rule, finding)}")
            line.append(f"  [{rule.name}]", style="dim")
            console.print(line)
            for index, hop in enumerate(finding.chain):
                lead = "via " if index == 0 else "    "
                hop_line = Text(" " * 8 + lead)
                hop_line.append(f"{hop.path}:{hop.line}", style="cyan")
                hop_line.append(f" in {hop.function} {arrow} {hop.callee}()")
                console.print(hop_line)
        console.print()
    console.print(Text(summary_line(report), style="bold"))


__all__ = ["arrow_for", "format_error", "render", "summary_line"]
