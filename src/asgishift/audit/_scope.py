"""Building blocks of the per-file walk: per-function state, hooks, node helpers.

:class:`Scope` is the mutable state of one function while its body is walked;
:class:`Hooks` is how rule families plug into the walk
(:mod:`asgishift.audit._walk`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from asgishift.audit._guards import CallArgs, Guards
from asgishift.audit._records import Hazard, Site
from asgishift.audit._tables import SQLITE_MODULES

if TYPE_CHECKING:
    from asgishift.audit._walk import WalkerBase


class Scope:
    """Mutable state of one function while its body is walked.

    Rule families keep their per-function state here too: ``querysets`` and
    ``models`` (Django ORM, :mod:`asgishift.audit.rules.orm`), ``loaded``
    (foreign keys already read).
    """

    __slots__ = (
        "arity",
        "call_args",
        "call_replaced",
        "calls",
        "class_bases",
        "class_qual",
        "created",
        "decorators",
        "defs",
        "discarded",
        "dispatch",
        "elements",
        "flask_uses",
        "guards",
        "hazards",
        "imports",
        "insensitive",
        "is_async",
        "is_generator",
        "is_queryset_class",
        "kept",
        "loaded",
        "locals",
        "models",
        "object_refs",
        "parent",
        "qualname",
        "querysets",
        "replaced",
        "set_attrs",
        "thread_targets",
        "types",
        "values",
    )

    def __init__(self, qualname: str, is_async: bool, parent: Scope | None) -> None:
        self.qualname = qualname
        self.is_async = is_async
        self.parent = parent
        self.is_generator = False
        self.is_queryset_class = False
        self.class_qual = ""
        # the resolved direct bases of the class a method belongs to, and the
        # function's decorators (targets; ``api_view([...])`` is ``api_view``)
        self.class_bases: tuple[str, ...] = ()
        self.decorators: tuple[str, ...] = ()
        # names typed by the class or function object itself, not an instance
        # (``cls`` of a classmethod, ``kind = Store``, ``f = helper``): reading
        # an attribute of one runs no property getter
        self.object_refs: set[str] | None = None
        # local dicts of functions (``handlers = {"a": f}``): name -> function targets
        self.dispatch: dict[str, tuple[str, ...]] | None = None
        self.calls: list[Site] = []
        # positional count of each call site, and the other arguments of the
        # complex ones (see ``_guards.arity``)
        self.arity = bytearray()
        self.call_args: list[CallArgs] = []
        # parameter guards, for functions with an optional falsy-default parameter
        self.guards: Guards | None = None
        # variable -> methods replaced on it (``obj.create = lambda: None``)
        self.replaced: dict[str, set[str]] | None = None
        # ``x.attr`` targets assigned in the body so far (``request.user = user``):
        # reading ``x.attr`` afterwards reads what was stored, not the original
        self.set_attrs: set[str] | None = None
        # call index -> methods replaced on its receiver
        self.call_replaced: list[tuple[int, tuple[str, ...]]] = []
        # variable -> indices of the calls whose result it holds, not read since
        # (``gen = numbers()``), and the calls whose result is never used here
        # but kept or returned (see ``FuncSummary.created``)
        self.kept: dict[str, list[int]] | None = None
        self.created: list[int] = []
        self.hazards: list[Hazard] = []
        self.discarded: list[Site] = []
        self.thread_targets: list[Site] = []
        self.insensitive: list[Site] = []
        self.flask_uses: list[Hazard] = []
        self.defs: dict[str, str] = {}
        self.imports: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.elements: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.locals: set[str] = set()
        # variable -> (model target, relations its query loads; see rules.orm.queryset)
        self.querysets: dict[str, tuple[str, frozenset[str]]] = {}
        self.models: dict[str, tuple[str, frozenset[str]]] = {}
        self.loaded: set[tuple[str, str]] = set()


class Hooks(NamedTuple):
    """The rule families' callbacks, one tuple per walker event.

    :param call: ``(walker, node, target)`` for every call in a function body,
        ``target`` the callee's canonical name or ``None``.
    :param attribute: ``(walker, node)`` for every attribute read.
    :param name: ``(walker, node)`` for every name read.
    :param iterate: ``(walker, iterable, is_async, target)`` for ``for`` loops
        and comprehensions; ``target`` is the loop variable (``None`` in a
        comprehension); returns ``True`` when it typed the loop variable.
    :param test: ``(walker, expr, how)`` for truth tests (``if``/``while``/``not``).
    :param subscript: ``(walker, node)`` for every subscript, read, assigned
        (``d[k] = v``, ``d[k] += v``) or deleted; ``node.ctx`` says which.
    :param bind: ``(walker, name, value)`` for ``name = value``; returns
        ``True`` when it typed the variable.
    :param decorator: ``(walker, decorator, target, qualname, scope, is_async)``
        for each decorator of a function, ``scope`` the decorated function's.
    :param wrapper: ``(walker, node, target)`` for calls of a safe wrapper
        (``sync_to_async(f, ...)``).
    :param block: ``(walker, context, calls, hazards)`` after the body of a
        ``with name:`` / ``with obj.attr:`` statement is walked; ``calls`` and
        ``hazards`` are how many the function had before the body, so the
        body's own are ``walker.scope.calls[calls:]`` and ``...hazards[hazards:]``.
    """

    call: tuple[Callable[[WalkerBase, ast.Call, str | None], None], ...] = ()
    attribute: tuple[Callable[[WalkerBase, ast.Attribute], None], ...] = ()
    name: tuple[Callable[[WalkerBase, ast.Name], None], ...] = ()
    iterate: tuple[Callable[[WalkerBase, ast.expr, bool, ast.expr | None], bool], ...] = ()
    test: tuple[Callable[[WalkerBase, ast.expr, str], None], ...] = ()
    subscript: tuple[Callable[[WalkerBase, ast.Subscript], None], ...] = ()
    bind: tuple[Callable[[WalkerBase, str, ast.expr], bool], ...] = ()
    decorator: tuple[Callable[[WalkerBase, ast.expr, str | None, str, Scope, bool], None], ...] = ()
    wrapper: tuple[Callable[[WalkerBase, ast.Call, str], None], ...] = ()
    block: tuple[Callable[[WalkerBase, ast.expr, int, int], None], ...] = ()

    def merge(self, other: Hooks) -> Hooks:
        """Return the hooks of both, ``self``'s first."""
        return Hooks._make(a + b for a, b in zip(self, other, strict=True))


