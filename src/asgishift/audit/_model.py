"""Data model shared by the audit engine, its output formats and its runtime companion.

Everything a rule says about itself is declared once in a :class:`Rule`; the
engine produces :class:`Finding` objects that point back at their rule, and
every output format (text, JSON, SARIF, GitHub annotations), the docs page,
``--explain`` and the runtime detector read from those two types only.

This module is pure: no I/O, no imports outside the standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.Enum):
    """How serious a finding is; maps onto SARIF ``level`` (SARIF 2.1.0 §3.27.10)."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class FixKind(enum.Enum):
    """Whether ``asgishift audit --fix`` can rewrite a rule's findings, and how safely.

    Follows ruff's split: a *safe* fix keeps the program's meaning and is applied
    by ``--fix``; an *unsafe* fix may change behaviour (ordering, threads,
    exceptions) and needs ``--unsafe-fixes`` as well.
    """

    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Rule:
    """One audit rule, declared once in the catalogue.

    :param code: stable identifier, ``"ASH"`` plus three digits (``"ASH101"``);
        a retired code is never reused.
    :param name: kebab-case name (``"blocking-sleep-in-async"``).
    :param summary: one sentence saying what the rule finds (SARIF
        ``shortDescription``).
    :param message: the finding's message template, formatted with
        ``str.format(**finding.args)``; it names the fix
        (``"Blocking call {call}() in async code; use asyncio.sleep()"``).
    :param why: Markdown paragraph: why this is a hazard under ASGI.
    :param example: Python source that triggers the rule.
    :param fixed: the same source rewritten so it does not trigger.
    :param severity: default :class:`Severity`.
    :param calls: canonical dotted names of the callables this rule matches
        (``("time.sleep",)``); the static engine matches resolved call names
        against them and the runtime detector patches them. Empty for rules
        that match syntax rather than calls.
    :param since: the asgishift version that introduced the rule.
    :param fix: the kind of automatic rewrite ``asgishift audit --fix`` offers
        for this rule's findings, or ``None`` when it has none.
    """

    code: str
    name: str
    summary: str
    message: str
    why: str
    example: str
    fixed: str
    severity: Severity = Severity.ERROR
    calls: tuple[str, ...] = ()
    since: str = "0.1.0"
    fix: FixKind | None = None

    @property
    def family(self) -> str:
        """The rule family prefix, e.g. ``"ASH1"`` for blocking calls."""
        return self.code[:4]


@dataclass(frozen=True)
class Hop:
    """One step of a call chain from an ``async def`` down to a hazard.

    :param path: file path relative to the project root, POSIX separators.
    :param line: 1-based line of the call (or of the hazard for the last hop).
    :param col: 1-based column, in characters (Unicode code points).
    :param function: qualified name of the function containing this call
        (``"shop.views.checkout"``).
    :param callee: dotted name of what is called at this hop.
    """

    path: str
    line: int
    col: int
    function: str
    callee: str


@dataclass(frozen=True)
class Finding:
    """One hazard found by the engine.

    :param code: the :attr:`Rule.code` that fired.
    :param path: file path relative to the project root, POSIX separators.
    :param line: 1-based line; :param col: 1-based column, in characters
        (Unicode code points; the engine converts Python's UTF-8 byte offsets).
    :param end_line: last line of the flagged expression; :param end_col:
        1-based column just past its end.
    :param args: values for :attr:`Rule.message` (``{"call": "time.sleep"}``).
    :param chain: hops from the async entry point to the hazard; empty when
        the hazard sits directly in the ``async def``. The first hop is in the
        ``async def``, the last one is at ``path:line``.
    :param snippet: the stripped source line, used for line-move-proof
        fingerprints.
    """

    code: str
    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    args: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    chain: tuple[Hop, ...] = ()
    snippet: str = ""


@dataclass(frozen=True)
class FileError:
    """A file the audit could not read, parse or analyse; the rest is still audited.

    :param path: file path relative to the project root.
    :param line: 1-based line of the problem, or ``0`` when it has none.
    :param message: what went wrong and what to do about it.
    :param internal: the analysis of the file raised: a bug in asgishift, not
        in the file (the ``asgishift.audit`` logger has the traceback). The
        command exits with status 2 then, as the file's findings are unknown.
    """

    path: str
    line: int
    message: str
    internal: bool = False


@dataclass
class AuditResult:
    """Everything one audit run produced.

    :param findings: sorted by ``(path, line, col, code)``.
    :param errors: files that were reported rather than audited.
    :param files_scanned: number of Python files read.
    :param root: the project root all paths are relative to (absolute, POSIX).
    :param files_parsed: number of files parsed (this run or an earlier one,
        through the cache); ``files_scanned`` by default, fewer with
        ``whole_project`` off (``--reachable-only``), ``-1`` when unknown.
    """

    findings: list[Finding]
    errors: list[FileError]
    files_scanned: int
    root: str
    files_parsed: int = -1


@dataclass
class AuditConfig:
    """Settings of one audit run, read from ``[tool.asgishift.audit]`` and the CLI.

    :param select: rule codes or prefixes to run (``["ASH1", "ASH201"]``); empty
        means every rule.
    :param ignore: rule codes or prefixes never reported.
    :param per_file_ignores: glob (relative to the root, POSIX) to codes or
        prefixes ignored in matching files.
    :param exclude: globs of paths skipped entirely, on top of ``.gitignore``.
    :param extra_blocking: dotted names of project or third-party callables to
        treat as blocking (reported as ``ASH199``-style user rules by the engine).
    :param extra_safe: dotted names of callables that make their argument safe
        to block in (like ``sync_to_async``), or functions never to descend into.
    :param respect_gitignore: skip paths ignored by ``.gitignore`` files.
    :param max_file_bytes: files larger than this many bytes are reported, not parsed.
    :param jobs: worker processes for parsing; ``0`` means one per CPU.
    :param cache_dir: directory of the per-file cache, or ``None`` to disable it.
    :param follow_chains: report hazards reachable through calls, not only direct ones.
    :param whole_project: parse every file (the default). ``False`` parses only
        the import closure of async code (files mentioning async code,
        middleware, Flask or threads, and the project modules they import
        transitively): code outside it cannot change a finding, so cold runs
        on large trees are faster, but a syntax error in a file outside the
        closure is then not reported.
    :param syntax_check: how ``whole_project`` checks the files outside the
        closure: ``"ruff"`` (the default) has ruff's parser filter them when
        ruff is installed, and CPython's parser check each file ruff rejects and
        word its error; ``"python"`` has CPython's parser check every one
        (``asgishift/audit/_syntax.py``).
    """

    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    extra_blocking: list[str] = field(default_factory=list)
    extra_safe: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    max_file_bytes: int = 2 * 1024 * 1024
    jobs: int = 0
    cache_dir: str | None = ".asgishift_cache"
    follow_chains: bool = True
    whole_project: bool = True
    syntax_check: str = "ruff"


#: The values of :attr:`AuditConfig.syntax_check`.
SYNTAX_CHECKS = ("ruff", "python")

__all__ = [
    "SYNTAX_CHECKS",
    "AuditConfig",
    "AuditResult",
    "FileError",
    "Finding",
    "FixKind",
    "Hop",
    "Rule",
    "Severity",
]
