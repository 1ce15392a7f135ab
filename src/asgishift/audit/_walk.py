"""The per-file pass of the audit: one AST walk that builds a module's summary.

The walker knows Python, not rules: scopes, imports, names and the types of
variables (``c = Client(); c.fetch()`` gives ``mod.Client.fetch``). At each
event a rule cares about (a call, an attribute read, a loop, a truth test, a
subscript, a binding, a decorator) it calls the hooks of every rule family
(:class:`Hooks`, assembled by :mod:`asgishift.audit.rules`), which record
hazards through :meth:`Walker.hazard`. The result is a
:class:`~asgishift.audit._records.FileSummary`; the AST itself is never kept.

Name resolution is static and local: ``self``/``cls`` inside a method name the
class; a variable assigned from a call is typed by the callee; parameters are
typed by their annotations (``p: Path``, ``items: list[Path]`` for loop
variables, ``d: dict[str, Path]`` for lookups); ``x / "name"`` keeps the type of
``x`` (``pathlib`` paths); ``self.x = param`` types the attribute from an
annotated ``__init__`` parameter; a call of a dispatch dict
(``HANDLERS[kind](...)``, module-level or local) is a call of every function
in it; an attribute read on a typed variable is a call site ending in
``.__get__`` (a property, if the linker finds one); and a sync ``with X():``
is a call of ``X.__enter__`` and ``X.__exit__``. What a name or an
annotation refers to is :mod:`asgishift.audit._walk_names`'s job; the linker
finishes it across modules (aliases, re-exports, base classes, return
annotations).
"""

from __future__ import annotations

import abc
import ast
import sys

from asgishift.audit._guards import Guards
from asgishift.audit._records import ClassSummary, FileSummary, FuncSummary, Hazard, Site
from asgishift.audit._scope import (
    Hooks,
    Scope,
    is_false,
    pos,
    short,
    toplevel,
)
from asgishift.audit._tables import (
    METHOD_DECORATOR,
    PROPERTY_DECORATORS,
    PROPERTY_GETTER_KEYWORDS,
    PROPERTY_TYPES,
    RETURN_TYPES,
    TRANSPARENT_TYPES,
    UNKNOWN_DECORATOR,
)
from asgishift.audit._values import str_literals
from asgishift.audit._walk_names import MODULE_ALIASES, NameResolver

#: Types the tables know: an attribute read giving one of them types a global.
KNOWN_TYPES = frozenset(RETURN_TYPES.values()) | frozenset(PROPERTY_TYPES.values())


