"""What ``asgishift audit --fix`` / ``--diff`` do and print; the flags are declared in
:mod:`asgishift.audit._cli` with the other audit flags."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from asgishift.audit._model import AuditResult
from asgishift.audit.fix._apply import FixReport, fix_findings

#: ``--fix`` re-audits and fixes again while a pass changes something (a fix can
#: uncover a finding the engine reported once per hazard), at most this many times.
MAX_PASSES = 5


def run_fixes(
    result: AuditResult,
    *,
    unsafe: bool,
    write: bool,
    reaudit: Callable[[], AuditResult] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> tuple[int, AuditResult]:
    """Fix (or, with ``write=False``, diff) the findings of one audit run.

    :param result: the engine's result; its ``root`` is the project root.
    :param unsafe: ``--unsafe-fixes``.
    :param write: ``--fix`` writes; ``--diff`` prints one pass's diff to ``out``.
    :param reaudit: runs the audit again after files were written; ``None`` stops
        after one pass.
    :param out: where diffs go (default stdout); :param err: where the summary and
        the files that could not be rewritten go (default stderr).
    :return: ``(files changed, the latest audit result)``; with ``write`` and
        ``reaudit`` that result describes the fixed tree.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    root = Path(result.root)
    fixed = 0
    changed: set[str] = set()
    report = FixReport()
    for _ in range(MAX_PASSES):
        report = fix_findings(result.findings, root, unsafe=unsafe, write=write)
        fixed += len(report.fixed)
        changed.update(change.path for change in report.changes)
        for path, message in report.errors:
            print(f"{path}: {message}", file=err)
        if not write:
            for change in report.changes:
                out.write(change.diff())
            out.flush()
        if not (write and report.changes and reaudit is not None):
            break
        result = reaudit()
    for line in report.refusals():
        print(line, file=err)
    print(report.summary(written=write, fixed=fixed, files=len(changed)), file=err)
    return len(changed), result


__all__ = ["MAX_PASSES", "run_fixes"]
