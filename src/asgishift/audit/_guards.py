"""Parameter guards: hazards that run only when the caller passes an optional argument.

``def __init__(self, plugins_dir=None): ... if plugins_dir: glob.glob(...)``
reads the disk only when the call site passes ``plugins_dir``. The walker
records, for each call site and syntax hazard of a function, the *clauses*
that guard it; the linker (:mod:`asgishift.audit._link`) drops the hazard (or
does not follow the call) on a chain whose call site into the function leaves
every parameter of some clause out. The analysis is context-sensitive at one
level: a function's guards are judged by the call site that enters it.

A clause is a tuple of parameter names: it holds when the call site passes
*any* of them (anything but a literal ``None``). Only parameters whose default
is a literal that fails the test count: ``None``, ``False``, ``0``, ``""`` or
an empty literal container for a truth test, ``None`` for ``is not None``.

Recognised guards (``p`` such a parameter, or ``self.x`` after ``self.x = p``):

* ``if p:`` / ``while p:`` and ``and`` of them; ``or`` of guards is one clause;
* ``if p is not None:``; ``if x in p:`` / ``if x in (p or [])``;
* ``for x in p:`` / ``for x in (p or [])`` / ``for k, v in (p or {}).items():``;
* ``if not p: return`` (or ``raise``) at the top of the body guards the rest.

Anything else is not a guard, so the hazard is kept. Rebinding ``p`` under a
guard widens the clauses that name ``p`` by that guard's parameters (``if
config_dir: p = ...``); rebinding it anywhere else (or ``nonlocal``, ``:=``)
drops every clause that names it, as does a second assignment of ``self.x``.
Functions with decorators other than ``staticmethod``/``classmethod`` get no
guards (a wrapper may pass the argument itself).
"""

from __future__ import annotations

import ast
import enum

#: A disjunction of parameter names (or ``self.x`` aliases while walking).
Clause = tuple[str, ...]
#: What the linker needs of a guarded function: ``(name, position)`` of each
#: parameter named by a clause, position in the bound-call convention (``self``
#: not counted) or ``-1`` for keyword-only.
Params = tuple[tuple[str, int], ...]
#: Guards of a function's call sites or hazards: ``(index, clauses)`` pairs.
Indexed = tuple[tuple[int, tuple[Clause, ...]], ...]
#: The arguments of a call site with keywords, ``*``/``**`` or a literal
#: ``None``: ``(index, positional count, keyword names, names/positions passed
#: a literal None, has */**)``. Other call sites need only their positional
#: count, one byte each (:func:`arity`).
CallArgs = tuple[int, int, tuple[str, ...], tuple[str | int, ...], bool]
#: The :func:`arity` byte of a call site whose arguments are in a :data:`CallArgs`.
COMPLEX = 255

_EMPTY_BUILDERS = (ast.List, ast.Tuple, ast.Set, ast.Dict)
_BENIGN_DECORATORS = frozenset({"builtins.staticmethod", "builtins.classmethod"})
_VIEWS = frozenset({"items", "keys", "values"})


class Default(enum.IntEnum):
    """What a parameter's default makes of a test on the parameter."""

    #: anything else: the default may pass a truth test
    OTHER = 0
    #: ``False``, ``0``, ``""`` or an empty literal container: fails a truth test
    FALSY = 1
    #: ``None``: fails a truth test and ``is not None``
    NONE = 2


def _default_kind(node: ast.expr | None) -> Default:
    """Return what a default value (``None``: no default) is, as a :class:`Default`."""
    if isinstance(node, ast.Constant):
        if node.value is None:
            return Default.NONE
        return Default.OTHER if node.value else Default.FALSY
    if isinstance(node, _EMPTY_BUILDERS):
        empty = not (node.keys if isinstance(node, ast.Dict) else node.elts)
        return Default.FALSY if empty else Default.OTHER
    return Default.OTHER


def _is_empty_literal(node: ast.expr) -> bool:
    return _default_kind(node) is not Default.OTHER


def arity(node: ast.Call) -> int:
    """Return a call's positional argument count (0..254), or :data:`COMPLEX`.

    :data:`COMPLEX` when it passes keywords, ``*``/``**`` or a literal ``None``
    (then :func:`call_args` describes it) or 255 arguments or more.
    """
    args = node.args
    if node.keywords or len(args) >= COMPLEX:
        return COMPLEX
    for arg in args:
        # Exact classes (the parser makes no subclasses): cheaper than isinstance().
        kind = arg.__class__
        if kind is ast.Starred or (kind is ast.Constant and arg.value is None):  # type: ignore[attr-defined]
            return COMPLEX
    return len(args)


