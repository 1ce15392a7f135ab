"""The human-readable report: findings grouped by file, chains hop by hop, a summary.

Example (colour only when writing to a terminal)::

    shop/payments.py
      22:5  ASH101  Blocking call time.sleep() in async function; use asyncio.sleep()
            via shop/views.py:9 in shop.views.checkout → shop.payments.charge()
                shop/payments.py:22 in shop.payments.charge → time.sleep()

A hazard reached from several call sites in async code is one finding per
call site; the text groups them under the hazard, lists each call site (and
the hops that differ) and prints the chain's shared tail once::

      31:9  ASH105  Blocking file I/O builtins.open() ...
            reached from 2 call sites in async code:
              shop/views.py:9 in shop.views.checkout → shop.store.save()
              shop/views.py:40 in shop.views.refund → shop.store.save()
            then shop/store.py:30 in shop.store.save → shop.store.write()
                 shop/store.py:31 in shop.store.write → builtins.open()

    Found 1 finding (1 ASH101) in 1 file; 12 files scanned.

Files that could not be audited are not part of the report: the CLI writes them to
stderr (``path:line: cannot audit: message``) so a pipe of stdout stays clean.
Colour follows :class:`rich.console.Console` detection: on when the stream is a
terminal, off otherwise, ``NO_COLOR`` turns it off and ``FORCE_COLOR`` on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from asgishift.audit._model import FileError, Finding, Hop, Severity
from asgishift.audit.output import Report, call_text, message, plural, summary_counts

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

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
    if 0 <= report.files_parsed < report.files_scanned:
        scanned += f", {report.files_parsed} parsed (--reachable-only)"
    parts = []
    if report.findings:
        files = len({f.path for f in report.findings})
        places = len({(f.path, f.line, f.col, f.code) for f in report.findings})
        # One finding per call site: say how many hazards they are when fewer.
        at = f" at {plural(places, 'place')}" if places < len(report.findings) else ""
        parts.append(
            f"Found {plural(len(report.findings), 'finding')} "
            f"({summary_counts(report.counts())}){at} in {plural(files, 'file')}; {scanned}."
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


def _hop_text(hop: Hop, lead: str, arrow: str) -> Text:
    from rich.text import Text

    text = Text(lead)
    text.append(f"{hop.path}:{hop.line}", style="cyan")
    text.append(f" in {hop.function} {arrow} {call_text(hop.callee)}")
    return text


def shared_tail(chains: Sequence[tuple[Hop, ...]]) -> int:
    """Return how many trailing hops every chain of ``chains`` has in common.

    :param chains: the chains of the findings of one hazard (each ends at it).
    :return: a count, at most one less than the shortest chain (every chain
        keeps its own first hop).
    """
    if len(chains) < 2:
        return 0
    limit = min(len(c) for c in chains) - 1
    count = 0
    while count < limit and all(c[-1 - count] == chains[0][-1 - count] for c in chains):
        count += 1
    return count


def _hazard(console: Console, report: Report, same: list[Finding], arrow: str) -> None:
    """Print one hazard: its line, then its chain, or its call sites and their shared tail."""
    from rich.text import Text

    finding = same[0]
    rule = report.rule(finding.code)
    line = Text("  ")
    line.append(f"{finding.line}:{finding.col}", style="dim")
    line.append("  ")
    line.append(finding.code, style=_SEVERITY_STYLE[rule.severity])
    line.append(f"  {message(rule, finding)}")
    line.append(f"  [{rule.name}]", style="dim")
    console.print(line)
    chains = [f.chain for f in same if f.chain]
    if len(chains) <= 1:
        for index, hop in enumerate(chains[0] if chains else ()):
            console.print(_hop_text(hop, " " * 8 + ("via " if index == 0 else "    "), arrow))
        return
    tail = shared_tail(chains)
    sites = plural(len(chains), "call site")
    console.print(Text(" " * 8 + f"reached from {sites} in async code:"))
    for chain in chains:
        head = chain[: len(chain) - tail]
        for index, hop in enumerate(head):
            console.print(_hop_text(hop, " " * 10 + ("" if index == 0 else "  "), arrow))
    for index, hop in enumerate(chains[0][len(chains[0]) - tail :]):
        console.print(_hop_text(hop, " " * 8 + ("then " if index == 0 else "     "), arrow))


def _console_class() -> type[Console]:
    from rich.console import Console

    class ReportConsole(Console):
        """A console that lets a closed pipe reach the caller.

        rich's default exits with status 1, which would override the audit's
        own exit status (``--exit-zero``, a clean run).
        """

        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return ReportConsole


def render(report: Report, stream: TextIO, *, color: bool | None = None) -> None:
    """Write the text report to ``stream``.

    :param report: the run.
    :param stream: where to write; colour is decided from it.
    :param color: ``None`` detects (terminal, ``NO_COLOR``, ``FORCE_COLOR``);
        ``False`` never colours (``--output FILE``); ``True`` always does.
    :raise BrokenPipeError: when the reader of ``stream`` left.
    """
    # rich costs ~30 ms to import; only the text format pays it.
    from rich.text import Text

    if color is None and os.environ.get("NO_COLOR"):
        # rich keeps bold/underline under NO_COLOR; a user who asks for no colour
        # in a log usually wants no escape codes at all.
        color = False
    console = _console_class()(
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
        for _, same in groupby(group, key=lambda f: (f.line, f.col, f.code)):
            _hazard(console, report, list(same), arrow)
        console.print()
    console.print(Text(summary_line(report), style="bold"))


__all__ = ["arrow_for", "format_error", "render", "shared_tail", "summary_line"]