class WalkerBase(NameResolver, abc.ABC):
    """Walk one module's AST once and build its :class:`FileSummary`.

    This part holds the module, class and function levels; names and types
    are resolved by :class:`~asgishift.audit._walk_names.NameResolver`, and
    function bodies (statements and expressions) are walked by
    :class:`asgishift.audit._walk_body.Walker`, the class to instantiate.

    :param module: dotted module name; :param is_package: the file is an
        ``__init__.py``; :param hooks: the rule families' :class:`Hooks`.
    """

    def __init__(self, module: str, is_package: bool, hooks: Hooks) -> None:
        super().__init__(module, is_package)
        self.hooks = hooks
        self.functions: list[FuncSummary] = []
        self.classes: list[ClassSummary] = []
        self.middleware_refs: list[Site] = []
        self.routed: set[str] = set()
        self.marked: list[str] = []
        self.intern = sys.intern
        # class qualname -> members collected from ``self.x = ...`` in methods
        self.members: dict[str, dict[str, str]] = {}
        # class qualname -> (attribute, line) of ``self.x = async_to_sync(...)``
        self.wrappers: dict[str, list[tuple[str, int]]] = {}
        # module-level dicts of functions: name -> function targets
        self.dispatch: dict[str, tuple[str, ...]] = {}
        # ids of calls whose result wraps a function (``atomic(using=db)(view)``)
        self.decorating: set[int] = set()
        self.awaited: set[int] = set()

    # ------------------------------------------------------------ recording
    def hazard(
        self,
        code: str,
        node: ast.expr | ast.stmt,
        call: str,
        extra: tuple[tuple[str, str], ...] = (),
        cond: str = "",
    ) -> None:
        """Record a syntax hazard in the current function.

        :param code: the rule code; :param node: where it is; :param call: the
            ``call`` message argument; :param extra: other message arguments;
            :param cond: a link-time condition (see :class:`Hazard`).
        """
        if self.scope is None:
            return
        line, col, end_line, end_col = pos(node)
        self.scope.hazards.append(Hazard(code, line, col, end_line, end_col, call, extra, cond))

    def site(self, target: str, node: ast.expr | ast.stmt) -> Site:
        """Build a :class:`Site` for ``node``."""
        line, col, end_line, end_col = pos(node)
        # A plain tuple shaped as a Site: there are tens of thousands of them,
        # and plain tuples are built and marshalled several times faster (no
        # ``typing.cast`` either: one Python call per site for nothing).
        site = (self.intern(target), line, col, end_line, end_col, id(node) in self.awaited)
        return site  # type: ignore[return-value]

    def thread_target(self, ref: ast.expr, call: ast.Call) -> None:
        """Record a function reference that runs in another thread."""
        if isinstance(ref, (ast.Name, ast.Attribute)) and self.scope is not None:
            target = self.target(ref)
            if target is not None:
                self.scope.thread_targets.append(self.site(target, call))

    @abc.abstractmethod
    def stmt(self, node: ast.stmt) -> None:
        """Walk one statement inside a function body (see :class:`Walker`)."""

    @abc.abstractmethod
    def expr(self, node: ast.expr) -> None:
        """Walk one expression inside a function body (see :class:`Walker`)."""

    # ------------------------------------------------------------ module
    def run(self, tree: ast.Module) -> FileSummary:
        """Walk the module and return its summary."""
        mod = self.module
        for stmt in toplevel(tree.body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self._import_table(stmt, self.aliases)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.module_names[stmt.name] = f"{mod}.{stmt.name}"
        self.module_names.update(self.aliases)
        # Globals assigned from a call (or a path expression) are typed by it,
        # e.g. ``LOCK = threading.Lock()`` or ``DATA = BASE / "data.json"``.
        for stmt in toplevel(tree.body):
            if isinstance(stmt, ast.Assign):
                self._module_assign(stmt.targets, stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                typ, element, value = self.annotation(stmt.annotation)
                name = stmt.target.id
                if typ is not None:
                    self.aliases.setdefault(name, typ)
                    self.module_names[name] = self.aliases[name]
                else:
                    if value is not None:
                        self.module_elements["values:" + name] = value
                    if element is not None:
                        self.module_elements[name] = element
                if stmt.value is not None and typ is None:
                    self._module_assign([stmt.target], stmt.value)
        for stmt in toplevel(tree.body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(stmt, f"{mod}.{stmt.name}", "", None)
            elif isinstance(stmt, ast.ClassDef):
                self.klass(stmt, f"{mod}.{stmt.name}", None)
            elif not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self._routed_views(stmt)
        for i, cls in enumerate(self.classes):
            members = self.members.get(cls.qualname)
            wrappers = self.wrappers.get(cls.qualname)
            if members or wrappers:
                merged = dict(members or {})
                merged.update(cls.members)
                self.classes[i] = cls._replace(
                    members=tuple(sorted(merged.items())), wrappers=tuple(wrappers or ())
                )
        return FileSummary(
            module=mod,
            aliases=tuple(sorted(self.aliases.items())),
            functions=tuple(self.functions),
            classes=tuple(self.classes),
            middleware_refs=tuple(self.middleware_refs),
            routed=tuple(sorted(self.routed)),
            marked=tuple(self.marked),
            imported=tuple(sorted(self.imported)),
            stars=tuple(self.stars),
        )

    def _routed_views(self, stmt: ast.stmt) -> None:
        """Record the classes a module-level statement calls ``as_view()`` on (a URLconf).

        ``path("cart/", CartView.as_view())`` routes ``CartView`` itself, so
        ``ASH306`` checks it even when other project classes derive from it.
        Only the shapes a URLconf is built of are descended into (calls and
        their arguments, lists, tuples, ``+``): not a generic walk, which cost
        a few per cent of the whole audit on large trees of data modules.
        """
        value = getattr(stmt, "value", None)
        if value is None:
            return
        stack: list[ast.expr] = [value]
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind is ast.Call:
                func = node.func  # type: ignore[attr-defined]
                if type(func) is ast.Attribute and func.attr == "as_view":
                    target = self.target(func.value)
                    if target is not None:
                        self.routed.add(self.intern(target))
                stack.extend(node.args)  # type: ignore[attr-defined]
                stack.extend(kw.value for kw in node.keywords)  # type: ignore[attr-defined]
            elif kind is ast.List or kind is ast.Tuple:
                stack.extend(node.elts)  # type: ignore[attr-defined]
            elif kind is ast.BinOp:
                stack.append(node.left)  # type: ignore[attr-defined]
                stack.append(node.right)  # type: ignore[attr-defined]
            elif kind is ast.Starred:
                stack.append(node.value)  # type: ignore[attr-defined]

    def _module_assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        """Type module globals; read MIDDLEWARE lists, dispatch dicts and markers."""
        for tgt in targets:
            if isinstance(tgt, ast.Name):
                name = tgt.id
                if isinstance(value, ast.Subscript):
                    # ``SessionDep = Annotated[Session, Depends(get_db)]``: a
                    # parameter annotated ``SessionDep`` is a Session.
                    if self.target(value.value) in TRANSPARENT_TYPES:
                        typ = self.annotation(value)[0]
                        if typ is not None and name not in self.aliases:
                            self.aliases[name] = typ
                            self.module_names.setdefault(name, typ)
                    continue
                if isinstance(value, (ast.Call, ast.BinOp, ast.Attribute)):
                    typ = self.target(value)
                    if isinstance(value, ast.Attribute) and typ not in KNOWN_TYPES:
                        typ = None  # a plain attribute read, not a typed value
                    if typ is not None and name not in self.aliases:
                        self.aliases[name] = typ
                        self.module_names.setdefault(name, typ)
                    continue
                if name == "MIDDLEWARE" and isinstance(value, (ast.List, ast.Tuple)):
                    for elt in value.elts:
                        if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                            self.middleware_refs.append(self.site(elt.value, elt))
                elif isinstance(value, ast.Dict) and value.values:
                    funcs = [self.target(v) for v in value.values]
                    if all(isinstance(v, (ast.Name, ast.Attribute)) for v in value.values) and all(
                        funcs
                    ):
                        self.dispatch[name] = tuple(f for f in funcs if f)
                if name not in self.module_names:
                    self.module_names[name] = f"{self.module}.{name}"
            elif (
                isinstance(tgt, ast.Attribute)
                and tgt.attr in ("async_capable", "sync_capable")
                and isinstance(tgt.value, ast.Name)
            ):
                self.marked.append(tgt.value.id)

    # ------------------------------------------------------------ classes
    def klass(self, node: ast.ClassDef, qual: str, parent: Scope | None) -> None:
        """Summarise a class and walk its methods."""
        saved = self.scope
        self.scope = parent
        bases = tuple(
            t for t in (self.target(b) for b in node.bases) if t and t != "builtins.object"
        )
        members: dict[str, str] = {}
        fk_fields: list[str] = []
        nullable_fks: list[str] = []
        plain: list[str] = []
        # ``size = property(get_size)``: attribute -> getter target
        properties: dict[str, str] = {}
        # the functions the class body has defined so far, by name
        defs: dict[str, str] = {}
        has_markers = False
        is_middleware = False
        http_method_names: tuple[str, ...] | None = None
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if stmt.name == "__init__":
                    names = [a.arg for a in stmt.args.args]
                    is_middleware = names[1:2] == ["get_response"]
                defs[stmt.name] = self.function(stmt, f"{qual}.{stmt.name}", qual, parent, bases)
                properties.pop(stmt.name, None)
            elif isinstance(stmt, ast.ClassDef):
                self.klass(stmt, f"{qual}.{stmt.name}", parent)
                defs.pop(stmt.name, None)
                properties.pop(stmt.name, None)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                value = stmt.value
                getter = None
                if isinstance(value, ast.Call) and self.target(value.func) in PROPERTY_DECORATORS:
                    getter = self._property_getter(value, defs)
                for tgt in targets:
                    if not isinstance(tgt, ast.Name):
                        continue
                    defs.pop(tgt.id, None)
                    properties.pop(tgt.id, None)
                    if getter is not None:
                        properties[tgt.id] = getter
                    if tgt.id in ("async_capable", "sync_capable"):
                        has_markers = True
                    elif tgt.id == "http_method_names":
                        literal = (
                            str_literals(value, single=False)
                            if isinstance(value, (ast.List, ast.Tuple))
                            else None
                        )
                        http_method_names = (
                            None if literal is None else tuple(n.lower() for n in literal)
                        )
                    typ = None
                    if isinstance(value, ast.Call):
                        typ = self.target(value)
                    elif isinstance(stmt, ast.AnnAssign):
                        typ = self.annotation(stmt.annotation)[0]
                    if typ is None:
                        plain.append(tgt.id)
                    else:
                        members[tgt.id] = typ
                        if typ.rsplit(".", 1)[-1] in ("ForeignKey", "OneToOneField"):
                            fk_fields.append(tgt.id)
                            if isinstance(value, ast.Call) and any(
                                kw.arg == "null"
                                and isinstance(kw.value, ast.Constant)
                                and kw.value.value is True
                                for kw in value.keywords
                            ):
                                nullable_fks.append(tgt.id)
        wrapped = tuple(
            pair for dec in node.decorator_list for pair in self._method_decorated(dec) if pair[0]
        )
        self.scope = saved
        self.classes.append(
            ClassSummary(
                qualname=qual,
                line=node.lineno,
                col=node.col_offset + 1,
                bases=bases,
                members=tuple(sorted(members.items())),
                fk_fields=tuple(fk_fields),
                nullable_fks=tuple(nullable_fks),
                plain=tuple(plain),
                has_markers=has_markers,
                is_middleware=is_middleware,
                wrappers=(),
                properties=tuple(sorted(properties.items())),
                wrapped=wrapped,
                http_method_names=http_method_names,
            )
        )

    def _method_decorated(self, dec: ast.expr) -> list[tuple[str, str]]:
        """Return ``(name, decorator target)`` for each decorator ``method_decorator`` adapts.

        :param dec: a decorator expression; only a call of
            :data:`~asgishift.audit._tables.METHOD_DECORATOR` gives any:
            ``method_decorator(login_required)`` gives ``("", "...login_required")``,
            ``method_decorator([a, b], name="dispatch")`` one pair per decorator
            with ``name`` ``"dispatch"`` (``""`` when the call names no method,
            or not as a string literal).
        """
        if type(dec) is not ast.Call or not dec.args or self.target(dec.func) != METHOD_DECORATOR:
            return []
        name = ""
        for kw in dec.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                name = str(kw.value.value)
        first = dec.args[0]
        items = first.elts if isinstance(first, (ast.List, ast.Tuple)) else [first]
        out = []
        for item in items:
            target = self.target(item)
            if target is not None:
                out.append((name, self.intern(target)))
        return out

    def _property_getter(self, call: ast.Call, defs: dict[str, str]) -> str | None:
        """Return the getter of ``property(get_size)`` in a class body, or ``None``.

        :param call: a call of one of :data:`~asgishift.audit._tables.
            PROPERTY_DECORATORS`; the getter is its first positional argument
            or a :data:`~asgishift.audit._tables.PROPERTY_GETTER_KEYWORDS` one.
        :param defs: the functions the class body defined before the call, by
            name (``get_size`` there is ``shop.Store.get_size``).
        :return: the getter's target when it names a function (a method of
            the class, a module function, an imported one); a lambda or any
            other expression gives ``None`` (not followed).
        """
        arg = call.args[0] if call.args else None
        if arg is None:
            arg = next(
                (kw.value for kw in call.keywords if kw.arg in PROPERTY_GETTER_KEYWORDS), None
            )
        if isinstance(arg, ast.Name):
            return defs.get(arg.id) or self.resolve_name(arg.id)
        if isinstance(arg, ast.Attribute):
            return self.target(arg)
        return None

    # ------------------------------------------------------------ functions
    def function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
        qual: str,
        class_qual: str,
        parent: Scope | None,
        bases: tuple[str, ...] = (),
    ) -> str:
        """Walk one function body in a fresh scope and record its summary."""
        is_async = isinstance(node, ast.AsyncFunctionDef)
        scope = Scope(qual, is_async, parent)
        if parent is not None:
            parent.kept = None  # this function may read the variables: count them as read
        saved = self.scope
        decorators: list[str] = []
        returns = ""
        if not isinstance(node, ast.Lambda):
            self.scope = parent
            for dec in node.decorator_list:
                dec_target = self.target(dec)
                # A decorator the walk cannot name is still one: it may wrap
                # the function in anything (UNKNOWN_DECORATOR).
                decorators.append(self.intern(dec_target or UNKNOWN_DECORATOR))
                # ``@method_decorator(login_required)``: the method has login_required's wrapper
                decorators.extend(target for _, target in self._method_decorated(dec))
                for hook in self.hooks.decorator:
                    hook(self, dec, dec_target, qual, scope, is_async)
            if node.returns is not None:  # an absent annotation names no type
                returns = self.annotation(node.returns)[0] or ""
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
                if "builtins.classmethod" in decorators:
                    scope.object_refs = {arg.arg}
                scope.is_queryset_class = any(
                    b.endswith((".QuerySet", ".Manager", ".BaseManager")) for b in bases
                )
            elif arg.annotation is not None:
                typ, element, value = self.annotation(arg.annotation)
                if typ is not None:
                    scope.types[arg.arg] = typ
                else:
                    if element is not None:
                        scope.elements[arg.arg] = element
                    if value is not None:
                        scope.values[arg.arg] = value
        if class_qual:
            scope.class_qual = class_qual
            scope.class_bases = bases
        scope.decorators = tuple(decorators)
        is_middleware = False
        if isinstance(node, ast.Lambda):
            self.expr(node.body)
        else:
            if args.defaults or args.kw_defaults:
                scope.guards = Guards.for_function(
                    node, bool(class_qual) and not is_static, decorators
                )
            # Nested defs are visible before their statement runs (calls after it).
            for stmt in node.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    scope.defs[stmt.name] = f"{qual}.{stmt.name}"
            guards = scope.guards
            marks = []
            for stmt in node.body:
                self.stmt(stmt)
                if guards is not None:
                    # ``if not p: return`` guards the rest of the body.
                    clauses = guards.exits_unless(stmt)
                    if clauses:
                        marks.append(guards.push(clauses, len(scope.calls), len(scope.hazards)))
            for mark in reversed(marks):
                assert guards is not None
                guards.pop(mark, len(scope.calls), len(scope.hazards))
            is_middleware = (
                not class_qual
                and len(params) == 1
                and params[0].arg == "get_response"
                and any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) for s in node.body)
            )
        self.scope = saved
        for calls in (scope.kept or {}).values():
            scope.created.extend(calls)  # kept in a variable never read again
        guarded, call_guards, hazard_guards = (
            scope.guards.finish() if scope.guards else ((), (), ())
        )
        self.functions.append(
            FuncSummary(
                qualname=self.intern(qual),
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
                returns=returns,
                params=guarded,
                arity=bytes(scope.arity),
                call_args=tuple(scope.call_args),
                call_guards=call_guards,
                hazard_guards=hazard_guards,
                call_replaced=tuple(scope.call_replaced),
                created=tuple(sorted(scope.created)),
            )
        )
        return qual


__all__ = [
    "MODULE_ALIASES",
    "Hooks",
    "Scope",
    "WalkerBase",
    "is_false",
    "pos",
    "short",
]
