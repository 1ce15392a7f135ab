"""Per-file pass of the audit: one AST walk that extracts a compact summary.

The summary (:class:`FileSummary`) holds what the cross-file pass in
:mod:`asgishift.audit.engine` needs and nothing else: the module's import and
alias table, every function with its call sites (targets already rewritten to
canonical dotted names through the import table), the hazards that are decided
by syntax alone (ORM use, lazy QuerySet evaluation), and the few facts the
``ASH3xx``/``ASH4xx`` rules need (thread targets, wrapper calls, discarded
coroutines, middleware shapes). Summaries are plain named tuples of strings and
ints, so they pickle quickly into the per-file cache and across worker
processes; the AST itself is never kept.

Name resolution is deliberately static and local: ``self``/``cls`` inside a
method name the class, a variable assigned from a call is typed by the callee
(``c = Client(); c.fetch()`` gives ``mod.Client.fetch``), parameters are typed
by simple annotations, and ``X().m`` is read as "method ``m`` of an ``X``". The
engine finishes the job across modules (aliases, re-exports, base classes).
"""

from __future__ import annotations

import ast
import builtins
import marshal
import sys
from collections.abc import Iterator
from typing import NamedTuple

from asgishift.audit._closure import resolve_relative

# --------------------------------------------------------------------------- data


#: A call (or a function reference): ``(target, line, col, end_line, end_col)``.
#: ``target`` is the dotted name as far as the file alone can resolve it
#: (``"requests.get"``, ``"shop.helpers.load"``, ``"shop.C.__super__.save"``);
#: lines and columns are 1-based, ``end_col`` is just past the end. Plain
#: tuples (not named tuples) because there are hundreds of thousands of them
#: and plain tuples load from the cache an order of magnitude faster.
Site = tuple[str, int, int, int, int]

#: A hazard found by syntax in one function:
#: ``(code, line, col, end_line, end_col, call, extra, cond)`` where ``call``
#: is the ``call`` message argument, ``extra`` the other message arguments as
#: ``(key, value)`` pairs, and ``cond`` is ``""`` (unconditional),
#: ``"fk:<model>:<attr>"`` (only if ``<attr>`` is a ForeignKey of project
#: model ``<model>``) or ``"tlocal:<target>"`` (only if ``<target>`` resolves
#: to a ``threading.local``).
Hazard = tuple[str, int, int, int, int, str, tuple[tuple[str, str], ...], str]


class FuncSummary(NamedTuple):
    """One function or method.

    :param qualname: module-qualified name (``"shop.views.Checkout.post"``).
    :param decorators: canonical targets of its decorators.
    :param calls: call sites in its body (nested defs and lambdas excluded).
    :param hazards: syntax hazards in its body.
    :param discarded: calls whose result is thrown away (``ASH402``).
    :param thread_targets: function references handed to another thread.
    :param insensitive: references wrapped by ``sync_to_async(...,
        thread_sensitive=False)``.
    :param flask_uses: uses of Flask request globals (``ASH304`` candidates).
    :param is_middleware: a ``def mw(get_response)`` middleware factory.
    """

    qualname: str
    line: int
    col: int
    is_async: bool
    is_generator: bool
    decorators: tuple[str, ...]
    calls: tuple[Site, ...]
    hazards: tuple[Hazard, ...]
    discarded: tuple[Site, ...]
    thread_targets: tuple[Site, ...]
    insensitive: tuple[Site, ...]
    flask_uses: tuple[Hazard, ...]
    is_middleware: bool


class ClassSummary(NamedTuple):
    """One class.

    :param bases: canonical targets of the bases.
    :param members: ``(attribute, type target)`` for attributes assigned from
        calls in the class body or as ``self.x = X()`` in a method.
    :param fk_fields: names of ForeignKey/OneToOneField class attributes.
    :param has_markers: the body sets ``async_capable`` or ``sync_capable``.
    :param is_middleware: ``__init__`` takes ``get_response``.
    """

    qualname: str
    line: int
    col: int
    bases: tuple[str, ...]
    members: tuple[tuple[str, str], ...]
    fk_fields: tuple[str, ...]
    has_markers: bool
    is_middleware: bool


class FileSummary(NamedTuple):
    """Everything the cross-file pass needs from one module.

    :param module: dotted module name.
    :param aliases: module-level ``name -> target``: imports, and globals
        assigned from calls (typed by the callee).
    :param functions: every function and method of the module.
    :param classes: every class of the module.
    :param middleware_refs: string entries of a module-level ``MIDDLEWARE`` list.
    :param marked: module-level names given ``.async_capable``/``.sync_capable``.
    :param imported: every dotted name an import statement of the file names
        (module level or inside functions), for the import closure.
    """

    module: str
    aliases: tuple[tuple[str, str], ...]
    functions: tuple[FuncSummary, ...]
    classes: tuple[ClassSummary, ...]
    middleware_refs: tuple[Site, ...]
    marked: tuple[str, ...]
    imported: tuple[str, ...]


# --------------------------------------------------------------------------- tables

