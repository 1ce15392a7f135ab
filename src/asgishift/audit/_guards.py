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

*Value guards* test what ``p`` holds against string literals: ``for x in p:``
then ``if x == "lit":`` (or ``x in ("a", "b")``, or ``x == "a" or x == "b"``)
inside the loop, and ``if "lit" in p:``. Their clause names the key
``p + VALUE_SEP + "lit"``, which a call site leaves unsatisfied when it leaves
``p`` out, passes ``None``, or passes a list, tuple or set literal none of
whose elements can equal ``"lit"`` (:mod:`asgishift.audit._values`). The loop
variable stands for an element only inside the loop and until it is rebound.
A value clause is dropped when ``p`` is rebound, is read anywhere in the
function other than by recognised tests and loops (the read may change the
caller's list), or is reached through a ``self.x`` alias.

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
from collections.abc import Callable

from asgishift.audit._values import absent, str_literals

#: A disjunction of parameter names (or ``self.x`` aliases while walking).
Clause = tuple[str, ...]
#: What the linker needs of a guarded function: ``(name, position)`` of each
#: parameter named by a clause, position in the bound-call convention (``self``
#: not counted) or ``-1`` for keyword-only.
Params = tuple[tuple[str, int], ...]
#: Guards of a function's call sites or hazards: ``(index, clauses)`` pairs.
Indexed = tuple[tuple[int, tuple[Clause, ...]], ...]
#: The known values of the elements of list/tuple/set literals a call site
#: passes: ``(keyword name or position, encoded values)`` (:mod:`._values`).
Elements = tuple[tuple[str | int, tuple[str, ...]], ...]
#: The arguments of a call site with keywords, ``*``/``**``, a literal ``None``
#: or a list/tuple/set literal of known values: ``(index, positional count,
#: keyword names, names/positions passed a literal None, has */**, known
#: elements)``. Other call sites need only their positional count, one byte
#: each (:func:`arity`).
CallArgs = tuple[int, int, tuple[str, ...], tuple[str | int, ...], bool, Elements]
#: The :func:`arity` byte of a call site whose arguments are in a :data:`CallArgs`.
COMPLEX = 255

_EMPTY_BUILDERS = (ast.List, ast.Tuple, ast.Set, ast.Dict)
_BENIGN_DECORATORS = frozenset({"builtins.staticmethod", "builtins.classmethod"})
_VIEWS = frozenset({"items", "keys", "values"})
#: Joins a parameter and a string literal into a value-guard key.
VALUE_SEP = "\0"


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

    :data:`COMPLEX` when it passes keywords, ``*``/``**``, a literal ``None``
    or a list/tuple/set literal (then :func:`call_args` describes it, and
    :func:`is_simple` says whether it needs to) or 255 arguments or more.
    """
    args = node.args
    if node.keywords or len(args) >= COMPLEX:
        return COMPLEX
    for arg in args:
        # Exact classes (the parser makes no subclasses): cheaper than isinstance().
        kind = arg.__class__
        if (
            kind is ast.Starred
            or (kind is ast.Constant and arg.value is None)  # type: ignore[attr-defined]
            or kind is ast.List
            or kind is ast.Tuple
            or kind is ast.Set
        ):
            return COMPLEX
    return len(args)


def call_args(
    index: int,
    node: ast.Call,
    elements: Callable[[ast.expr], tuple[str, ...] | None] | None = None,
) -> CallArgs:
    """Return the :data:`CallArgs` of call site ``index`` (one :func:`arity` calls complex).

    :param elements: the known values of a list/tuple/set literal's elements,
        or ``None`` (:meth:`asgishift.audit._values.ModuleConstants.elements`);
        without it no elements are known.
    """
    star = False
    npos = 0
    nones: list[str | int] = []
    known: list[tuple[str | int, tuple[str, ...]]] = []
    for i, arg in enumerate(node.args):
        if isinstance(arg, ast.Starred):
            star = True
        elif isinstance(arg, ast.Constant) and arg.value is None:
            nones.append(i)
        elif elements is not None:
            values = elements(arg)
            if values is not None:
                known.append((i, values))
        npos += 1
    names: list[str] = []
    for kw in node.keywords:
        if kw.arg is None:
            star = True
            continue
        names.append(kw.arg)
        if isinstance(kw.value, ast.Constant) and kw.value.value is None:
            nones.append(kw.arg)
        elif elements is not None:
            values = elements(kw.value)
            if values is not None:
                known.append((kw.arg, values))
    return index, npos, tuple(names), tuple(nones), star, tuple(known)


def is_simple(args: CallArgs) -> bool:
    """Return whether a call site's positional count says all :data:`CallArgs` does."""
    _, npos, names, nones, star, known = args
    return not (names or nones or star or known) and npos < COMPLEX


def unsatisfied(params: Params, args: CallArgs | int) -> frozenset[str]:
    """Return the guarded parameters a call site leaves out (or passes as ``None``).

    :param params: the callee's :data:`Params`; :param args: the call site's
        :data:`CallArgs`, or its positional count when it passes nothing else.
    """
    if isinstance(args, int):
        return frozenset(name for name, position in params if not 0 <= position < args)
    _, npos, names, nones, star, known = args
    if star:
        return frozenset()
    out = []
    for name, position in params:
        param, sep, literal = name.partition(VALUE_SEP)
        if param in names:
            at: str | int = param
        elif 0 <= position < npos:
            at = position
        else:
            out.append(name)
            continue
        if at in nones or (sep and absent(next((v for a, v in known if a == at), None), literal)):
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

    __slots__ = (
        "calls",
        "elements",
        "extra",
        "hazards",
        "names",
        "node",
        "params",
        "poisoned",
        "reads",
        "shared",
        "stack",
    )

    def __init__(
        self,
        params: dict[str, tuple[int, Default]],
        node: ast.FunctionDef | ast.AsyncFunctionDef | None = None,
    ) -> None:
        self.params = params
        # the function, read again only when it has value guards (see finish)
        self.node = node
        # ids of the Name nodes read by recognised tests and loops (they change nothing)
        self.reads: set[int] = set()
        self.shared: set[str] | None = None
        # guardable key (a parameter or ``self.x``) -> the parameters behind it
        self.names: dict[str, Clause] = {name: (name,) for name in params}
        self.stack: list[Clause] = []
        self.calls: dict[int, list[Clause]] = {}
        self.hazards: dict[int, list[Clause]] = {}
        self.poisoned: set[str] = set()
        self.extra: dict[str, set[str]] = {}
        # loop variable -> the guardable key whose elements it runs over
        self.elements: dict[str, str] = {}

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
        return cls(params, node) if params else None

    # ------------------------------------------------------------ reading tests
    def _key(self, node: ast.expr) -> str | None:
        """Return the guardable key an expression names (``p``, ``self.x``), or ``None``."""
        if isinstance(node, ast.Name):
            if node.id in self.names:
                self.reads.add(id(node))
                return node.id
            return None
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

    def _value_test(self, node: ast.Compare) -> list[Clause]:
        """Return the value-guard clauses of ``x == "lit"``, ``x in ("a", "b")``, ``"lit" in p``."""
        op, left, right = node.ops[0], node.left, node.comparators[0]
        if isinstance(op, ast.Eq):
            if isinstance(right, ast.Name):
                left, right = right, left
            if isinstance(left, ast.Name) and left.id in self.elements:
                literals = str_literals(right, single=True)
                if literals is not None:
                    key = self.elements[left.id]
                    return [tuple(key + VALUE_SEP + lit for lit in literals)]
            return []
        if isinstance(op, ast.In):
            if isinstance(left, ast.Name) and left.id in self.elements:
                literals = str_literals(right, single=False)
                if literals:
                    key = self.elements[left.id]
                    return [tuple(key + VALUE_SEP + lit for lit in literals)]
                return []
            literals = str_literals(left, single=True)
            found = self._key(self._strip(right))
            if literals and found and self._qualifies(found, False):
                return [(found,), (found + VALUE_SEP + literals[0],)]
        return []

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
            valued = self._value_test(node)
            if valued:
                return valued
            if isinstance(op, ast.IsNot) and isinstance(right, ast.Constant):
                key = self._key(node.left) if right.value is None else None
                return [(key,)] if key and self._qualifies(key, True) else []
            if isinstance(op, ast.In):
                key = self._key(self._strip(right))
                return [(key,)] if key and self._qualifies(key, False) else []
            return []
        key = self._key(node)
        return [(key,)] if key and self._qualifies(key, False) else []

    def iterates(self, node: ast.expr, target: ast.expr | None = None) -> list[Clause]:
        """Return the clauses a ``for`` loop over ``node`` implies for its body.

        :param target: the loop's target; a plain name then stands for an
            element of the guarded parameter inside the loop (value guards),
            until :meth:`leave_loop` or a rebinding.
        """
        if target is not None and self.elements:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    self.elements.pop(sub.id, None)
        key = self._key(self._strip(node))
        if not (key and self._qualifies(key, False)):
            return []
        if isinstance(target, ast.Name) and not isinstance(node, ast.Call):
            # not over ``p.items()``: the elements of ``p`` itself
            self.elements[target.id] = key
        return [(key,)]

    def leave_loop(self, target: ast.expr) -> None:
        """Note the end of a loop: its variable no longer stands for an element."""
        if isinstance(target, ast.Name):
            self.elements.pop(target.id, None)

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
        if self.elements:
            self.elements.pop(name, None)
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
        self.elements.pop(name, None)

    # ------------------------------------------------------------ result
    def _expand_value(self, key: str) -> str | None:
        """Return a value key in its parameter (``self.x`` -> ``p``), or ``None`` if unsure."""
        param, _, literal = key.partition(VALUE_SEP)
        if param not in self.params or param in self.poisoned or param in self.extra:
            # an alias (``self.x``) may be changed by any method; a rebound
            # parameter no longer holds the caller's elements
            return None
        if param in self._shared():
            return None
        return param + VALUE_SEP + literal

    def _shared(self) -> set[str]:
        """Return the parameters read outside recognised tests and loops.

        Such a read may hand the caller's list to code that changes it
        (``exts.append("spatialite")``, ``register(exts)``), so its elements
        are no longer the ones the call site passed.
        """
        if self.shared is not None:
            return self.shared
        if self.node is None:
            return set(self.params)
        shared = set()
        for sub in ast.walk(self.node):
            if (
                isinstance(sub, ast.Name)
                and sub.id in self.params
                and isinstance(sub.ctx, ast.Load)
                and id(sub) not in self.reads
            ):
                shared.add(sub.id)
        self.shared = shared
        return shared

    def _expand(self, clause: Clause) -> Clause | None:
        """Return a walk-time clause in parameters, widened by guarded rebinds, or ``None``."""
        out: dict[str, None] = {}
        todo = list(clause)
        while todo:
            key = todo.pop()
            if VALUE_SEP in key:
                valued = self._expand_value(key)
                if valued is None:
                    return None
                out[valued] = None
                continue
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
        params = tuple(
            (name, self.params[name.partition(VALUE_SEP)[0]][0]) for name in sorted(used)
        )
        return params, calls, hazards


__all__ = [
    "COMPLEX",
    "VALUE_SEP",
    "CallArgs",
    "Clause",
    "Default",
    "Elements",
    "Guards",
    "Indexed",
    "Params",
    "arity",
    "call_args",
    "is_simple",
    "pruned",
    "unsatisfied",
]
