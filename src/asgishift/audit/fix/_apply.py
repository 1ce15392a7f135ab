"""Applying a :class:`~asgishift.audit.fix._plan.FixPlan`: read, rewrite, diff, write.

Each file is parsed by libcst once, rewritten in one pass
(:mod:`asgishift.audit.fix._transform`), given the imports its new code needs
(``import asyncio``, ``from asgiref.sync import sync_to_async``) with libcst's
import codemod, and compiled before anything is written: a rewrite that would
not compile is reported and the file is left as it was. Files are written in
their own encoding, with their own line endings.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from asgishift.audit._model import Finding
from asgishift.audit._regular import read_regular
from asgishift.audit.fix._plan import FixPlan, FixTarget, Rewrite, Skip, plan_fixes
from asgishift.audit.fix._transform import transform_module

logger = logging.getLogger("asgishift.audit")

#: The import each fix kind's new code relies on: (module, name or None).
NEEDED_IMPORTS: dict[Rewrite, tuple[str, str | None]] = {
    Rewrite.ASYNC_SLEEP: ("asyncio", None),
    Rewrite.WRAP_SYNC_TO_ASYNC: ("asgiref.sync", "sync_to_async"),
}


@dataclass(frozen=True)
class FileChange:
    """One file's rewrite.

    :param path: relative to the project root, POSIX separators.
    :param before: the original text; :param after: the rewritten text.
    :param applied: the targets rewritten in it.
    """

    path: str
    before: str
    after: str
    applied: tuple[FixTarget, ...]

    def diff(self) -> str:
        """The change as a unified diff (``a/path`` → ``b/path``), ``git diff`` style."""
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"a/{self.path}",
            tofile=f"b/{self.path}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass
class FixReport:
    """What one ``--fix``/``--diff`` run did.

    :param changes: files whose text changed.
    :param fixed: findings whose code was rewritten.
    :param skipped: findings left alone, with the reason.
    :param errors: ``(path, message)`` for files that could not be rewritten.
    """

    changes: list[FileChange] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, Skip]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def count(self, reason: Skip) -> int:
        """Number of findings skipped for ``reason``."""
        return sum(1 for _, why in self.skipped if why is reason)

    def summary(self, *, written: bool, fixed: int | None = None, files: int | None = None) -> str:
        """One sentence for stderr: fixed, skipped as unsafe, without a fix.

        :param written: the files were written (``--fix``), not only diffed.
        :param fixed: findings fixed over every pass (default: this report's).
        :param files: files changed over every pass (default: this report's).
        """
        fixed = len(self.fixed) if fixed is None else fixed
        files = len(self.changes) if files is None else files
        verb = "Fixed" if written else "Would fix"
        parts = [
            f"{verb} {fixed} finding{'s' if fixed != 1 else ''} "
            f"in {files} file{'s' if files != 1 else ''}"
        ]
        unsafe = self.count(Skip.UNSAFE)
        if unsafe:
            parts.append(f"{unsafe} skipped as unsafe (apply them with --unsafe-fixes)")
        no_fix = self.count(Skip.NO_FIX) + self.count(Skip.NOT_FOUND)
        if no_fix:
            parts.append(f"{no_fix} without an automatic fix")
        generators = self.count(Skip.GENERATOR)
        if generators:
            parts.append(
                f"{generators} not rewritten: the helper is a generator function, whose body "
                "would still run on the event loop"
            )
        managers = self.count(Skip.CONTEXT_MANAGER)
        if managers:
            parts.append(
                f"{managers} not rewritten: the helper is a @contextmanager, whose body the "
                "`with` statement would still run on the event loop"
            )
        return "; ".join(parts) + "."

    def refusals(self) -> list[str]:
        """One line per call site refused because its helper is a generator function.

        ``path:line:col: message`` (the call in the ``async def``), for stderr;
        a ``@contextmanager`` generator is told apart from a plain one.
        """
        lines: dict[str, None] = {}
        for finding, why in self.skipped:
            if why in _REFUSED and finding.chain:
                hop = finding.chain[0]
                lines[f"{hop.path}:{hop.line}:{hop.col}: {hop.callee}(): {why.value}"] = None
        return list(lines)


#: Why a ``sync_to_async`` wrap of a generator helper is refused.
_REFUSED = (Skip.GENERATOR, Skip.CONTEXT_MANAGER)
#: The decorators that turn a generator function into a context manager factory.
_CONTEXT_MANAGERS = frozenset({"contextmanager", "contextlib.contextmanager"})


class _Generators:
    """Tell whether the helper a chain enters is a generator function (files read once).

    The chain's second hop is inside the helper (its ``function`` names it); the
    innermost ``def`` of that name around the hop's line is read with :mod:`ast`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trees: dict[str, ast.Module | None] = {}

    def _tree(self, rel: str) -> ast.Module | None:
        if rel not in self.trees:
            tree = None
            with contextlib.suppress(OSError, SyntaxError, ValueError):
                tree = ast.parse(read_regular(self.root / rel))
            self.trees[rel] = tree
        return self.trees[rel]

    def entered(self, finding: Finding) -> Skip | None:
        """Return why the helper ``finding``'s chain calls first cannot be wrapped, if it cannot.

        :return: :attr:`Skip.CONTEXT_MANAGER` for a generator function decorated
            with ``@contextmanager``, :attr:`Skip.GENERATOR` for any other
            generator function, ``None`` for a plain function.
        """
        if len(finding.chain) < 2:
            return None
        hop = finding.chain[1]
        tree = self._tree(hop.path)
        if tree is None:
            return None
        name = hop.function.rsplit(".", 1)[-1]
        found: ast.FunctionDef | None = None
        todo: list[ast.AST] = [tree]
        while todo:
            node = todo.pop()
            for child in ast.iter_child_nodes(node):
                end = getattr(child, "end_lineno", None)
                if end is None or not child.lineno <= hop.line <= end:  # type: ignore[attr-defined]
                    continue
                if isinstance(child, ast.FunctionDef) and child.name == name:
                    found = child  # the innermost one wins: keep descending
                todo.append(child)
        if found is None or not _yields(found):
            return None
        if any(ast.unparse(dec) in _CONTEXT_MANAGERS for dec in found.decorator_list):
            return Skip.CONTEXT_MANAGER
        return Skip.GENERATOR


def _yields(function: ast.FunctionDef) -> bool:
    """Return whether ``function``'s own body (not a nested scope) has ``yield``."""
    todo: list[ast.AST] = [*function.body]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return False


def _refuse_generators(plan: FixPlan, root: Path, report: FixReport) -> None:
    """Take the ``sync_to_async`` wraps of generator functions out of ``plan``."""
    generators = _Generators(root)
    for rel, targets in plan.targets.items():
        kept = []
        for target in targets:
            findings = plan.findings[target]
            why = None
            if target.kind is Rewrite.WRAP_SYNC_TO_ASYNC:
                why = generators.entered(findings[0])
            if why is not None:
                report.skipped.extend((finding, why) for finding in findings)
            else:
                kept.append(target)
        plan.targets[rel] = kept


def _needed_imports(module: cst.Module, applied: Iterable[FixTarget]) -> cst.Module:
    context = CodemodContext()
    wanted = False
    for kind in {target.kind for target in applied}:
        if kind in NEEDED_IMPORTS:
            name, obj = NEEDED_IMPORTS[kind]
            AddImportsVisitor.add_needed_import(context, name, obj)
            wanted = True
    if not wanted:
        return module
    return AddImportsVisitor(context).transform_module(module)


def rewrite_source(
    data: bytes, targets: list[FixTarget], *, path: str = "<source>"
) -> tuple[str, str, list[FixTarget]]:
    """Rewrite one file's source.

    :param data: the file's bytes (any PEP 263 encoding).
    :param targets: its targets.
    :param path: its name, for error messages.
    :return: ``(before, after, applied)`` as text; ``after == before`` when nothing
        was rewritten.
    :raises SyntaxError: the rewritten code does not compile (a bug: the file is
        then left alone by :func:`apply_plan`).
    :raises libcst.ParserSyntaxError: libcst cannot parse the file.
    """
    module = cst.parse_module(data)
    new, applied = transform_module(module, targets)
    if applied:
        new = _needed_imports(new, applied)
    before, after = module.code, new.code
    if after != before:
        compile(after, path, "exec", dont_inherit=True)
    return before, after, applied


def apply_plan(plan: FixPlan, root: Path, *, write: bool) -> FixReport:
    """Rewrite every file of ``plan`` under ``root``.

    :param plan: from :func:`~asgishift.audit.fix._plan.plan_fixes`.
    :param root: the project root the plan's paths are relative to.
    :param write: write the files (``--fix``); ``False`` only computes the
        changes (``--diff``).
    :return: the :class:`FixReport`; unreadable or unparseable files are in its
        ``errors``, not raised.
    """
    report = FixReport(skipped=list(plan.skipped))
    _refuse_generators(plan, root, report)
    for rel in sorted(plan.targets):
        targets = plan.targets[rel]
        if not targets:
            continue
        path = root / rel
        try:
            data = path.read_bytes()
            before, after, applied = rewrite_source(data, targets, path=rel)
        except (OSError, SyntaxError, cst.ParserSyntaxError) as exc:
            report.errors.append((rel, f"not rewritten: {exc}"))
            applied = []
            before = after = ""
        done = set(applied)
        for target in targets:
            findings = plan.findings[target]
            if target in done:
                report.fixed.extend(findings)
            else:
                report.skipped.extend((finding, Skip.NOT_FOUND) for finding in findings)
        if after == before:
            continue
        change = FileChange(rel, before, after, tuple(applied))
        report.changes.append(change)
        if write:
            encoding = cst.parse_module(data).encoding
            with path.open("w", encoding=encoding, newline="") as stream:
                stream.write(after)
            logger.info("%s: %d fixes applied", rel, len(applied))
    return report


def fix_findings(
    findings: Iterable[Finding], root: Path, *, unsafe: bool = False, write: bool = True
) -> FixReport:
    """Plan and apply fixes for ``findings`` (what ``asgishift audit --fix`` runs).

    :param findings: the engine's findings; paths relative to ``root``.
    :param root: the project root.
    :param unsafe: also apply fixes that may change behaviour (``--unsafe-fixes``).
    :param write: write the files; ``False`` for ``--diff``.
    """
    return apply_plan(plan_fixes(findings, unsafe=unsafe), root, write=write)


__all__ = [
    "NEEDED_IMPORTS",
    "FileChange",
    "FixReport",
    "apply_plan",
    "fix_findings",
    "rewrite_source",
]
