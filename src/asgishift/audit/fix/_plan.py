"""Planning: which finding gets which rewrite, and whether that rewrite is safe.

The audit reports *where* a hazard is (:class:`~asgishift.audit._model.Finding`:
path, line, column, code, chain). This module turns each finding into at most
one :class:`FixTarget` (a file, a source position and a :class:`Rewrite`), or
says why it gets none. It reads no files and imports no libcst: the
transformers in :mod:`asgishift.audit.fix._transform` look the positions up.

Every fix kind is declared once in :data:`REWRITES` with its safety and the
reason for it; ``--unsafe-fixes`` turns on the unsafe ones, as ruff's flag of
the same name does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from asgishift.audit._model import Finding, FixKind


class Rewrite(enum.Enum):
    """The mechanical rewrites ``asgishift audit --fix`` knows."""

    AWAIT_ASYNC_METHOD = "await-async-method"
    ASYNC_FOR = "async-for"
    ASYNC_SLEEP = "asyncio-sleep"
    WRAP_SYNC_TO_ASYNC = "wrap-sync-to-async"


@dataclass(frozen=True)
class RewriteSpec:
    """The declaration of one fix kind.

    :param kind: the :class:`Rewrite`.
    :param before: a one-line example of the code it rewrites.
    :param after: the same line rewritten.
    :param safety: :attr:`FixKind.UNSAFE` fixes need ``--unsafe-fixes``.
    :param why: one sentence: why the rewrite is (or is not) safe.
    """

    kind: Rewrite
    before: str
    after: str
    safety: FixKind
    why: str


#: Every fix kind, declared once; the planner, the summary and the docs read this.
REWRITES: dict[Rewrite, RewriteSpec] = {
    spec.kind: spec
    for spec in (
        RewriteSpec(
            Rewrite.AWAIT_ASYNC_METHOD,
            "Book.objects.get(pk=pk)  /  book.save()",
            "await Book.objects.aget(pk=pk)  /  await book.asave()",
            FixKind.SAFE,
            "The sync call can only raise SynchronousOnlyOperation in async code, so no "
            "working behaviour is lost; Django's a-prefixed twin runs the same query with "
            "the same arguments and returns the same value (Model.asave() calls your save()).",
        ),
        RewriteSpec(
            Rewrite.ASYNC_SLEEP,
            "time.sleep(n)",
            "await asyncio.sleep(n)",
            FixKind.UNSAFE,
            "Today's code works (slowly), and nothing else runs during its pause; after "
            "the rewrite other tasks run there, so code that relied on that pause being "
            "atomic (shared state read before and after it) can behave differently.",
        ),
        RewriteSpec(
            Rewrite.ASYNC_FOR,
            "for x in queryset:",
            "async for x in queryset:",
            FixKind.UNSAFE,
            "Async iteration fetches rows in chunks without filling the QuerySet's result "
            "cache (a later len() or loop queries again), does not support "
            "prefetch_related() before Django 5.0, and lets other tasks run between rows.",
        ),
        RewriteSpec(
            Rewrite.WRAP_SYNC_TO_ASYNC,
            "helper(x)",
            "await sync_to_async(helper)(x)",
            FixKind.UNSAFE,
            "The helper then runs in another thread: thread-locals it reads or sets are "
            "not the caller's, other tasks run while it works, and an object it returns "
            "lazily (a QuerySet) is still evaluated by the caller.",
        ),
    )
}

#: Rules whose direct findings (no chain) have a fix, and which kind.
DIRECT_FIXES: dict[str, Rewrite] = {
    "ASH101": Rewrite.ASYNC_SLEEP,
    "ASH201": Rewrite.AWAIT_ASYNC_METHOD,
    "ASH202": Rewrite.ASYNC_FOR,
    "ASH204": Rewrite.AWAIT_ASYNC_METHOD,
}

#: Rule families whose findings reached through a project helper are fixed by
#: wrapping the helper's call in the ``async def`` with ``sync_to_async``.
CHAIN_FIX_FAMILIES = ("ASH1", "ASH2")
#: Rules of those families recorded only in the ``async def`` itself (on a
#: request it takes) or on a class (ASH210, a view's bases): their findings
#: never have a chain, so nothing to wrap.
UNCHAINED_RULES = frozenset({"ASH208", "ASH209", "ASH210"})


def rule_fixes(code: str) -> tuple[Rewrite, ...]:
    """Return the fix kinds a rule's findings can get (empty: the rule has no fix).

    :param code: a rule code (``"ASH201"``).
    """
    kinds: list[Rewrite] = []
    if code in DIRECT_FIXES:
        kinds.append(DIRECT_FIXES[code])
    if code.startswith(CHAIN_FIX_FAMILIES) and code not in UNCHAINED_RULES:
        kinds.append(Rewrite.WRAP_SYNC_TO_ASYNC)
    return tuple(kinds)


class Skip(enum.Enum):
    """Why a finding got no rewrite."""

    NO_FIX = "no fix for this rule"
    UNSAFE = "unsafe fix (needs --unsafe-fixes)"
    NOT_FOUND = "no rewritable code at the finding's location"
    GENERATOR = (
        "the helper is a generator function: sync_to_async would only create the "
        "generator in a thread, and iterating it would still run its body on the event "
        "loop; iterate it in a thread instead (e.g. `await sync_to_async(list)(helper())`)"
    )
    CONTEXT_MANAGER = (
        "the helper is a @contextmanager generator: sync_to_async would only build the "
        "context manager in a thread, and the `with` statement would still run its body on "
        "the event loop when it enters and exits; make it an `@asynccontextmanager` that "
        "awaits its blocking calls (`await asyncio.to_thread(...)`)"
    )


@dataclass(frozen=True)
class FixTarget:
    """One rewrite to make: what, where.

    :param kind: the :class:`Rewrite`.
    :param path: file path relative to the project root, POSIX separators.
    :param line: 1-based line of the expression to rewrite.
    :param col: 1-based column, counted in characters as the findings' are.
    :param end_line: last line of the expression, or ``0`` when unknown (a chain hop).
    :param end_col: 1-based column just past its end, or ``0``.
    :param callee: for :attr:`Rewrite.WRAP_SYNC_TO_ASYNC`, the dotted name of the
        called helper (its last part picks the call among those starting here).
    """

    kind: Rewrite
    path: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0
    callee: str = ""


@dataclass
class FixPlan:
    """The rewrites for one run, grouped by file, and what was left out.

    :param targets: file path (relative, POSIX) to its targets; several findings
        at one location share one target.
    :param findings: target to the findings it fixes.
    :param skipped: findings that get no rewrite, with the reason.
    """

    targets: dict[str, list[FixTarget]] = field(default_factory=dict)
    findings: dict[FixTarget, list[Finding]] = field(default_factory=dict)
    skipped: list[tuple[Finding, Skip]] = field(default_factory=list)

    def add(self, target: FixTarget, finding: Finding) -> None:
        """Record that ``target`` fixes ``finding``."""
        if target not in self.findings:
            self.findings[target] = []
            self.targets.setdefault(target.path, []).append(target)
        self.findings[target].append(finding)


def _target_for(finding: Finding) -> FixTarget | None:
    if finding.chain:
        if not finding.code.startswith(CHAIN_FIX_FAMILIES):
            return None
        hop = finding.chain[0]
        return FixTarget(Rewrite.WRAP_SYNC_TO_ASYNC, hop.path, hop.line, hop.col, callee=hop.callee)
    kind = DIRECT_FIXES.get(finding.code)
    if kind is None:
        return None
    return FixTarget(
        kind, finding.path, finding.line, finding.col, finding.end_line, finding.end_col
    )


def plan_fixes(findings: Iterable[Finding], *, unsafe: bool = False) -> FixPlan:
    """Decide the rewrite for each finding.

    :param findings: the engine's findings (any order).
    :param unsafe: include :attr:`FixKind.UNSAFE` fixes (``--unsafe-fixes``).
    :return: the plan; positions are checked later, by the transformer, so a
        target may still turn out to be :attr:`Skip.NOT_FOUND`.
    """
    plan = FixPlan()
    for finding in findings:
        target = _target_for(finding)
        if target is None:
            plan.skipped.append((finding, Skip.NO_FIX))
        elif REWRITES[target.kind].safety is FixKind.UNSAFE and not unsafe:
            plan.skipped.append((finding, Skip.UNSAFE))
        else:
            plan.add(target, finding)
    return plan


__all__ = [
    "CHAIN_FIX_FAMILIES",
    "DIRECT_FIXES",
    "REWRITES",
    "UNCHAINED_RULES",
    "FixPlan",
    "FixTarget",
    "Rewrite",
    "RewriteSpec",
    "Skip",
    "plan_fixes",
    "rule_fixes",
]