#: Calls that run their function argument somewhere safe (a thread) or make the
#: decorated function awaitable; their arguments are not part of the caller.
SAFE_WRAPPERS = frozenset(
    {
        "asgiref.sync.sync_to_async",
        "asgiref.sync.SyncToAsync",
        "asyncio.to_thread",
        "channels.db.database_sync_to_async",
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "anyio.to_thread.run_sync",
        "asyncio.get_event_loop.run_in_executor",
        "asyncio.get_running_loop.run_in_executor",
        "asyncio.AbstractEventLoop.run_in_executor",
    }
)
_SYNC_TO_ASYNC = frozenset(
    {
        "asgiref.sync.sync_to_async",
        "asgiref.sync.SyncToAsync",
        "channels.db.database_sync_to_async",
    }
)
#: What a call returns when used as a receiver (``conn = sqlite3.connect()``).
RETURN_TYPES = {
    "builtins.open": "io.TextIOWrapper",
    "io.open": "io.TextIOWrapper",
    "pathlib.Path.open": "io.TextIOWrapper",
    "sqlite3.connect": "sqlite3.Connection",
    "sqlite3.Connection.cursor": "sqlite3.Cursor",
    "socket.create_connection": "socket.socket",
    "requests.session": "requests.Session",
    "requests.sessions.Session": "requests.Session",
    "redis.from_url": "redis.Redis",
    "redis.Redis.from_url": "redis.Redis",
    "redis.StrictRedis": "redis.Redis",
    "psycopg2.connect": "psycopg2.extensions.connection",
    "threading.Condition": "threading.Condition",
    "pathlib.Path.resolve": "pathlib.Path",
    "pathlib.Path.absolute": "pathlib.Path",
    "pathlib.Path.with_suffix": "pathlib.Path",
    "pathlib.Path.with_name": "pathlib.Path",
    "pathlib.Path.joinpath": "pathlib.Path",
    "pathlib.Path.expanduser": "pathlib.Path",
    "pathlib.Path.home": "pathlib.Path",
    "pathlib.Path.cwd": "pathlib.Path",
    "pathlib.PurePath": "pathlib.Path",
    "pathlib.PosixPath": "pathlib.Path",
    "asyncio.get_running_loop": "asyncio.get_running_loop",
    "asyncio.events.get_running_loop": "asyncio.get_running_loop",
}
#: What an attribute (property) read gives (``Path(x).parent``).
PROPERTY_TYPES = {
    "pathlib.Path.parent": "pathlib.Path",
    "pathlib.Path.parents": "pathlib.Path",
}
_MANAGER_ATTRS = frozenset({"objects", "_default_manager", "_base_manager"})
#: QuerySet methods returning another QuerySet (no query yet).
_LAZY_QS = frozenset(
    {
        "all",
        "filter",
        "exclude",
        "order_by",
        "select_related",
        "prefetch_related",
        "annotate",
        "alias",
        "distinct",
        "values",
        "values_list",
        "only",
        "defer",
        "using",
        "none",
        "reverse",
        "extra",
        "select_for_update",
        "union",
        "intersection",
        "difference",
        "dates",
        "datetimes",
        "complex_filter",
        "raw",
    }
)
#: QuerySet/Manager methods that run a query; their async twin is ``"a" + name``.
_SYNC_QS = frozenset(
    {
        "get",
        "first",
        "last",
        "latest",
        "earliest",
        "count",
        "exists",
        "create",
        "get_or_create",
        "update_or_create",
        "update",
        "delete",
        "bulk_create",
        "bulk_update",
        "in_bulk",
        "aggregate",
        "iterator",
        "explain",
        "contains",
    }
)
_INSTANCE_SYNC = frozenset({"get", "first", "last", "latest", "earliest", "create"})
_INSTANCE_ASYNC = frozenset({"aget", "afirst", "alast", "alatest", "aearliest", "acreate"})
_MODEL_WRITE = frozenset({"save", "delete", "refresh_from_db"})
_EVALUATORS = frozenset(
    {"builtins.len", "builtins.list", "builtins.bool", "builtins.tuple", "builtins.sorted"}
)
_FK_FIELDS = frozenset({"ForeignKey", "OneToOneField"})
_ATOMIC = "transaction.atomic"
_ASYNC_TO_SYNC = frozenset({"asgiref.sync.async_to_sync", "asgiref.sync.AsyncToSync"})
FLASK_GLOBALS = frozenset({"flask.request", "flask.g", "flask.session"})
_THREAD_STARTERS = frozenset({"threading.Thread", "threading.Timer"})
_BUILTINS = frozenset(dir(builtins))

# --------------------------------------------------------------------------- walker


class _Scope:
    """Mutable state of one function while its body is walked."""

    __slots__ = (
        "calls",
        "class_qual",
        "defs",
        "discarded",
        "flask_uses",
        "hazards",
        "imports",
        "insensitive",
        "is_async",
        "is_generator",
        "locals",
        "models",
        "parent",
        "qualname",
        "querysets",
        "thread_targets",
        "types",
    )

    def __init__(self, qualname: str, is_async: bool, parent: _Scope | None) -> None:
        self.qualname = qualname
        self.is_async = is_async
        self.parent = parent
        self.is_generator = False
        self.class_qual = ""
        self.calls: list[Site] = []
        self.hazards: list[Hazard] = []
        self.discarded: list[Site] = []
        self.thread_targets: list[Site] = []
        self.insensitive: list[Site] = []
        self.flask_uses: list[Hazard] = []
        self.defs: dict[str, str] = {}
        self.imports: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.locals: set[str] = set()
        # variable -> (model target, prefetched?)
        self.querysets: dict[str, tuple[str, bool]] = {}
        self.models: dict[str, tuple[str, bool]] = {}


