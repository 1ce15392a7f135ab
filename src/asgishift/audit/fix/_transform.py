"""The libcst transformer that makes the planned rewrites.

One pass over a file's concrete syntax tree rewrites every
:class:`~asgishift.audit.fix._plan.FixTarget` of that file; comments, blank
lines and formatting outside the rewritten expressions are kept byte for byte
(libcst round-trips source exactly). A target is rewritten only when:

* the node at its position is what the fix expects (a call of a method with an
  async twin, a ``for`` over the flagged iterable, a call of the named helper),
* and it is written directly in the body of an ``async def`` (not in a nested
  ``def``, ``lambda``, class body or generator expression, where ``await`` and
  ``async for`` would be a syntax error or would change what the expression is).

Everything else is left alone and reported as not found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import libcst as cst
from libcst.metadata import PositionProvider

from asgishift.audit.fix._plan import FixTarget, Rewrite

#: Django QuerySet, Manager, RelatedManager and Model methods that run a query and
#: have an awaitable ``a``-prefixed twin taking the same arguments (Django 4.2+ docs,
#: "Asynchronous queries"). ``iterator`` is left out: ``aiterator()`` is iterated with
#: ``async for``, not awaited.
ASYNC_TWINS = frozenset(
    {
        "aggregate",
        "bulk_create",
        "bulk_update",
        "contains",
        "count",
        "create",
        "delete",
        "earliest",
        "exists",
        "explain",
        "first",
        "get",
        "get_or_create",
        "in_bulk",
        "last",
        "latest",
        "update",
        "update_or_create",
        "save",
        "refresh_from_db",
        "add",
        "remove",
        "clear",
        "set",
    }
)

_Key = tuple[int, int]
_DUNDER_CALLS = frozenset({"__init__", "__new__", "__call__"})


def _last_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _await(node: cst.BaseExpression) -> cst.Await:
    """``await node``, keeping the parentheses that were around ``node`` outside it."""
    lpar, rpar = node.lpar, node.rpar
    inner = node.with_changes(lpar=(), rpar=())
    return cst.Await(expression=inner, lpar=lpar, rpar=rpar)


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(node, cst.Await) and not node.lpar:
        return node.with_changes(lpar=(cst.LeftParen(),), rpar=(cst.RightParen(),))
    return node


class FixTransformer(cst.CSTTransformer):
    """Rewrite the targets of one file (use through :func:`transform_module`).

    :param targets: the file's targets, positions already converted to 0-based
        character columns: ``(target, (line, col), (end_line, end_col) or None)``.
    """

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self, targets: Sequence[tuple[FixTarget, _Key, _Key | None]], sync_to_async: str
    ) -> None:
        super().__init__()
        self._by_start: dict[_Key, list[tuple[FixTarget, _Key | None]]] = {}
        for target, start, end in targets:
            self._by_start.setdefault(start, []).append((target, end))
        self._sync_to_async = sync_to_async
        # One entry per enclosing scope: True for an async def body.
        self._async: list[bool] = [False]
        self.applied: list[FixTarget] = []

    # -- scopes -------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._async.append(node.asynchronous is not None)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._async.pop()
        return updated_node

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._async.append(False)

    def leave_Lambda(self, original_node: cst.Lambda, updated_node: cst.Lambda) -> cst.Lambda:
        self._async.pop()
        return updated_node

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._async.append(False)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._async.pop()
        return updated_node

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._async.append(False)

    def leave_GeneratorExp(
        self, original_node: cst.GeneratorExp, updated_node: cst.GeneratorExp
    ) -> cst.BaseExpression:
        self._async.pop()
        return updated_node

    # -- matching -----------------------------------------------------------
    def _take(self, node: cst.CSTNode, kinds: Iterable[Rewrite]) -> FixTarget | None:
        """The target of one of ``kinds`` at ``node``'s exact span, if any (consumed)."""
        if not self._async[-1]:
            return None
        where = self.get_metadata(PositionProvider, node)
        start = (where.start.line, where.start.column)
        candidates = self._by_start.get(start)
        if not candidates:
            return None
        wanted = set(kinds)
        for index, (target, end) in enumerate(candidates):
            if target.kind not in wanted:
                continue
            if end is not None and end != (where.end.line, where.end.column):
                continue
            if target.kind is Rewrite.WRAP_SYNC_TO_ASYNC and not self._calls(node, target):
                continue
            del candidates[index]
            self.applied.append(target)
            return target
        return None

    @staticmethod
    def _calls(node: cst.CSTNode, target: FixTarget) -> bool:
        if not isinstance(node, cst.Call):
            return False
        name = _last_name(node.func)
        parts = target.callee.split(".")
        if name == parts[-1]:
            return True
        # A constructor or __call__ hop names the method; the call names the class.
        return len(parts) > 1 and parts[-1] in _DUNDER_CALLS and name == parts[-2]

    # -- rewrites -----------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if isinstance(updated_node.func, cst.Await):
            updated_node = updated_node.with_changes(func=_parenthesized(updated_node.func))
        func = updated_node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in ASYNC_TWINS
            and self._take(original_node, (Rewrite.AWAIT_ASYNC_METHOD,)) is not None
        ):
            twin = func.with_changes(attr=cst.Name("a" + func.attr.value))
            return _await(updated_node.with_changes(func=twin))
        if self._take(original_node, (Rewrite.ASYNC_SLEEP,)) is not None:
            sleep = cst.Attribute(value=cst.Name("asyncio"), attr=cst.Name("sleep"))
            return _await(updated_node.with_changes(func=sleep))
        if self._take(original_node, (Rewrite.WRAP_SYNC_TO_ASYNC,)) is not None:
            wrapper = cst.Call(
                func=cst.Name(self._sync_to_async),
                args=(cst.Arg(func),),
            )
            return _await(updated_node.with_changes(func=wrapper))
        return updated_node

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        # `await qs.count()` (an awaited sync call, a real bug) becomes
        # `await qs.acount()`, not `await await ...`.
        inner = updated_node.expression
        if isinstance(inner, cst.Await):
            return inner.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
        return updated_node

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        return updated_node.with_changes(value=_parenthesized(updated_node.value))

    def leave_Subscript(
        self, original_node: cst.Subscript, updated_node: cst.Subscript
    ) -> cst.BaseExpression:
        return updated_node.with_changes(value=_parenthesized(updated_node.value))

    def leave_For(
        self, original_node: cst.For, updated_node: cst.For
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel:
        if original_node.asynchronous is None and self._take(
            original_node.iter, (Rewrite.ASYNC_FOR,)
        ):
            return updated_node.with_changes(
                asynchronous=cst.Asynchronous(), iter=_async_iterable(updated_node.iter)
            )
        return updated_node

    def leave_CompFor(self, original_node: cst.CompFor, updated_node: cst.CompFor) -> cst.CompFor:
        if original_node.asynchronous is None and self._take(
            original_node.iter, (Rewrite.ASYNC_FOR,)
        ):
            return updated_node.with_changes(
                asynchronous=cst.Asynchronous(), iter=_async_iterable(updated_node.iter)
            )
        return updated_node


def _async_iterable(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """Return what ``async for`` iterates instead of ``iterable``.

    A QuerySet is iterated as it is; ``qs.iterator(...)`` returns a plain
    generator, so it becomes ``qs.aiterator(...)`` (Django 4.1+), its async twin.
    """
    if (
        isinstance(iterable, cst.Call)
        and isinstance(iterable.func, cst.Attribute)
        and iterable.func.attr.value == "iterator"
    ):
        return iterable.with_changes(func=iterable.func.with_changes(attr=cst.Name("aiterator")))
    return iterable


def positions(
    targets: Iterable[FixTarget], lines: Sequence[str]
) -> list[tuple[FixTarget, _Key, _Key | None]]:
    """Convert targets' 1-based character columns to libcst's (1-based line, 0-based column).

    :param targets: one file's targets.
    :param lines: that file's decoded lines (``str.splitlines()``).
    """
    out: list[tuple[FixTarget, _Key, _Key | None]] = []
    for target in targets:
        if not 1 <= target.line <= len(lines):
            continue
        start = (target.line, max(target.col - 1, 0))
        end: _Key | None = None
        if target.end_line and 1 <= target.end_line <= len(lines):
            end = (target.end_line, max(target.end_col - 1, 0))
        out.append((target, start, end))
    return out


def transform_module(
    module: cst.Module, targets: Sequence[FixTarget], *, sync_to_async: str = "sync_to_async"
) -> tuple[cst.Module, list[FixTarget]]:
    """Rewrite ``targets`` in ``module``.

    :param module: the parsed file.
    :param targets: its targets (:func:`asgishift.audit.fix._plan.plan_fixes`).
    :param sync_to_async: the name the wrapper is called by in this file.
    :return: the new module and the targets that were rewritten (the others were
        not found at their position, or not inside an ``async def``).
    """
    lines = module.code.splitlines()
    transformer = FixTransformer(positions(targets, lines), sync_to_async)
    new = cst.MetadataWrapper(module, unsafe_skip_copy=True).visit(transformer)
    return new, transformer.applied


__all__ = [
    "ASYNC_TWINS",
    "FixTransformer",
    "positions",
    "transform_module",
]
