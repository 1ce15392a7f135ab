"""Names and types in one module, as the per-file walk sees them.

:class:`NameResolver` holds a module's import tables and its typed globals and
answers, at any point of the walk, what an expression names: a bare name
through the enclosing scopes, the module's names and the builtins; an
attribute chain, a call's result (typed by the callee, or by the tables:
``open(p, "rb")``, ``queue.Queue()``, an in-memory SQLite ``connect()``), a
subscript of an annotated mapping and a ``/`` path expression; and what an
annotation names (``Path``, ``list[Path]``, ``dict[str, Path]``,
``Optional[X]``). It is static and local; the linker
(:mod:`asgishift.audit._symbols`) finishes the job across modules.
"""

from __future__ import annotations

import ast

from asgishift.audit._closure import resolve_relative
from asgishift.audit._scope import (
    CONNECT_SUFFIX,
    Scope,
    database_arg,
    file_mode,
    is_memory_name,
    is_sqlite_connect,
    is_unbounded,
)
from asgishift.audit._tables import (
    BINDERS,
    BUILTINS,
    DIV_TYPES,
    ELEMENT_CONTAINERS,
    FILE_TYPES,
    MAPPING_CONTAINERS,
    MEMORY_CONNECTION,
    MEMORY_URI,
    OPENERS,
    PROPERTY_TYPES,
    RETURN_TYPES,
    TRANSPARENT_TYPES,
    TYPE_ALIASES,
    UNBOUNDED_QUEUES,
)

#: Modules imported under another name that are the same module
#: (``import sqlite3.dbapi2 as sqlite3``).
MODULE_ALIASES = {"sqlite3.dbapi2": "sqlite3", "posixpath": "os.path", "ntpath": "os.path"}