def _pos(node: ast.expr | ast.stmt) -> tuple[int, int, int, int]:
    """Return 1-based ``(line, col, end_line, end_col)`` of a node."""
    end_line = node.end_lineno or node.lineno
    end_col = (node.end_col_offset if node.end_col_offset is not None else node.col_offset) + 1
    return node.lineno, node.col_offset + 1, end_line, end_col


def _short(expr: ast.expr) -> str:
    """Render a call chain compactly (``Book.objects.filter(...).first``)."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return f"{_short(expr.value)}.{expr.attr}"
    if isinstance(expr, ast.Call):
        return f"{_short(expr.func)}(...)"
    if isinstance(expr, ast.Subscript):
        return f"{_short(expr.value)}[...]"
    return "..."


def _toplevel(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield module-level statements, looking inside ``if``/``try``/``with`` blocks."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from _toplevel(stmt.body)
            yield from _toplevel(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _toplevel(stmt.body)
            for handler in stmt.handlers:
                yield from _toplevel(handler.body)
            yield from _toplevel(stmt.orelse)
            yield from _toplevel(stmt.finalbody)
        elif isinstance(stmt, ast.With):
            yield from _toplevel(stmt.body)
        else:
            yield stmt


class _Extractor:
    """Walk one module's AST once and build its :class:`FileSummary`."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.aliases: dict[str, str] = {}
        self.module_names: dict[str, str] = {}
        self.functions: list[FuncSummary] = []
        self.classes: list[ClassSummary] = []
        self.middleware_refs: list[Site] = []
        self.marked: list[str] = []
        self.imported: set[str] = set()
        self.uses_flask = False
        self.scope: _Scope | None = None
        self._intern = sys.intern
        # class qualname -> members collected from ``self.x = X()`` in methods
        self._members: dict[str, dict[str, str]] = {}
        # ids of ``atomic(...)`` calls whose result wraps a function
        self._decorating: set[int] = set()

    # ------------------------------------------------------------ imports
    def _import_table(self, stmt: ast.Import | ast.ImportFrom, table: dict[str, str]) -> None:
        """Record the names an import statement binds into ``table``."""
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                self.imported.add(alias.name)
                if alias.asname:
                    table[alias.asname] = alias.name
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
        for alias in stmt.names:
            if alias.name == "*":
                continue
            full = f"{base}.{alias.name}" if base else alias.name
            table[alias.asname or alias.name] = full
            self.imported.add(full)
        if base.startswith("flask"):
            self.uses_flask = True

    # ------------------------------------------------------------ names
    def resolve_name(self, name: str) -> str | None:
        """Return the canonical target a bare name refers to here, or ``None``."""
        scope = self.scope
        first = True
        while scope is not None:
            if first:
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
            first = False
        target = self.module_names.get(name)
        if target is not None:
            return target
        if name in _BUILTINS:
            return "builtins." + name
        return None

    def target(self, expr: ast.expr) -> str | None:
        """Return the canonical dotted name of an expression used as a callee/receiver."""
        if isinstance(expr, ast.Name):
            return self.resolve_name(expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.target(expr.value)
            if base is None:
                return None
            name = f"{base}.{expr.attr}"
            return PROPERTY_TYPES.get(name, name)
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Name) and func.id == "super" and self.scope is not None:
                cls = self.scope.class_qual or self._enclosing_class()
                return f"{cls}.__super__" if cls else None
            base = self.target(func)
            if base is None:
                return None
            return RETURN_TYPES.get(base, base)
        if isinstance(expr, ast.Subscript):
            return self.target(expr.value)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):
            left = self.target(expr.left)
            return left if left == "pathlib.Path" else None
        return None

    def _enclosing_class(self) -> str:
        """Return the class of the nearest enclosing method, or ``""``."""
        scope = self.scope
        while scope is not None:
            if scope.class_qual:
                return scope.class_qual
            scope = scope.parent
        return ""

    # ------------------------------------------------------------ ORM shapes
    def queryset(self, expr: ast.expr) -> tuple[str, bool] | None:
        """Return ``(model target, prefetched)`` if ``expr`` is a Manager/QuerySet."""
        if isinstance(expr, ast.Attribute):
            if expr.attr in _MANAGER_ATTRS:
                return self.target(expr.value) or _short(expr.value), False
            return None
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr in _LAZY_QS:
                inner = self.queryset(func.value)
                if inner is not None:
                    pref = inner[1] or func.attr in ("select_related", "prefetch_related")
                    return inner[0], pref
            return None
        if isinstance(expr, ast.Name) and self.scope is not None:
            return self.scope.querysets.get(expr.id)
        return None

    def instance(self, expr: ast.expr) -> tuple[str, bool] | None:
        """Return ``(model target, prefetched)`` if ``expr`` yields a model instance."""
        if isinstance(expr, ast.Await):
            call = expr.value
            names = _INSTANCE_ASYNC
        else:
            call = expr
            names = _INSTANCE_SYNC
        if isinstance(call, ast.Call):
            func = call.func
            if isinstance(func, ast.Attribute) and func.attr in names:
                return self.queryset(func.value)
        if isinstance(expr, ast.Name) and self.scope is not None:
            return self.scope.models.get(expr.id)
        return None

    # ------------------------------------------------------------ hazards
    def _hazard(
        self,
        code: str,
        node: ast.expr | ast.stmt,
        call: str,
        extra: tuple[tuple[str, str], ...] = (),
        cond: str = "",
    ) -> None:
        """Record a syntax hazard in the current function."""
        if self.scope is None:
            return
        line, col, end_line, end_col = _pos(node)
        self.scope.hazards.append((code, line, col, end_line, end_col, call, extra, cond))

    def _site(self, target: str, node: ast.expr | ast.stmt) -> Site:
        """Build a :class:`Site` for ``node``."""
        line, col, end_line, end_col = _pos(node)
        return (self._intern(target), line, col, end_line, end_col)

    # ------------------------------------------------------------ module
    def run(self, tree: ast.Module) -> FileSummary:
        """Walk the module and return its summary."""
        mod = self.module
        for stmt in _toplevel(tree.body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self._import_table(stmt, self.aliases)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.module_names[stmt.name] = f"{mod}.{stmt.name}"
        self.module_names.update(self.aliases)
        # Globals assigned from a call are typed by the callee, e.g.
        # ``LOCK = threading.Lock()`` or ``_state = threading.local()``.
        for stmt in _toplevel(tree.body):
            if isinstance(stmt, ast.Assign):
                self._module_assign(stmt)
            elif (
                isinstance(stmt, ast.AnnAssign)
                and stmt.value is not None
                and isinstance(stmt.target, ast.Name)
            ):
                self._module_assign(ast.Assign(targets=[stmt.target], value=stmt.value))
        for stmt in _toplevel(tree.body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(stmt, f"{mod}.{stmt.name}", "", None)
            elif isinstance(stmt, ast.ClassDef):
                self._class(stmt, f"{mod}.{stmt.name}", None)
        for qual, members in self._members.items():
            for i, cls in enumerate(self.classes):
                if cls.qualname == qual:
                    merged = dict(members)
                    merged.update(cls.members)
                    self.classes[i] = cls._replace(members=tuple(sorted(merged.items())))
        return FileSummary(
            module=mod,
            aliases=tuple(sorted(self.aliases.items())),
            functions=tuple(self.functions),
            classes=tuple(self.classes),
            middleware_refs=tuple(self.middleware_refs),
            marked=tuple(self.marked),
            imported=tuple(sorted(self.imported)),
        )

    def _module_assign(self, stmt: ast.Assign) -> None:
        """Type module globals assigned from calls; read MIDDLEWARE lists and markers."""
        value = stmt.value
        for tgt in stmt.targets:
            if isinstance(tgt, ast.Name):
                if isinstance(value, ast.Call):
                    typ = self.target(value)
                    if typ is not None and tgt.id not in self.aliases:
                        self.aliases[tgt.id] = typ
                        self.module_names.setdefault(tgt.id, typ)
                elif tgt.id == "MIDDLEWARE" and isinstance(value, (ast.List, ast.Tuple)):
                    for elt in value.elts:
                        if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                            self.middleware_refs.append(self._site(elt.value, elt))
                elif tgt.id not in self.module_names:
                    self.module_names[tgt.id] = f"{self.module}.{tgt.id}"
            elif (
                isinstance(tgt, ast.Attribute)
                and tgt.attr in ("async_capable", "sync_capable")
                and isinstance(tgt.value, ast.Name)
            ):
                self.marked.append(tgt.value.id)

    # ------------------------------------------------------------ classes
    def _class(self, node: ast.ClassDef, qual: str, parent: _Scope | None) -> None:
        """Summarise a class and walk its methods."""
        saved = self.scope
        self.scope = parent
        bases = tuple(
            t for t in (self.target(b) for b in node.bases) if t and t != "builtins.object"
        )
        members: dict[str, str] = {}
        fk_fields: list[str] = []
        has_markers = False
        is_middleware = False
        inner: dict[str, str] = {}
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner[stmt.name] = f"{qual}.{stmt.name}"
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if stmt.name == "__init__":
                    names = [a.arg for a in stmt.args.args]
                    is_middleware = names[1:2] == ["get_response"]
                self._function(stmt, f"{qual}.{stmt.name}", qual, parent)
            elif isinstance(stmt, ast.ClassDef):
                self._class(stmt, f"{qual}.{stmt.name}", parent)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                value = stmt.value
                for tgt in targets:
                    if not isinstance(tgt, ast.Name):
                        continue
                    if tgt.id in ("async_capable", "sync_capable"):
                        has_markers = True
                    if isinstance(value, ast.Call):
                        typ = self.target(value)
                        if typ is not None:
                            members[tgt.id] = typ
                            if typ.rsplit(".", 1)[-1] in _FK_FIELDS:
                                fk_fields.append(tgt.id)
        self.scope = saved
        self.classes.append(
            ClassSummary(
                qualname=qual,
                line=node.lineno,
                col=node.col_offset + 1,
                bases=bases,
                members=tuple(sorted(members.items())),
                fk_fields=tuple(fk_fields),
                has_markers=has_markers,
                is_middleware=is_middleware,
            )
        )

    # ------------------------------------------------------------ functions
    def _function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
        qual: str,
        class_qual: str,
        parent: _Scope | None,
    ) -> str:
        """Walk one function body in a fresh scope and record its summary."""
        is_async = isinstance(node, ast.AsyncFunctionDef)
        scope = _Scope(qual, is_async, parent)
        saved = self.scope
        decorators: list[str] = []
        if not isinstance(node, ast.Lambda):
            self.scope = parent
            for dec in node.decorator_list:
                dec_target = self.target(dec)
                if dec_target is not None:
                    decorators.append(self._intern(dec_target))
                    if is_async and dec_target.endswith(_ATOMIC):
                        line, col, end_line, end_col = _pos(dec)
                        scope.hazards.append(
                            ("ASH205", line, col, end_line, end_col, dec_target, (), "")
                        )
                if isinstance(dec, ast.Call):
                    self._insensitive_decorator(dec, dec_target, qual, scope)
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if args.vararg:
            params.append(args.vararg)
        if args.kwarg:
            params.append(args.kwarg)
        self.scope = scope
        is_static = "builtins.staticmethod" in decorators
        for i, arg in enumerate(params):
            scope.locals.add(arg.arg)
            if i == 0 and class_qual and not is_static:
                scope.types[arg.arg] = class_qual
            elif arg.annotation is not None and isinstance(
                arg.annotation, (ast.Name, ast.Attribute)
            ):
                typ = self.target(arg.annotation)
                if typ is not None:
                    scope.types[arg.arg] = typ
        if class_qual:
            scope.class_qual = class_qual
        is_middleware = False
        if isinstance(node, ast.Lambda):
            self.expr(node.body)
        else:
            # Nested defs are visible before their statement runs (calls after it).
            for stmt in node.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    scope.defs[stmt.name] = f"{qual}.{stmt.name}"
            for stmt in node.body:
                self.stmt(stmt)
            is_middleware = (
                not class_qual
                and [p.arg for p in params] == ["get_response"]
                and any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) for s in node.body)
            )
        self.scope = saved
        self.functions.append(
            FuncSummary(
                qualname=self._intern(qual),
                line=node.lineno,
                col=node.col_offset + 1,
                is_async=is_async,
                is_generator=scope.is_generator,
                decorators=tuple(decorators),
                calls=tuple(scope.calls),
                hazards=tuple(scope.hazards),
                discarded=tuple(scope.discarded),
                thread_targets=tuple(scope.thread_targets),
                insensitive=tuple(scope.insensitive),
                flask_uses=tuple(scope.flask_uses),
                is_middleware=is_middleware,
            )
        )
        return qual

    def _insensitive_decorator(
        self, dec: ast.Call, dec_target: str | None, qual: str, scope: _Scope
    ) -> None:
        """Record ``@sync_to_async(thread_sensitive=False)`` on ``qual``."""
        if dec_target not in _SYNC_TO_ASYNC:
            return
        for kw in dec.keywords:
            if kw.arg == "thread_sensitive" and _is_false(kw.value):
                scope.insensitive.append(self._site(qual, dec))

    # ------------------------------------------------------------ statements
    def stmt(self, node: ast.stmt) -> None:
        """Walk one statement inside a function body."""
        scope = self.scope
        assert scope is not None
        kind = type(node)
        if kind is ast.Expr:
            value = node.value  # type: ignore[attr-defined]
            if isinstance(value, ast.Call):
                target = self.target(value.func)
                if target is not None:
                    scope.discarded.append(self._site(target, value))
            self.expr(value)
        elif kind is ast.Assign or kind is ast.AnnAssign:
            value = node.value  # type: ignore[attr-defined]
            if value is not None:
                self.expr(value)
            targets = node.targets if kind is ast.Assign else [node.target]  # type: ignore[attr-defined]
            for tgt in targets:
                self._bind(tgt, value)
        elif kind is ast.AugAssign:
            self.expr(node.value)  # type: ignore[attr-defined]
        elif kind is ast.Return:
            if node.value is not None:  # type: ignore[attr-defined]
                self.expr(node.value)  # type: ignore[attr-defined]
        elif kind is ast.For or kind is ast.AsyncFor:
            loop: ast.For | ast.AsyncFor = node  # type: ignore[assignment]
            self.expr(loop.iter)
            qs = self.queryset(loop.iter)
            if qs is not None:
                if kind is ast.For:
                    self._hazard("ASH202", loop.iter, "iteration (for ... in queryset)")
                if isinstance(loop.target, ast.Name):
                    scope.models[loop.target.id] = qs
                    scope.locals.add(loop.target.id)
            else:
                self._bind(loop.target, None)
            for sub in loop.body:
                self.stmt(sub)
            for sub in loop.orelse:
                self.stmt(sub)
        elif kind is ast.If or kind is ast.While:
            test = node.test  # type: ignore[attr-defined]
            self.expr(test)
            if self.queryset(test) is not None:
                self._hazard("ASH202", test, "truth test (if queryset)")
            for sub in node.body:  # type: ignore[attr-defined]
                self.stmt(sub)
            for sub in node.orelse:  # type: ignore[attr-defined]
                self.stmt(sub)
        elif kind is ast.With or kind is ast.AsyncWith:
            block: ast.With | ast.AsyncWith = node  # type: ignore[assignment]
            for item in block.items:
                ctx = item.context_expr
                self.expr(ctx)
                if kind is ast.With and isinstance(ctx, (ast.Name, ast.Attribute)):
                    # ``with lock:`` acquires it.
                    base = self.target(ctx)
                    if base is not None:
                        scope.calls.append(self._site(base + ".acquire", ctx))
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, ctx)
            for sub in block.body:
                self.stmt(sub)
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            fn: ast.FunctionDef | ast.AsyncFunctionDef = node  # type: ignore[assignment]
            scope.defs[fn.name] = self._function(fn, f"{scope.qualname}.{fn.name}", "", scope)
        elif kind is ast.ClassDef:
            cls: ast.ClassDef = node  # type: ignore[assignment]
            qual = f"{scope.qualname}.{cls.name}"
            scope.defs[cls.name] = qual
            self._class(cls, qual, scope)
        elif kind is ast.Import or kind is ast.ImportFrom:
            self._import_table(node, scope.imports)  # type: ignore[arg-type]
        elif kind is ast.Try or (sys.version_info >= (3, 11) and kind is ast.TryStar):
            for sub in node.body:  # type: ignore[attr-defined]
                self.stmt(sub)
            for handler in node.handlers:  # type: ignore[attr-defined]
                for sub in handler.body:
                    self.stmt(sub)
            for sub in node.orelse:  # type: ignore[attr-defined]
                self.stmt(sub)
            for sub in node.finalbody:  # type: ignore[attr-defined]
                self.stmt(sub)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self.stmt(child)
                elif isinstance(child, ast.expr):
                    self.expr(child)

    def _bind(self, tgt: ast.expr, value: ast.expr | None) -> None:
        """Update variable typing after ``tgt = value``."""
        scope = self.scope
        assert scope is not None
        if isinstance(tgt, ast.Name):
            name = tgt.id
            scope.locals.add(name)
            scope.types.pop(name, None)
            scope.querysets.pop(name, None)
            scope.models.pop(name, None)
            if value is None:
                return
            qs = self.queryset(value)
            if qs is not None:
                scope.querysets[name] = qs
                return
            inst = self.instance(value)
            if inst is not None:
                scope.models[name] = inst
                return
            if isinstance(value, ast.Await):
                return
            if isinstance(value, (ast.Call, ast.Name, ast.Attribute)):
                typ = self.target(value)
                if typ is not None and (isinstance(value, ast.Call) or typ in RETURN_TYPES):
                    scope.types[name] = typ
        elif isinstance(tgt, ast.Attribute):
            if (
                isinstance(tgt.value, ast.Name)
                and scope.class_qual
                and scope.types.get(tgt.value.id) == scope.class_qual
                and isinstance(value, ast.Call)
            ):
                typ = self.target(value)
                if typ is not None:
                    self._members.setdefault(scope.class_qual, {}).setdefault(tgt.attr, typ)
        elif isinstance(tgt, (ast.Tuple, ast.List)):
            for elt in tgt.elts:
                self._bind(elt, None)
        elif isinstance(tgt, ast.Starred):
            self._bind(tgt.value, None)

    # ------------------------------------------------------------ expressions
    def expr(self, node: ast.expr) -> None:
        """Walk one expression inside a function body."""
        kind = type(node)
        if kind is ast.Call:
            self._call(node)  # type: ignore[arg-type]
        elif kind is ast.Attribute:
            self._attribute(node)  # type: ignore[arg-type]
        elif kind is ast.Name:
            if self.uses_flask and isinstance(node.ctx, ast.Load):  # type: ignore[attr-defined]
                target = self.resolve_name(node.id)  # type: ignore[attr-defined]
                if target in FLASK_GLOBALS:
                    self._flask_use(target, node)
        elif kind is ast.Constant:
            return
        elif (
            kind is ast.ListComp
            or kind is ast.SetComp
            or kind is ast.GeneratorExp
            or kind is ast.DictComp
        ):
            comp: ast.ListComp = node  # type: ignore[assignment]
            for gen in comp.generators:
                self.expr(gen.iter)
                qs = self.queryset(gen.iter)
                if qs is not None and not gen.is_async:
                    self._hazard("ASH202", gen.iter, "iteration (comprehension over queryset)")
                for cond in gen.ifs:
                    self.expr(cond)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
        elif kind is ast.Subscript:
            sub: ast.Subscript = node  # type: ignore[assignment]
            self.expr(sub.value)
            self.expr(sub.slice)
            if (
                isinstance(sub.slice, ast.Slice)
                and sub.slice.step is not None
                and self.queryset(sub.value) is not None
            ):
                self._hazard("ASH202", sub, "slicing with a step")
        elif kind is ast.UnaryOp:
            operand = node.operand  # type: ignore[attr-defined]
            self.expr(operand)
            if isinstance(node.op, ast.Not) and self.queryset(operand) is not None:  # type: ignore[attr-defined]
                self._hazard("ASH202", operand, "truth test (not queryset)")
        elif kind is ast.Lambda:
            self.expr(node.body)  # type: ignore[attr-defined]
        elif kind is ast.Yield or kind is ast.YieldFrom:
            if self.scope is not None:
                self.scope.is_generator = True
            value = node.value  # type: ignore[attr-defined]
            if value is not None:
                self.expr(value)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
                elif isinstance(child, ast.comprehension):  # pragma: no cover - handled above
                    self.expr(child.iter)

    def _flask_use(self, target: str, node: ast.expr) -> None:
        """Record a use of a Flask request global."""
        if self.scope is None:
            return
        line, col, end_line, end_col = _pos(node)
        self.scope.flask_uses.append(("ASH304", line, col, end_line, end_col, target, (), ""))

    def _attribute(self, node: ast.Attribute) -> None:
        """Walk an attribute load: foreign keys, thread-locals, Flask globals."""
        scope = self.scope
        value = node.value
        if isinstance(value, ast.Name) and scope is not None:
            name = value.id
            model = scope.models.get(name)
            if model is not None:
                if not model[1] and not node.attr.startswith("_"):
                    self._hazard(
                        "ASH203",
                        node,
                        f"{name}.{node.attr}",
                        (("field", node.attr),),
                        f"fk:{model[0]}:{node.attr}",
                    )
            elif scope.is_async and name not in scope.locals and name not in scope.types:
                target = self.resolve_name(name)
                if target is not None and not target.startswith("builtins."):
                    self._hazard("ASH303", node, f"{name}.{node.attr}", (), f"tlocal:{target}")
        if self.uses_flask and isinstance(value, ast.Name):
            target = self.resolve_name(value.id)
            if target is not None and f"{target}.{node.attr}" in FLASK_GLOBALS:
                self._flask_use(f"{target}.{node.attr}", node)
        self.expr(value)

    def _call(self, node: ast.Call) -> None:
        """Walk a call: record its site and the syntax hazards it forms."""
        scope = self.scope
        assert scope is not None
        func = node.func
        target = self.target(func)
        if target in SAFE_WRAPPERS and not isinstance(func, ast.Call):
            self._wrapper_call(node, target)
            return
        if target is not None and id(node) not in self._decorating:
            if target in _ASYNC_TO_SYNC and not isinstance(func, ast.Call):
                # Building the wrapper is harmless; calling it (recorded on the
                # enclosing ``async_to_sync(f)(...)`` call) is the hazard.
                pass
            elif target.endswith(_ATOMIC) and node.args:
                # ``atomic(view)`` / ``atomic(using=db)(view)`` only wraps a
                # function; the transaction starts when the wrapper is called.
                if isinstance(func, ast.Call):
                    self._decorating.add(id(func))
            else:
                scope.calls.append(self._site(target, node))
        if isinstance(func, ast.Attribute):
            attr = func.attr
            if attr in _SYNC_QS and self.queryset(func.value) is not None:
                self._hazard("ASH201", node, _short(func), (("async_call", "a" + attr),))
            elif attr in _MODEL_WRITE:
                inst = self.instance(func.value)
                if inst is not None:
                    self._hazard("ASH204", node, _short(func), (("method", attr),))
            elif attr in ("submit", "run_in_executor") and node.args:
                index = 1 if attr == "run_in_executor" else 0
                if len(node.args) > index:
                    self._thread_target(node.args[index], node)
            self.expr(func.value)
        elif not isinstance(func, ast.Name):
            self.expr(func)
        if target in _EVALUATORS and node.args and self.queryset(node.args[0]) is not None:
            self._hazard("ASH202", node, f"{str(target).removeprefix('builtins.')}()")
        if target in _THREAD_STARTERS:
            for kw in node.keywords:
                if kw.arg == "target":
                    self._thread_target(kw.value, node)
            if target == "threading.Timer" and len(node.args) > 1:
                self._thread_target(node.args[1], node)
        for arg in node.args:
            self.expr(arg)
        for kw in node.keywords:
            self.expr(kw.value)

    def _thread_target(self, ref: ast.expr, call: ast.Call) -> None:
        """Record a function reference that runs in another thread."""
        if isinstance(ref, (ast.Name, ast.Attribute)) and self.scope is not None:
            target = self.target(ref)
            if target is not None:
                self.scope.thread_targets.append(self._site(target, call))

    def _wrapper_call(self, node: ast.Call, target: str) -> None:
        """Walk ``sync_to_async(f)``-style calls: the wrapped code is not ours."""
        scope = self.scope
        assert scope is not None
        insensitive = target in _SYNC_TO_ASYNC and any(
            kw.arg == "thread_sensitive" and _is_false(kw.value) for kw in node.keywords
        )
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Lambda):
                qual = f"{scope.qualname}.<lambda:{arg.lineno}:{arg.col_offset}>"
                self._function(arg, qual, "", scope)
                if insensitive and i == 0:
                    scope.insensitive.append(self._site(qual, node))
            elif isinstance(arg, (ast.Name, ast.Attribute)):
                if insensitive and i == 0:
                    ref = self.target(arg)
                    if ref is not None:
                        scope.insensitive.append(self._site(ref, node))
                if isinstance(arg, ast.Attribute):
                    self.expr(arg.value)
            else:
                self.expr(arg)
        for kw in node.keywords:
            self.expr(kw.value)
        if isinstance(node.func, ast.Attribute):
            self.expr(node.func.value)


