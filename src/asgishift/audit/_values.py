"""Known values: what an argument's elements can provably not be equal to.

A value guard (:mod:`asgishift.audit._guards`) holds a hazard under a test of an
element of a parameter against a string literal (``for x in p: if x ==
"spatialite":``, ``if "spatialite" in p:``). A call site proves the test false
when it passes a list, tuple or set literal each of whose elements has a
*known value* that cannot equal the literal. A known value is encoded as one
string, so that call sites stay plain tuples in the cache:

* ``"=" + text``: exactly the string ``text`` (a string literal);
* ``"~" + prefix + "\\0" + suffix``: a ``str`` that starts with ``prefix`` and
  ends with ``suffix`` (an f-string's literal head and tail; ``str(path /
  "name")`` of a :mod:`pathlib` path ends with ``name``);
* ``"!"``: not a string at all (a number, bytes, ``None``, a bool, a tuple or
  list literal), so never equal to a string literal.

Names are known only as module constants: a module-level name bound exactly
once in the whole module (by a plain ``NAME = value``), never declared
``global`` and never bound in any function, class, comprehension, import or
``except ... as`` of that module; a module with ``from x import *`` has none.
Rebinding it from another module (``module.NAME = ...``,
``monkeypatch.setattr``) is not seen: a module constant is taken at its word.
Anything else is unknown, and an unknown element keeps the hazard.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

#: The encoding of a value that is not a string.
NOT_STR = "!"
#: The builtin ``str`` and the path types whose ``/`` appends a last part.
_STR = "builtins.str"
_PATH_TYPES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath"})
_COLLECTIONS = (ast.List, ast.Tuple, ast.Set)
#: Characters that make a path part more than one last part (or a drive).
_PATH_SPECIAL = frozenset("/\\:")


def may_equal(value: str, literal: str) -> bool:
    """Return whether a known value (encoded as above) may equal ``literal``."""
    kind = value[0]
    if kind == "=":
        return value[1:] == literal
    if kind == "~":
        prefix, _, suffix = value[1:].partition("\0")
        return (
            literal.startswith(prefix)
            and literal.endswith(suffix)
            and len(literal) >= max(len(prefix), len(suffix))
        )
    return False


def absent(values: tuple[str, ...] | None, literal: str) -> bool:
    """Return whether known element values prove ``literal`` is not among them."""
    return values is not None and not any(may_equal(value, literal) for value in values)


def str_literals(node: ast.expr, single: bool) -> tuple[str, ...] | None:
    """Return the string literal(s) ``node`` is, or ``None``.

    One literal, or (unless ``single``) a tuple/list/set literal of them.
    """
    if isinstance(node, ast.Constant):
        return (node.value,) if isinstance(node.value, str) else None
    if single or not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return None
    out = []
    for elt in node.elts:
        if not (isinstance(elt, ast.Constant) and isinstance(elt.value, str)):
            return None
        out.append(elt.value)
    return tuple(out)


def _path_part(node: ast.expr) -> str | None:
    """Return the literal ``name`` of ``/ "name"`` when it is exactly one last part."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    text = node.value
    if text in ("", ".") or any(ch in _PATH_SPECIAL for ch in text):
        return None
    return text


class ModuleConstants:
    """The module constants of one module, found on first use.

    :param tree: the module's AST; :param typer: returns the canonical type of
        a module-level expression (the walker's ``target`` at module level).
    """

    __slots__ = ("_bound", "_candidates", "_tree", "_typer", "_values")

    def __init__(self, tree: ast.Module, typer: Callable[[ast.expr], str | None]) -> None:
        self._tree = tree
        self._typer = typer
        self._bound: dict[str, ast.expr] | None = None
        self._candidates: dict[str, ast.expr] | None = None
        self._values: dict[str, str | None] = {}

    def _top_assigns(self) -> dict[str, ast.expr]:
        """Return name -> value of the module-level ``NAME = v`` (the last one of each name)."""
        found: dict[str, ast.expr] = {}
        for stmt in self._tree.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                found[stmt.targets[0].id] = stmt.value
        return found

    def _scan(self, candidates: dict[str, ast.expr]) -> dict[str, ast.expr]:
        """Return the ``candidates`` bound nowhere else in the module (one walk of it)."""
        counts: dict[str, int] = {}

        def bind(name: str) -> None:
            counts[name] = 2 if name in counts else 1

        for node in ast.walk(self._tree):
            if isinstance(node, ast.Name):
                if not isinstance(node.ctx, ast.Load):
                    bind(node.id)
            elif isinstance(node, ast.arg):
                bind(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name == "*":
                        return {}
                    bind(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                for name in node.names:
                    counts[name] = 2
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
                if node.name:
                    bind(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                bind(node.rest)
        return {name: value for name, value in candidates.items() if counts.get(name) == 1}

    def value(self, name: str) -> str | None:
        """Return the known value of module constant ``name``, or ``None``."""
        if name in self._values:
            return self._values[name]
        if self._candidates is None:
            self._candidates = self._top_assigns()
        if name not in self._candidates:
            return None  # no module-level assignment: no need to walk the module
        if self._bound is None:
            self._bound = self._scan(self._candidates)
        node = self._bound.get(name)
        self._values[name] = None  # a constant defined through itself is unknown
        known = None if node is None else self.known(node, module=True)
        self._values[name] = known
        return known

    def known(self, node: ast.expr, module: bool = False) -> str | None:
        """Return the known value of an expression, or ``None``.

        :param module: ``node`` is a module-level expression, so a call of
            ``str`` and a path are typed at module level; elsewhere only
            literals, f-strings and module constants are known.
        """
        if isinstance(node, ast.Constant):
            return "=" + node.value if isinstance(node.value, str) else NOT_STR
        if isinstance(node, ast.Name):
            return self.value(node.id)
        if isinstance(node, (ast.Tuple, ast.List)):
            return NOT_STR
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            if all(isinstance(part, ast.Constant) for part in parts):
                return "=" + "".join(part.value for part in parts)  # type: ignore[attr-defined]
            head, tail = parts[0], parts[-1]
            prefix = str(head.value) if isinstance(head, ast.Constant) else ""
            suffix = str(tail.value) if isinstance(tail, ast.Constant) else ""
            return None if "\0" in prefix else f"~{prefix}\0{suffix}"
        if (
            module
            and isinstance(node, ast.Call)
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.BinOp)
            and isinstance(node.args[0].op, ast.Div)
            and self._typer(node.func) == _STR
        ):
            path = node.args[0]
            part = _path_part(path.right)
            if part is not None and self._typer(path.left) in _PATH_TYPES:
                return f"~\0{part}"
        return None

    def elements(self, node: ast.expr) -> tuple[str, ...] | None:
        """Return the known values of a list/tuple/set literal's elements, or ``None``."""
        if not isinstance(node, _COLLECTIONS):
            return None
        out = []
        for elt in node.elts:
            known = None if isinstance(elt, ast.Starred) else self.known(elt)
            if known is None:
                return None
            out.append(known)
        return tuple(out)


__all__ = ["NOT_STR", "ModuleConstants", "absent", "may_equal", "str_literals"]
