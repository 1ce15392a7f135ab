"""The exit statuses of ``asgishift audit``, and how a run that fails says so.

:data:`EXIT_STATUSES` declares every status once: it is the ``--help`` epilog
(:data:`EPILOG`) and, through it, the generated ``docs/audit/cli.md``.

An internal error (a bug in asgishift) never exits with :data:`EXIT_FINDINGS`,
which CI reads as findings:

* when the analysis of one file raises, the engine reports that file as a
  :class:`~asgishift.audit._model.FileError` with ``internal`` set (the
  ``asgishift.audit`` logger has the traceback), every format shows it where it
  shows a file that cannot be parsed, the rest is still audited and reported,
  and :func:`crash_status` turns the status into :data:`EXIT_ERROR`, also with
  ``--exit-zero``: the file's findings are unknown, and a ``0`` would let a CI
  job pass without them;
* any other exception stops the run: :func:`internal_error` prints its
  traceback, then one line naming the :class:`Step` that failed, and the status
  is :data:`EXIT_ERROR`.

Only the standard library is imported here: ``--help`` must stay cheap.
"""

from __future__ import annotations

import sys
import textwrap
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgishift.audit._model import FileError

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
#: The audit could not do its job: a usage error or an internal error (a bug in asgishift).
EXIT_ERROR = 2
#: The status of a usage error (:data:`EXIT_ERROR`).
EXIT_USAGE = EXIT_ERROR

#: Every exit status and what it means: the one declaration behind the ``--help``
#: epilog and so behind the generated ``docs/audit/cli.md``.
EXIT_STATUSES: tuple[tuple[int, str], ...] = (
    (EXIT_CLEAN, "no findings (also with --exit-zero, --write-baseline, --explain)"),
    (EXIT_FINDINGS, "at least one finding that is not in the --baseline"),
    (
        EXIT_ERROR,
        "error, also with --exit-zero: a usage error (unknown flag or rule code, a path "
        "that does not exist, a bad [tool.asgishift.audit] table or baseline file), or an "
        "internal error, a bug in asgishift: the analysis of a file raised (that file is "
        "reported, the rest audited and reported) or the run stopped (traceback on stderr)",
    ),
)


def _epilog() -> str:
    """Word :data:`EXIT_STATUSES` for ``--help`` (raw text: wrapped here, at 80 columns)."""
    lines = ["exit status:"]
    for status, meaning in EXIT_STATUSES:
        lines += textwrap.wrap(
            meaning, 80, initial_indent=f"  {status}  ", subsequent_indent=" " * 5
        )
    lines.append("Files that cannot be parsed are reported but do not change the exit status.")
    return "\n".join(lines)


#: The ``--help`` epilog of ``asgishift audit``.
EPILOG = _epilog()


class Step:
    """What the command is doing now: the step an internal error names.

    :param doing: a gerund phrase (``"auditing the files"``) that completes
        "internal error while"; the command sets it as it goes.
    """

    def __init__(self, doing: str) -> None:
        self.doing = doing


def error(text: str) -> None:
    """Print ``asgishift audit: error: TEXT`` on stderr.

    :param text: one line saying what is wrong and what to do.
    """
    print(f"asgishift audit: error: {text}", file=sys.stderr)


def _where(exc: BaseException) -> str:
    """Return ``" (asgishift/audit/_link.py:120 in edge)"``: the innermost asgishift frame.

    :return: ``""`` when no frame of the traceback is in the asgishift package.
    """
    package = Path(__file__).resolve().parents[1]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        try:
            rel = Path(frame.filename).resolve().relative_to(package.parent)
        except (ValueError, OSError):
            continue
        return f" ({rel.as_posix()}:{frame.lineno} in {frame.name})"
    return ""


def _first_line(exc: BaseException) -> str:
    """Return ``"KeyError: 'x'"``: the exception's type and the first line of its text."""
    lines = str(exc).strip().splitlines()
    return type(exc).__name__ + (f": {lines[0][:200]}" if lines else "")


def internal_error(exc: Exception, step: Step) -> int:
    """Report an exception that stopped the run and return :data:`EXIT_ERROR`.

    Prints the traceback, then one line naming ``step`` and the innermost
    asgishift frame, so a CI log's last line says what failed and the lines
    above it are what a bug report needs.

    :param exc: the exception (a bug in asgishift, not the user's input).
    :param step: what the command was doing.
    :return: :data:`EXIT_ERROR`.
    """
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    error(
        f"internal error while {step.doing}{_where(exc)}: {_first_line(exc)}; this is a bug "
        "in asgishift, please report it with the traceback above"
    )
    return EXIT_ERROR


def crash_status(errors: Sequence[FileError], status: int) -> int:
    """Return ``status``, or :data:`EXIT_ERROR` (saying why) when a file's analysis raised.

    :param errors: the files the run reported instead of auditing; those with
        ``internal`` set are crashes.
    :param status: the exit status of the run without them.
    :return: ``status`` or :data:`EXIT_ERROR`; the one line printed on stderr
        for :data:`EXIT_ERROR` names the files (five at most).
    """
    crashed = [e.path for e in errors if e.internal]
    if not crashed:
        return status
    named = ", ".join(crashed[:5]) + (f" and {len(crashed) - 5} more" if len(crashed) > 5 else "")
    files = "1 file" if len(crashed) == 1 else f"{len(crashed)} files"
    error(
        f"internal error: asgishift's analysis of {files} raised ({named}); their findings "
        f"are unknown, so the exit status is {EXIT_ERROR}. This is a bug in asgishift: "
        "please report it with the traceback logged for each file"
    )
    return EXIT_ERROR


__all__ = [
    "EPILOG",
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_STATUSES",
    "EXIT_USAGE",
    "Step",
    "crash_status",
    "error",
    "internal_error",
]