def _is_false(node: ast.expr) -> bool:
    """Return whether ``node`` is the literal ``False``."""
    return isinstance(node, ast.Constant) and node.value is False


class FuncInfo(NamedTuple):
    """The always-loaded part of a :class:`FuncSummary` (see :class:`FileIndex`).

    :param slot: position of the function's body in the file's body tuple.
    """

    qualname: str
    line: int
    col: int
    is_async: bool
    is_generator: bool
    decorators: tuple[str, ...]
    thread_targets: tuple[Site, ...]
    insensitive: tuple[Site, ...]
    is_middleware: bool
    slot: int


#: The bulky part of a function, decoded only when the function is reached:
#: ``(calls, hazards, discarded, flask_uses)``.
Body = tuple[tuple[Site, ...], tuple[Hazard, ...], tuple[Site, ...], tuple[Hazard, ...]]


class FileIndex(NamedTuple):
    """The always-loaded part of a :class:`FileSummary`.

    Call sites and hazards (most of a summary's weight) stay marshalled in the
    file's body bytes until the linker reaches one of its functions: on a
    large project only a few percent of the files are reached from async code.

    :param discard_names: last components of the targets of discarded calls,
        so the ``ASH402`` check decodes only bodies that may discard a coroutine.
    """

    module: str
    aliases: tuple[tuple[str, str], ...]
    functions: tuple[FuncInfo, ...]
    classes: tuple[ClassSummary, ...]
    middleware_refs: tuple[Site, ...]
    marked: tuple[str, ...]
    discard_names: tuple[str, ...]
    imported: tuple[str, ...]