def call_args(index: int, node: ast.Call) -> CallArgs:
    """Return the :data:`CallArgs` of call site ``index`` (one :func:`arity` calls complex)."""
    star = False
    npos = 0
    nones: list[str | int] = []
    for i, arg in enumerate(node.args):
        if isinstance(arg, ast.Starred):
            star = True
        elif isinstance(arg, ast.Constant) and arg.value is None:
            nones.append(i)
        npos += 1
    names: list[str] = []
    for kw in node.keywords:
        if kw.arg is None:
            star = True
            continue
        names.append(kw.arg)
        if isinstance(kw.value, ast.Constant) and kw.value.value is None:
            nones.append(kw.arg)
    return index, npos, tuple(names), tuple(nones), star


def unsatisfied(params: Params, args: CallArgs | int) -> frozenset[str]:
    """Return the guarded parameters a call site leaves out (or passes as ``None``).

    :param params: the callee's :data:`Params`; :param args: the call site's
        :data:`CallArgs`, or its positional count when it passes nothing else.
    """
    if isinstance(args, int):
        return frozenset(name for name, position in params if not 0 <= position < args)
    _, npos, names, nones, star = args
    if star:
        return frozenset()
    out = []
    for name, position in params:
        if name in names:
            if name in nones:
                out.append(name)
        elif 0 <= position < npos:
            if position in nones:
                out.append(name)
        else:
            out.append(name)
    return frozenset(out)


def pruned(clauses: tuple[Clause, ...], unsat: frozenset[str]) -> bool:
    """Return whether some clause names only parameters in ``unsat``."""
    return any(all(name in unsat for name in clause) for clause in clauses)