class NameResolver:
    """A module's import tables and typed globals, and what an expression names in it.

    The walker (:class:`~asgishift.audit._walk.WalkerBase`) fills the tables
    and moves :attr:`scope` as it enters and leaves functions.

    :param module: dotted module name; :param is_package: the file is an
        ``__init__.py`` (relative imports start from the module itself).
    """

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.aliases: dict[str, str] = {}
        self.module_names: dict[str, str] = {}
        self.imported: set[str] = set()
        # modules of ``from m import *``, in order (the last one binding a name wins)
        self.stars: list[str] = []
        self.uses_flask = False
        self.scope: Scope | None = None
        # module-level names typed as containers: name -> element / value type
        self.module_elements: dict[str, str] = {}

    # ------------------------------------------------------------ imports
    def _import_table(self, stmt: ast.Import | ast.ImportFrom, table: dict[str, str]) -> None:
        """Record the names an import statement binds into ``table``."""
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                self.imported.add(alias.name)
                if alias.asname:
                    table[alias.asname] = MODULE_ALIASES.get(alias.name, alias.name)
                else:
                    head = alias.name.split(".")[0]
                    table[head] = head
            return
        base = (
            resolve_relative(self.module, self.is_package, stmt.level, stmt.module)
            if stmt.level
            else (stmt.module or "")
        )
        if base:
            self.imported.add(base)
        base = MODULE_ALIASES.get(base, base)
        for alias in stmt.names:
            if alias.name == "*":
                # Python allows it only at module level: the names it binds are
                # those of ``base`` (resolved across modules by the linker).
                if base and base not in self.stars:
                    self.stars.append(base)
                continue
            full = f"{base}.{alias.name}" if base else alias.name
            full = MODULE_ALIASES.get(full, full)
            table[alias.asname or alias.name] = full
            self.imported.add(full)
        if base.startswith("flask"):
            self.uses_flask = True

    # ------------------------------------------------------------ names and types
    def resolve_name(self, name: str) -> str | None:
        """Return the canonical target a bare name refers to here, or ``None``."""
        scope = self.scope
        while scope is not None:
            # A local or parameter, also of an enclosing function (read through
            # the closure, as bound when the nested function was defined),
            # hides the module's name: its type, or unknown.
            if name in scope.types:
                return scope.types[name]
            if name in scope.models:
                return scope.models[name][0]
            if name in scope.locals:
                return None
            if name in scope.defs:
                return scope.defs[name]
            if name in scope.imports:
                return scope.imports[name]
            scope = scope.parent
        target = self.module_names.get(name)
        if target is not None:
            return target
        if name in BUILTINS:
            return "builtins." + name
        if self.stars and not name.startswith("_"):
            # Maybe bound by ``from m import *``: the linker looks it up there.
            return f"{self.module}.{name}"
        return None

    def target(self, expr: ast.expr) -> str | None:
        """Return the canonical dotted name of an expression used as a callee/receiver."""
        # Exact classes (the parser makes no subclasses): cheaper than isinstance().
        kind = type(expr)
        if kind is ast.Name:
            return self.resolve_name(expr.id)  # type: ignore[attr-defined]
        if kind is ast.Attribute:
            base = self.target(expr.value)  # type: ignore[attr-defined]
            if base is None:
                return None
            name = f"{base}.{expr.attr}"  # type: ignore[attr-defined]
            return PROPERTY_TYPES.get(name, name)
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr == "format" and is_memory_name(expr):
                return MEMORY_URI
            if isinstance(func, ast.Name) and func.id == "super" and self.scope is not None:
                cls = self.scope.class_qual or self._enclosing_class()
                return f"{cls}.__super__" if cls else None
            base = self.target(func)
            if base is None:
                return None
            if base in BINDERS and expr.args:
                return self.target(expr.args[0])  # calling it calls its first argument
            if base in OPENERS:
                mode = file_mode(expr)
                return FILE_TYPES[mode] if mode is not None else RETURN_TYPES.get(base, base)
            if base in UNBOUNDED_QUEUES and is_unbounded(expr):
                return UNBOUNDED_QUEUES[base]
            if base.endswith(CONNECT_SUFFIX) and self.in_memory(base, expr):
                return MEMORY_CONNECTION
            return RETURN_TYPES.get(base, base)
        if isinstance(expr, ast.Subscript):
            return self._subscript_target(expr)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):
            # ``BASE / "x.json"`` is a path when ``BASE`` is; for anything else
            # the name stays unresolved at link time (errs towards silence).
            left = self.target(expr.left)
            if left is not None and (left in DIV_TYPES or "." in left):
                return left
            return None
        return None

    def in_memory(self, target: str | None, call: ast.Call) -> bool:
        """Return whether ``call`` is a SQLite ``connect()`` of an in-memory database.

        The database is an in-memory name (:func:`is_memory_name`) or a
        variable assigned one in this function (typed :data:`MEMORY_URI`).
        Callers on the hot path test ``target.endswith(CONNECT_SUFFIX)`` first:
        most calls are not ``connect()`` and need no function call to say so.
        """
        if not is_sqlite_connect(target):
            return False
        name = database_arg(call)
        if isinstance(name, ast.Name):
            return self.resolve_name(name.id) == MEMORY_URI
        return name is not None and is_memory_name(name)

    def _subscript_target(self, expr: ast.Subscript) -> str | None:
        """Type ``d[k]`` from an annotated mapping, else the container's own name."""
        return self.mapped_type(expr) or self.target(expr.value)

    def mapped_type(self, expr: ast.Subscript) -> str | None:
        """Return the value type of ``d[k]`` when ``d`` is an annotated mapping, else ``None``."""
        value = expr.value
        if isinstance(value, ast.Name):
            scope = self.scope
            while scope is not None:
                if value.id in scope.values:
                    return scope.values[value.id]
                if value.id in scope.locals:
                    break
                scope = scope.parent
            return self.module_elements.get("values:" + value.id)
        return None

    def annotation(self, node: ast.expr | None) -> tuple[str | None, str | None, str | None]:
        """Return ``(type, element type, value type)`` named by an annotation.

        ``Path`` gives ``("pathlib.Path", None, None)``, ``list[Path]`` gives
        ``(None, "pathlib.Path", None)`` and ``dict[Path, Session]`` gives
        ``(None, "pathlib.Path", "requests.Session")`` (a mapping's elements
        are its keys); ``Optional[X]``/``X | None`` are ``X``. String
        annotations are not read.
        """
        if node is None:
            return None, None, None
        if isinstance(node, (ast.Name, ast.Attribute)):
            typ = self.target(node)
            return (TYPE_ALIASES.get(typ, typ) if typ else None), None, None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            for side in (node.left, node.right):
                if not (isinstance(side, ast.Constant) and side.value is None):
                    return self.annotation(side)
            return None, None, None
        if isinstance(node, ast.Subscript):
            outer = self.target(node.value)
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if outer in TRANSPARENT_TYPES and args:
                return self.annotation(args[0])
            if outer in ELEMENT_CONTAINERS and args:
                return None, self.annotation(args[0])[0], None
            if outer in MAPPING_CONTAINERS and len(args) == 2:
                # iterating a mapping yields its keys: the element type
                return None, self.annotation(args[0])[0], self.annotation(args[1])[0]
        return None, None, None

    def _enclosing_class(self) -> str:
        """Return the class of the nearest enclosing method, or ``""``."""
        scope = self.scope
        while scope is not None:
            if scope.class_qual:
                return scope.class_qual
            scope = scope.parent
        return ""


__all__ = ["MODULE_ALIASES", "NameResolver"]
