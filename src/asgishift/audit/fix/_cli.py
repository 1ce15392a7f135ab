"""What ``asgishift audit --fix`` / ``--diff`` print; the flags are declared in
:mod:`asgishift.audit._cli` with the other audit flags."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from asgishift.audit._model import AuditResult
from asgishift.audit.fix._apply import fix_findings


def run_fixes(
    result: AuditResult,
    *,
    unsafe: bool,
    write: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Fix (or, with ``write=False``, diff) the findings of one audit run.

    :param result: the engine's result; its ``root`` is the project root.
    :param unsafe: ``--unsafe-fixes``.
    :param write: ``--fix`` writes; ``--diff`` prints the diff to ``out``.
    :param out: where diffs go (default stdout); :param err: where the summary
        and files that could not be rewritten go (default stderr).
    :return: the number of files changed (or that would be).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    report = fix_findings(result.findings, Path(result.root), unsafe=unsafe, write=write)
    if not write:
        for change in report.changes:
            out.write(change.diff())
        out.flush()
    for path, message in report.errors:
        print(f"{path}: {message}", file=err)
    print(report.summary(written=write), file=err)
    return len(report.changes)


__all__ = ["run_fixes"]