class Guards:
    """The guard state of one function while its body is walked.

    :param params: guardable parameter name to ``(position, default)`` (a
        :class:`Default` other than ``OTHER``); build it with :meth:`for_function`.
    """

    __slots__ = ("calls", "extra", "hazards", "names", "params", "poisoned", "stack")

    def __init__(self, params: dict[str, tuple[int, Default]]) -> None:
        self.params = params
        # guardable key (a parameter or ``self.x``) -> the parameters behind it
        self.names: dict[str, Clause] = {name: (name,) for name in params}
        self.stack: list[Clause] = []
        self.calls: dict[int, list[Clause]] = {}
        self.hazards: dict[int, list[Clause]] = {}
        self.poisoned: set[str] = set()
        self.extra: dict[str, set[str]] = {}

    @classmethod
    def for_function(
        cls, node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool, decorators: list[str]
    ) -> Guards | None:
        """Return the guard state of a function, or ``None`` if nothing can guard.

        :param method: the first positional parameter is bound (``self``/``cls``).
        :param decorators: canonical names of its decorators.
        """
        if any(dec not in _BENIGN_DECORATORS for dec in decorators):
            return None
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        params: dict[str, tuple[int, Default]] = {}
        offset = len(positional) - len(args.defaults)
        shift = 1 if method else 0
        for i, default in enumerate(args.defaults):
            kind = _default_kind(default)
            if kind is not Default.OTHER:
                params[positional[offset + i].arg] = (offset + i - shift, kind)
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            kind = _default_kind(kw_default)
            if kind is not Default.OTHER:
                params[arg.arg] = (-1, kind)
        return cls(params) if params else None

    # ------------------------------------------------------------ reading tests
    def _key(self, node: ast.expr) -> str | None:
        """Return the guardable key an expression names (``p``, ``self.x``), or ``None``."""
        if isinstance(node, ast.Name):
            return node.id if node.id in self.names else None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            key = f"{node.value.id}.{node.attr}"
            return key if key in self.names else None
        return None

    def _strip(self, node: ast.expr) -> ast.expr:
        """``p or []`` -> ``p``; ``(p or {}).items()`` -> ``p``."""
        if (
            isinstance(node, ast.Call)
            and not node.args
            and not node.keywords
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _VIEWS
        ):
            node = node.func.value
        if (
            isinstance(node, ast.BoolOp)
            and isinstance(node.op, ast.Or)
            and len(node.values) == 2
            and _is_empty_literal(node.values[1])
        ):
            node = node.values[0]
        return node

    def _qualifies(self, key: str, none_only: bool) -> bool:
        """Return whether every parameter behind ``key`` fails the test by default."""
        return all(self.params[p][1] is Default.NONE or not none_only for p in self.names[key])

    def test(self, node: ast.expr) -> list[Clause]:
        """Return the clauses a true ``node`` implies (``[]``: none known)."""
        if isinstance(node, ast.BoolOp):
            parts = [self.test(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return [clause for part in parts for clause in part]
            if all(parts):
                # ``a or b``: the first clause of each operand, joined.
                return [tuple(dict.fromkeys(k for part in parts for k in part[0]))]
            return []
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op, right = node.ops[0], node.comparators[0]
            if isinstance(op, ast.IsNot) and isinstance(right, ast.Constant):
                key = self._key(node.left) if right.value is None else None
                return [(key,)] if key and self._qualifies(key, True) else []
            if isinstance(op, ast.In):
                key = self._key(self._strip(right))
                return [(key,)] if key and self._qualifies(key, False) else []
            return []
        key = self._key(node)
        return [(key,)] if key and self._qualifies(key, False) else []

    def iterates(self, node: ast.expr) -> list[Clause]:
        """Return the clauses a ``for`` loop over ``node`` implies for its body."""
        key = self._key(self._strip(node))
        return [(key,)] if key and self._qualifies(key, False) else []

    def exits_unless(self, stmt: ast.stmt) -> list[Clause]:
        """Return the clauses after ``if not p: return`` (``[]`` if ``stmt`` is not one)."""
        if not (
            isinstance(stmt, ast.If)
            and not stmt.orelse
            and isinstance(stmt.body[-1], (ast.Return, ast.Raise))
        ):
            return []
        test = stmt.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self.test(test.operand)
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
        ):
            key = self._key(test.left)
            return [(key,)] if key and self._qualifies(key, True) else []
        return []

    # ------------------------------------------------------------ blocks
    def push(self, clauses: list[Clause], calls: int, hazards: int) -> tuple[int, int, int]:
        """Enter a block guarded by ``clauses``; return the mark for :meth:`pop`."""
        self.stack.extend(clauses)
        return len(clauses), calls, hazards

    def pop(self, mark: tuple[int, int, int], calls: int, hazards: int) -> None:
        """Leave a guarded block: its call sites and hazards get its clauses."""
        count, first_call, first_hazard = mark
        clauses = self.stack[len(self.stack) - count :]
        del self.stack[len(self.stack) - count :]
        for i in range(first_call, calls):
            self.calls.setdefault(i, []).extend(clauses)
        for i in range(first_hazard, hazards):
            self.hazards.setdefault(i, []).extend(clauses)

    def truncate(self, calls: int, hazards: int) -> None:
        """Forget guards of call sites and hazards the walker dropped (index past the end)."""
        for table, end in ((self.calls, calls), (self.hazards, hazards)):
            for i in [i for i in table if i >= end]:
                del table[i]

    # ------------------------------------------------------------ bindings
    def rebind(self, name: str, value: ast.expr | None) -> None:
        """Note ``name = value`` (``value`` ``None``: unknown) for a guardable parameter."""
        if name not in self.params or (value is not None and _is_empty_literal(value)):
            return
        if self.stack:
            smallest = min(self.stack, key=len)
            widened = self.extra.setdefault(name, set())
            for key in smallest:
                widened.update(self.names.get(key, (key,)))
        else:
            self.poisoned.add(name)

    def alias(self, key: str, value: ast.expr | None) -> None:
        """Note ``self.x = value``: ``self.x`` stands for ``p`` after ``self.x = p``."""
        fresh = key not in self.names and key not in self.poisoned
        if (
            fresh
            and not self.stack
            and isinstance(value, ast.Name)
            and value.id in self.params
            and value.id in self.names
        ):
            self.names[key] = (value.id,)
        elif key in self.names or not fresh:
            self.poisoned.add(key)
            self.names.pop(key, None)

    def poison(self, name: str) -> None:
        """Drop every clause naming ``name`` (rebound where no guard can follow it)."""
        self.poisoned.add(name)

    # ------------------------------------------------------------ result
    def _expand(self, clause: Clause) -> Clause | None:
        """Return a walk-time clause in parameters, widened by guarded rebinds, or ``None``."""
        out: dict[str, None] = {}
        todo = list(clause)
        while todo:
            key = todo.pop()
            if key in self.poisoned:
                return None
            if key in out:
                continue
            if key not in self.params:
                # an alias key: its parameters
                behind = self.names.get(key)
                if behind is None:
                    return None
                todo.extend(behind)
                continue
            out[key] = None
            todo.extend(self.extra.get(key, ()))
        return tuple(sorted(out)) if out else None

    def finish(self) -> tuple[Params, Indexed, Indexed]:
        """Return ``(params, call guards, hazard guards)`` for the summary."""
        used: set[str] = set()

        def table(items: dict[int, list[Clause]]) -> Indexed:
            rows = []
            for index in sorted(items):
                clauses = [c for c in map(self._expand, dict.fromkeys(items[index])) if c]
                if clauses:
                    rows.append((index, tuple(clauses)))
                    used.update(p for c in clauses for p in c)
            return tuple(rows)

        calls, hazards = table(self.calls), table(self.hazards)
        params = tuple((name, self.params[name][0]) for name in sorted(used))
        return params, calls, hazards


__all__ = [
    "COMPLEX",
    "CallArgs",
    "Clause",
    "Default",
    "Guards",
    "Indexed",
    "Params",
    "arity",
    "call_args",
    "pruned",
    "unsatisfied",
]
