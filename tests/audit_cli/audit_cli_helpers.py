"""Helpers for the ``asgishift audit`` command-line tests (fixtures are in conftest.py).

Two tiers:

- unit: hand-built :class:`Report`/:class:`Finding` objects fed to the formats,
  and an in-process CLI whose engine is replaced by a fake returning chosen
  findings (exit-status and baseline logic without depending on the analysis);
- end to end: the real ``python -m asgishift audit`` in a subprocess on small
  temporary projects (:func:`run_audit`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgishift.audit._baseline import fingerprints
from asgishift.audit._model import AuditConfig, AuditResult, FileError, Finding, Hop, Rule, Severity
from asgishift.audit.output import Report, rules_by_code

SLEEP = Rule(
    code="ASH101",
    name="blocking-sleep",
    summary="A blocking sleep runs in async code.",
    message="Blocking call {call}() stops the event loop; use `await asyncio.sleep(...)`",
    why="`time.sleep()` suspends the thread that runs the event loop.",
    example="import time\n\nasync def poll():\n    time.sleep(1)\n",
    fixed="import asyncio\n\nasync def poll():\n    await asyncio.sleep(1)\n",
    calls=("time.sleep",),
)
ORM = Rule(
    code="ASH201",
    name="sync-orm-in-async",
    summary="The Django ORM is used synchronously from async code.",
    message="Synchronous ORM call {call}() in async code; use the `a`-prefixed {async_name}()",
    why="Django raises SynchronousOnlyOperation.",
    example="async def view():\n    Book.objects.get(pk=1)\n",
    fixed="async def view():\n    await Book.objects.aget(pk=1)\n",
    severity=Severity.WARNING,
)
RULES = (SLEEP, ORM)


def finding(
    code: str = "ASH101",
    path: str = "shop/views.py",
    line: int = 3,
    *,
    col: int = 5,
    snippet: str = "time.sleep(1)",
    chain: Sequence[Hop] = (),
    **args: str,
) -> Finding:
    """Build a finding; ``args`` default to ``call="time.sleep"``."""
    return Finding(
        code=code,
        path=path,
        line=line,
        col=col,
        end_line=line,
        end_col=col + len(snippet),
        args=args or {"call": "time.sleep"},
        chain=tuple(chain),
        snippet=snippet,
    )


def make_report(
    findings: Sequence[Finding] = (),
    errors: Sequence[FileError] = (),
    *,
    root: str = "/project",
    files_scanned: int = 7,
) -> Report:
    """Build a :class:`Report` over :data:`RULES` with real fingerprints."""
    ordered = sorted(findings, key=lambda f: (f.path, f.line, f.col, f.code))
    return Report(
        findings=ordered,
        fingerprints=fingerprints(ordered),
        errors=list(errors),
        files_scanned=files_scanned,
        root=root,
        rules=rules_by_code(RULES),
        tool_version="9.9.9",
    )


CHAIN = (
    Hop(path="shop/views.py", line=9, col=5, function="shop.views.checkout", callee="shop.pay"),
    Hop(path="shop/pay.py", line=4, col=5, function="shop.pay", callee="time.sleep"),
)


@dataclass
class FakeEngine:
    """Stands in for :func:`asgishift.audit.engine.audit_paths`; records its calls."""

    result: AuditResult
    calls: list[tuple[list[Path], Path, AuditConfig]]
    progress_given: list[bool] = field(default_factory=list)

    def __call__(
        self,
        paths: Sequence[Path],
        *,
        root: Path,
        config: AuditConfig,
        progress: Callable[[int, int], None] | None = None,
    ) -> AuditResult:
        self.calls.append((list(paths), root, config))
        self.progress_given.append(progress is not None)
        if progress is not None:
            progress(1, 2)
            progress(2, 2)
        return self.result


def cli(*args: str) -> int:
    """Run ``asgishift audit ARGS`` in this process and return its exit status."""
    from asgishift.cli import main

    try:
        return main(["audit", *args])
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code or 0)


@dataclass
class Run:
    """The outcome of a subprocess audit run."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Parse stdout as JSON."""
        return json.loads(self.stdout)


def run_audit(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    """Run ``python -m asgishift audit ARGS`` in ``cwd`` and capture its output.

    Colour variables are cleared so the child decides from its (non-TTY) stdout,
    unless ``env`` sets them.
    """
    base = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    base.pop("GITHUB_WORKSPACE", None)
    base["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-m", "asgishift", "audit", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**base, **(env or {})},
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, done.stderr)