#: A summary as stored in the cache and sent back by workers: the index as
#: plain tuples, and the marshalled bodies.
PlainSummary = tuple[tuple[object, ...], bytes]


def to_plain(summary: FileSummary) -> PlainSummary:
    """Split a summary into a plain-tuple index and marshalled bodies."""
    funcs = []
    bodies = []
    names: set[str] = set()
    for slot, f in enumerate(summary.functions):
        funcs.append(
            (
                f.qualname,
                f.line,
                f.col,
                f.is_async,
                f.is_generator,
                f.decorators,
                f.thread_targets,
                f.insensitive,
                f.is_middleware,
                slot,
            )
        )
        bodies.append((f.calls, f.hazards, f.discarded, f.flask_uses))
        names.update(site[0].rsplit(".", 1)[-1] for site in f.discarded)
    index = (
        summary.module,
        summary.aliases,
        tuple(funcs),
        tuple(tuple(c) for c in summary.classes),
        summary.middleware_refs,
        summary.marked,
        tuple(sorted(names)),
        summary.imported,
    )
    return index, marshal.dumps(tuple(bodies))


def from_plain(plain: PlainSummary) -> tuple[FileIndex, bytes]:
    """Rebuild the index of :func:`to_plain` output; bodies stay marshalled."""
    index = plain[0]
    make_func = FuncInfo._make
    make_class = ClassSummary._make
    return (
        FileIndex(
            index[0],  # type: ignore[arg-type]
            index[1],  # type: ignore[arg-type]
            tuple(make_func(f) for f in index[2]),  # type: ignore[attr-defined]
            tuple(make_class(c) for c in index[3]),  # type: ignore[attr-defined]
            index[4],  # type: ignore[arg-type]
            index[5],  # type: ignore[arg-type]
            index[6],  # type: ignore[arg-type]
            index[7],  # type: ignore[arg-type]
        ),
        plain[1],
    )


def decode_bodies(data: bytes) -> tuple[Body, ...]:
    """Decode the marshalled bodies of one file (see :func:`to_plain`)."""
    bodies: tuple[Body, ...] = marshal.loads(data)
    return bodies


def summarize(tree: ast.Module, module: str, is_package: bool) -> FileSummary:
    """Extract the summary of one parsed module.

    :param tree: the module's AST.
    :param module: its dotted module name (``"shop.views"``).
    :param is_package: the file is a package's ``__init__.py`` (relative
        imports resolve against the package itself).
    :return: the :class:`FileSummary`.
    """
    return _Extractor(module, is_package).run(tree)


__all__ = [
    "FLASK_GLOBALS",
    "RETURN_TYPES",
    "SAFE_WRAPPERS",
    "Body",
    "ClassSummary",
    "FileIndex",
    "FileSummary",
    "FuncInfo",
    "FuncSummary",
    "Hazard",
    "PlainSummary",
    "Site",
    "decode_bodies",
    "from_plain",
    "resolve_relative",
    "summarize",
    "to_plain",
]
