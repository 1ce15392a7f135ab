"""What a loop or comprehension variable holds, from the annotated container it runs over.

``for path in paths`` with ``paths: list[Path]`` makes ``path`` a
``pathlib.Path``, so ``path.stat()`` is a file-system query. This module
reads the iterable of a ``for`` loop or a comprehension's ``for`` clause and
returns its *shape*: the type of each item (a dotted name), a tuple of shapes
for items that are tuples (``d.items()``, ``enumerate(xs)``, ``zip(a, b)``),
or ``None`` when the items are unknown. :func:`target_types` then pairs the
loop's target (``path``, ``key, path``, ``i, (key, path)``) with that shape.

The containers are those typed by an annotation the walker read
(:meth:`~asgishift.audit._walk_names.NameResolver.annotation`): ``list[X]``,
``set[X]``, ``tuple[X, ...]`` and friends iterate over ``X``; a mapping
``dict[K, V]`` iterates over ``K``, its ``.keys()`` over ``K``, its
``.values()`` over ``V`` and its ``.items()`` over ``(K, V)``. ``sorted``,
``reversed``, ``list``, ``tuple``, ``set`` and ``frozenset`` keep the items;
``enumerate`` pairs them with an ``int``; ``zip`` pairs up several. Anything
else is unknown: the audit errs towards silence.

Pure functions over the walker's public state: no AST is changed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from asgishift.audit._scope import Scope
    from asgishift.audit._walk import WalkerBase

__all__ = ["ComprehensionNames", "Shape", "iter_shape", "target_types"]

#: The type of one item: a dotted type name, a tuple of item shapes, or unknown.
Shape: TypeAlias = str | tuple["Shape", ...] | None

#: Builtins whose result iterates over the same items as their first argument.
_SAME_ITEMS: Final = frozenset(
    {
        "builtins.sorted",
        "builtins.reversed",
        "builtins.list",
        "builtins.tuple",
        "builtins.set",
        "builtins.frozenset",
        "builtins.iter",
    }
)

#: The ``Path`` methods that yield paths.
_PATH_LISTINGS: Final = frozenset({"glob", "rglob", "iterdir"})


def _lookup(walker: WalkerBase, name: str, table: str) -> str | None:
    """Return ``name``'s entry in the scopes' ``table`` (``elements`` or ``values``).

    A local of an inner scope that is not in its table hides the outer ones;
    module-level containers come last (``values:NAME`` for a mapping's values).
    """
    scope = walker.scope
    while scope is not None:
        entries: dict[str, str] = getattr(scope, table)
        if name in entries:
            return entries[name]
        if name in scope.locals:
            return None
        scope = scope.parent
    key = name if table == "elements" else f"values:{name}"
    return walker.module_elements.get(key)


def iter_shape(walker: WalkerBase, iterable: ast.expr) -> Shape:
    """Return the shape of the items ``iterable`` yields, or ``None`` when unknown.

    :param walker: the walker, positioned in the function that iterates.
    :param iterable: the expression after ``in``.
    :return: a dotted type name, a tuple of shapes (one per tuple item), or
        ``None``.
    """
    if isinstance(iterable, ast.Name):
        return _lookup(walker, iterable.id, "elements")
    if not isinstance(iterable, ast.Call):
        return None
    func = iterable.func
    if isinstance(func, ast.Attribute):
        receiver = func.value
        if func.attr in _PATH_LISTINGS:
            return "pathlib.Path" if walker.target(receiver) == "pathlib.Path" else None
        if (
            func.attr in ("keys", "values", "items")
            and isinstance(receiver, ast.Name)
            and not iterable.args
            and not iterable.keywords
        ):
            values = _lookup(walker, receiver.id, "values")
            if values is None:
                return None  # not an annotated mapping
            keys = _lookup(walker, receiver.id, "elements")
            if func.attr == "keys":
                return keys
            if func.attr == "values":
                return values
            return (keys, values)
        return None
    if not isinstance(func, ast.Name):
        return None
    builtin = walker.target(func)
    args = iterable.args
    if builtin in _SAME_ITEMS and len(args) == 1:
        return iter_shape(walker, args[0])
    if builtin == "builtins.enumerate" and args:
        return ("builtins.int", iter_shape(walker, args[0]))
    if builtin == "builtins.zip" and args and not any(type(a) is ast.Starred for a in args):
        return tuple(iter_shape(walker, arg) for arg in args)
    return None


def target_types(target: ast.expr, shape: Shape) -> Iterator[tuple[str, str]]:
    """Yield ``(name, type)`` for each name of a loop target whose item type is known.

    :param target: the loop target (a name, or a tuple/list of targets).
    :param shape: what :func:`iter_shape` returned for the iterable.
    :return: pairs for the names that get a type; a target whose form does not
        match the shape (``a, b`` over single items, a starred name) gets none.
    """
    if shape is None:
        return
    if isinstance(target, ast.Name):
        if isinstance(shape, str):
            yield target.id, shape
        return
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(shape, tuple):
        if len(target.elts) != len(shape) or any(type(elt) is ast.Starred for elt in target.elts):
            return
        for elt, item in zip(target.elts, shape, strict=True):
            yield from target_types(elt, item)


#: The per-name tables of a :class:`~asgishift.audit._scope.Scope` that a
#: comprehension variable hides while the comprehension runs.
_NAME_TABLES: Final = ("types", "models", "querysets", "elements", "values")

#: Marks a name that had no entry in a table.
_MISSING: Final = object()


class ComprehensionNames:
    """The names a comprehension binds, hidden from the function around it.

    A comprehension's variables live in its own scope: ``[p.get("id") for p
    in rows]`` does not read the function's ``p = requests.Session()``. While
    the comprehension is walked its variables are locals of unknown type
    (typed from their iterable by :func:`iter_shape` where it can);
    :meth:`restore` puts back what the function had under those names.

    :param scope: the function's :class:`~asgishift.audit._scope.Scope`.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        # name -> (its entry in each of _NAME_TABLES, was a local, was an object ref)
        self.saved: dict[str, tuple[tuple[object, ...], bool, bool]] = {}

    def bind(self, target: ast.expr, shape: Shape) -> None:
        """Hide the names of ``target`` (one ``for`` clause's) and type them from ``shape``."""
        scope = self.scope
        for node in ast.walk(target):
            if not isinstance(node, ast.Name) or not isinstance(node.ctx, ast.Store):
                continue  # ``for obj.attr in ...`` binds no name (``obj`` is read)
            name = node.id
            if name not in self.saved:
                entries = tuple(getattr(scope, t).pop(name, _MISSING) for t in _NAME_TABLES)
                refs = scope.object_refs is not None and name in scope.object_refs
                self.saved[name] = (entries, name in scope.locals, refs)
            else:
                for table in _NAME_TABLES:
                    getattr(scope, table).pop(name, None)
            scope.locals.add(name)
            if scope.object_refs:
                scope.object_refs.discard(name)
        for name, item in target_types(target, shape):
            scope.types[name] = item

    def restore(self) -> None:
        """Give the function back what it had under the comprehension's names."""
        scope = self.scope
        for name, (entries, was_local, was_ref) in self.saved.items():
            for table, entry in zip(_NAME_TABLES, entries, strict=True):
                mapping = getattr(scope, table)
                if entry is _MISSING:
                    mapping.pop(name, None)
                else:
                    mapping[name] = entry
            if not was_local:
                scope.locals.discard(name)
            if was_ref:
                assert scope.object_refs is not None
                scope.object_refs.add(name)