def pos(node: ast.expr | ast.stmt) -> tuple[int, int, int, int]:
    """Return 1-based ``(line, col, end_line, end_col)`` of a node."""
    end_line = node.end_lineno or node.lineno
    end_col = (node.end_col_offset if node.end_col_offset is not None else node.col_offset) + 1
    return node.lineno, node.col_offset + 1, end_line, end_col


def short(expr: ast.expr) -> str:
    """Render a call chain compactly (``Book.objects.filter(...).first``)."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return f"{short(expr.value)}.{expr.attr}"
    if isinstance(expr, ast.Call):
        return f"{short(expr.func)}(...)"
    if isinstance(expr, ast.Subscript):
        return f"{short(expr.value)}[...]"
    return "..."


def is_false(node: ast.expr) -> bool:
    """Return whether ``node`` is the literal ``False``."""
    return isinstance(node, ast.Constant) and node.value is False


def toplevel(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield module-level statements, looking inside ``if``/``try``/``with`` blocks."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from toplevel(stmt.body)
            yield from toplevel(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from toplevel(stmt.body)
            for handler in stmt.handlers:
                yield from toplevel(handler.body)
            yield from toplevel(stmt.orelse)
            yield from toplevel(stmt.finalbody)
        elif isinstance(stmt, ast.With):
            yield from toplevel(stmt.body)
        else:
            yield stmt


def file_mode(call: ast.Call) -> tuple[bool, bool] | None:
    """Return ``(binary, writes)`` of an ``open(...)`` call's literal mode, or ``None``."""
    mode: ast.expr | None = None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        # open(file, mode) / Path.open(mode)
        mode = call.args[1] if len(call.args) > 1 else None
        if mode is None and isinstance(call.func, ast.Attribute) and call.args:
            mode = call.args[0]
    if mode is None:
        return (False, False)
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return ("b" in mode.value, any(c in mode.value for c in "wax+"))
    return None


def is_unbounded(call: ast.Call) -> bool:
    """Return whether a ``queue.Queue(...)`` call makes an unbounded queue.

    ``Queue()``, ``Queue(0)`` and ``Queue(maxsize=-1)`` never fill up, so their
    ``put()`` never waits (the :mod:`queue` docs: "If maxsize is less than or
    equal to zero, the queue size is infinite"); a bound that is not a literal
    counts as bounded.
    """
    size: ast.expr | None = call.args[0] if call.args else None
    for kw in call.keywords:
        if kw.arg == "maxsize":
            size = kw.value
    if size is None:
        return True
    if isinstance(size, ast.UnaryOp) and isinstance(size.op, ast.USub):
        return isinstance(size.operand, ast.Constant) and isinstance(size.operand.value, int)
    return isinstance(size, ast.Constant) and isinstance(size.value, int) and size.value <= 0


#: How the target of every SQLite ``connect`` ends: a callee that does not end
#: so is no :func:`is_sqlite_connect` (the walker tests it inline, per call).
CONNECT_SUFFIX = ".connect"


def is_sqlite_connect(target: str | None) -> bool:
    """Return whether a callee is ``connect`` of a SQLite module (see ``SQLITE_MODULES``)."""
    if target is None or not target.endswith(CONNECT_SUFFIX):
        return False
    return target[: -len(CONNECT_SUFFIX)].rpartition(".")[2] in SQLITE_MODULES


def database_arg(call: ast.Call) -> ast.expr | None:
    """Return the database argument of a ``connect(...)`` call (first or ``database=``)."""
    name: ast.expr | None = call.args[0] if call.args else None
    for kw in call.keywords:
        if kw.arg == "database":
            name = kw.value
    return name


def _memory_text(text: str, uri: bool) -> bool:
    return text.startswith("file:") and "mode=memory" in text if uri else text == ":memory:"


def is_memory_name(node: ast.expr) -> bool:
    """Return whether an expression is an in-memory SQLite database name.

    The literal ``":memory:"``, a literal ``file:`` URI with ``mode=memory``, or
    one built from a template whose fixed text says so (``"file:{}?mode=memory"
    .format(name)``, ``f"file:{name}?mode=memory"``): the query string is part
    of the template, so no name makes it a file.
    """
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and (
            _memory_text(node.value, False) or _memory_text(node.value, True)
        )
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        return _memory_text(node.func.value.value, True)
    if isinstance(node, ast.JoinedStr) and node.values:
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        first = node.values[0]
        return (
            isinstance(first, ast.Constant)
            and str(first.value).startswith("file:")
            and any("mode=memory" in str(p) and "?" in str(p) for p in parts)
        )
    return False


__all__ = [
    "CONNECT_SUFFIX",
    "Hooks",
    "Scope",
    "database_arg",
    "file_mode",
    "is_false",
    "is_memory_name",
    "is_sqlite_connect",
    "is_unbounded",
    "pos",
    "short",
    "toplevel",
]
