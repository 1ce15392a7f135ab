"""``asgishift audit --fix``: mechanical rewrites of audit findings, built on libcst.

Three steps, one module each:

* :mod:`~asgishift.audit.fix._plan` turns findings (path, line, column, code,
  chain) into rewrite targets and decides which are safe;
* :mod:`~asgishift.audit.fix._transform` makes the rewrites in one libcst pass,
  only inside ``async def`` bodies;
* :mod:`~asgishift.audit.fix._apply` adds the imports the new code needs,
  checks that it compiles, diffs and writes.

See ``docs/audit/fix.md`` for the fixes and why some need ``--unsafe-fixes``.
"""

from __future__ import annotations

from asgishift.audit.fix._apply import FileChange, FixReport, apply_plan, fix_findings
from asgishift.audit.fix._plan import (
    REWRITES,
    FixPlan,
    FixTarget,
    Rewrite,
    RewriteSpec,
    Skip,
    plan_fixes,
    rule_fixes,
)

__all__ = [
    "REWRITES",
    "FileChange",
    "FixPlan",
    "FixReport",
    "FixTarget",
    "Rewrite",
    "RewriteSpec",
    "Skip",
    "apply_plan",
    "fix_findings",
    "plan_fixes",
    "rule_fixes",
]
