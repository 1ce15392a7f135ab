"""The call sites of the function-body walk: what each call records for the linker.

:class:`CallWalker` extends :class:`~asgishift.audit._walk.WalkerBase` with
what a call expression, and everything that behaves as one, leaves in the
function's summary: the call site of its target with the arguments it passes
(guards, :mod:`asgishift.audit._guards`); a call through a dispatch dict
(``HANDLERS[kind](...)``, module-level or local) as a call of each of its
functions; ``with ctx:`` as calls of ``__enter__``/``__exit__``; an attribute
read on a typed variable as a possible property call; lambdas handed to a
thread, kept by a lazy object (``SimpleLazyObject``) or wrapped by
``sync_to_async`` as functions of their own; and the
calls whose result is only made, never run, here (generators kept or
returned). The statement and expression walk that drives it is
:class:`asgishift.audit._walk_body.Walker`.
"""

from __future__ import annotations

import ast

from asgishift.audit._guards import COMPLEX, arity, call_args, is_simple
from asgishift.audit._records import FileSummary
from asgishift.audit._scope import CONNECT_SUFFIX
from asgishift.audit._tables import (
    ASYNC_TO_SYNC,
    DEFERRED_CALLERS,
    HANDOFF_METHODS,
    MEMORY_CONNECTION,
    PROPERTY_READ,
    SAFE_WRAPPERS,
    THREAD_STARTERS,
    WITH_METHODS,
)
from asgishift.audit._values import ModuleConstants
from asgishift.audit._walk import WalkerBase, pos

_WRAPS_SUFFIX = "transaction.atomic"


class CallWalker(WalkerBase):
    """Record the call sites of function bodies (see :mod:`asgishift.audit._walk_calls`).

    Abstract: :class:`~asgishift.audit._walk_body.Walker` walks the
    statements and expressions around the calls.
    """

    #: the module constants of the module being walked (value guards)
    constants: ModuleConstants | None = None

    def _call(self, node: ast.Call) -> None:
        """Walk a call: record its site and let the hooks look at it."""
        func = node.func
        # Exact classes (the parser makes no subclasses): cheaper than isinstance().
        fkind = type(func)
        target = self.target(func)
        if target is not None and target.endswith(CONNECT_SUFFIX) and self.in_memory(target, node):
            # ``sqlite3.connect(":memory:")`` touches no disk.
            target = MEMORY_CONNECTION
        if target in SAFE_WRAPPERS and fkind is not ast.Call:
            self._wrapper_call(node, target)
            return
        if target is not None and id(node) not in self.decorating:
            if target in ASYNC_TO_SYNC and fkind is not ast.Call:
                # Building the wrapper is harmless; calling it (recorded on the
                # enclosing ``async_to_sync(f)(...)`` call) is the hazard.
                pass
            elif target.endswith(_WRAPS_SUFFIX) and node.args:
                # ``atomic(view)`` / ``atomic(using=db)(view)`` only wraps a
                # function; the transaction starts when the wrapper is called.
                if fkind is ast.Call:
                    self.decorating.add(id(func))
            elif fkind is ast.Subscript and type(func.value) is ast.Name:  # type: ignore[attr-defined]
                self._record_dispatch(target, node, func.value.id)  # type: ignore[attr-defined]
            else:
                self._append_call(target, node)
        elif fkind is ast.Subscript and type(func.value) is ast.Name:  # type: ignore[attr-defined]
            for handler in self._local_dispatch(func.value.id) or ():  # type: ignore[attr-defined]
                self._append_call(handler, node)  # ``handlers[k]()``, a local dict
        for hook in self.hooks.call:
            hook(self, node, target)
        if fkind is ast.Attribute:
            if target is not None and func.attr == "as_view":  # type: ignore[attr-defined]
                self.routed.add(self.intern(target[:-8]))  # a view a URLconf routes (ASH306)
            self.expr(func.value)  # type: ignore[attr-defined]
        elif fkind is ast.Subscript:
            self.expr(func.value)  # type: ignore[attr-defined]
            self.expr(func.slice)  # type: ignore[attr-defined]
        elif fkind is not ast.Name:
            self.expr(func)
        if (
            target in THREAD_STARTERS
            or target in DEFERRED_CALLERS
            or (fkind is ast.Attribute and func.attr in HANDOFF_METHODS)  # type: ignore[attr-defined]
        ):
            # A lambda handed to a thread or a pool runs there, and one kept
            # by a lazy object when the object is used: not here.
            for value in (*node.args, *(kw.value for kw in node.keywords)):
                if isinstance(value, ast.Lambda):
                    self._lambda(value)
                else:
                    self.expr(value)
            return
        for arg in node.args:
            if type(arg) is not ast.Constant:  # a constant argument has nothing to walk
                self.expr(arg)
        for kw in node.keywords:
            self.expr(kw.value)

    def _sites_of(self, call: ast.Call, first: int) -> list[int]:
        """Return the indices, from ``first`` on, of the call sites recorded for ``call`` itself."""
        scope = self.scope
        assert scope is not None
        span = pos(call)
        return [i for i in range(first, len(scope.calls)) if scope.calls[i][1:5] == span]

    def _keep(self, tgt: ast.expr, call: ast.Call, first: int) -> None:
        """After ``tgt = call(...)``: the call's result is unused until ``tgt`` is read."""
        scope = self.scope
        assert scope is not None
        if isinstance(tgt, ast.Name):
            if scope.kept is None:
                scope.kept = {}
            scope.kept[tgt.id] = self._sites_of(call, first)

    def _return(self, value: ast.expr) -> None:
        """Walk ``return value``; an ``async def``'s own result is not used in it.

        So a generator it makes, or keeps unread in a variable, to return runs
        nothing there (:attr:`~asgishift.audit._records.FuncSummary.created`).
        """
        scope = self.scope
        assert scope is not None
        first = len(scope.calls)
        held = scope.kept.pop(value.id, []) if scope.kept and isinstance(value, ast.Name) else []
        self.expr(value)
        if scope.is_async:
            if isinstance(value, ast.Call):
                held = self._sites_of(value, first)
            scope.created.extend(held)

    def _lambda(self, node: ast.Lambda) -> str:
        """Walk a lambda that is not called here as a function of its own; return its qualname."""
        scope = self.scope
        assert scope is not None
        qual = f"{scope.qualname}.<lambda:{node.lineno}:{node.col_offset}>"
        return self.function(node, qual, "", scope)

    def _dispatch_functions(self, value: ast.expr) -> tuple[str, ...] | None:
        """Return the targets of a dict's values when every one names a function, else ``None``."""
        if not isinstance(value, ast.Dict) or not value.values or None in value.keys:
            return None  # empty, or ``{**other}``: not every value is known
        funcs = []
        for item in value.values:
            func = self.target(item) if isinstance(item, (ast.Name, ast.Attribute)) else None
            if func is None:
                return None
            funcs.append(func)
        return tuple(funcs)

    def _def_dispatch(self, tgt: ast.expr, value: ast.Dict) -> None:
        """After ``name = {k: f, ...}`` in a function: ``name[k](...)`` calls each ``f``."""
        scope = self.scope
        assert scope is not None
        funcs = self._dispatch_functions(value)
        if funcs is not None and isinstance(tgt, ast.Name):
            if scope.dispatch is None:
                scope.dispatch = {}
            scope.dispatch[tgt.id] = funcs

    def _add_dispatch(self, name: str, value: ast.expr | None) -> None:
        """After ``name[k] = value``: a function joins the dispatch dict, anything else ends it."""
        scope = self.scope
        assert scope is not None
        assert scope.dispatch is not None
        if name not in scope.dispatch:
            return
        func = self.target(value) if isinstance(value, (ast.Name, ast.Attribute)) else None
        if func is None:
            del scope.dispatch[name]
        else:
            scope.dispatch[name] = (*scope.dispatch[name], func)

    def _shadow_dispatch(self, generators: list[ast.comprehension]) -> dict[str, tuple[str, ...]]:
        """Hide the local dispatch dicts a comprehension's own variables shadow.

        Returns what was hidden, for the caller to put back once the
        comprehension is walked (its variables live in its own scope).
        """
        scope = self.scope
        if scope is None or not scope.dispatch:
            return {}
        hidden = {}
        for gen in generators:
            for name in ast.walk(gen.target):
                if type(name) is ast.Name and name.id in scope.dispatch:
                    hidden[name.id] = scope.dispatch.pop(name.id)
        return hidden

    def _local_dispatch(self, name: str) -> tuple[str, ...] | None:
        """Return the functions of local dispatch dict ``name`` (this or an enclosing function)."""
        scope = self.scope
        while scope is not None:
            if scope.dispatch and name in scope.dispatch:
                return scope.dispatch[name]
            if name in scope.locals:
                return None
            scope = scope.parent
        return None

    def _enter(self, ctx: ast.expr) -> None:
        """``with ctx:`` calls ``__enter__`` and ``__exit__`` of what ``ctx`` is.

        Both are recorded as call sites at ``ctx``; the linker follows them
        when they resolve to project methods (a class without them, or an
        external type, resolves to nothing the catalogue names).
        """
        base = self.target(ctx)
        if base is None:
            return
        scope = self.scope
        assert scope is not None
        for suffix, count in WITH_METHODS:
            scope.arity.append(count)
            scope.calls.append(self.site(base + suffix, ctx))

    def _read_attribute(self, node: ast.Attribute, name: str) -> None:
        """``obj.attr`` on a typed variable may run a property: record it for the linker.

        Only a variable typed in this function (``self``, ``x = Store()``, an
        annotated parameter) counts, never the class itself (``cls``, ``kind =
        Store``: the attribute is the property object); the site's target
        ends in :data:`~asgishift.audit._tables.PROPERTY_READ`.
        """
        scope = self.scope
        if scope is None or (scope.object_refs and name in scope.object_refs):
            return
        typ = scope.types.get(name)
        if typ is None or typ.startswith("builtins."):
            return
        scope.arity.append(0)
        scope.calls.append(self.site(f"{typ}.{node.attr}{PROPERTY_READ}", node))

    def _record_dispatch(self, target: str, node: ast.Call, name: str) -> None:
        """Record ``name[k](...)``: a call through a dispatch dict calls each of its functions."""
        local = self._local_dispatch(name)
        if local is not None:  # a local dict shadowing a typed name
            for handler in local:
                self._append_call(handler, node)
            return
        handlers = self.dispatch.get(name)
        if handlers is not None and self.resolve_name(name) is not None:
            for handler in handlers:
                self._append_call(handler, node)
        else:
            self._append_call(target, node)

    def _append_call(self, target: str, node: ast.Call) -> None:
        """Append the call site of ``node`` to ``target`` and, when it passes arguments, what."""
        scope = self.scope
        assert scope is not None
        if not (node.args or node.keywords) or target.startswith("builtins."):
            count = 0  # a builtin is never a project function: its arguments guard nothing
        else:
            count = arity(node)
            if count == COMPLEX:
                args = call_args(len(scope.calls), node, self._elements)
                if is_simple(args):
                    count = args[1]  # only list/tuple/set literals of unknown values
                else:
                    scope.call_args.append(args)
        scope.arity.append(count)
        replaced = scope.replaced
        func = node.func
        if (
            replaced
            and isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in replaced
        ):
            names = tuple(sorted(replaced[func.value.id]))
            scope.call_replaced.append((len(scope.calls), names))
        scope.calls.append(self.site(target, node))

    def _elements(self, node: ast.expr) -> tuple[str, ...] | None:
        """Return the known values of a list/tuple/set literal's elements (:mod:`._values`)."""
        if self.constants is None:
            return None
        return self.constants.elements(node)

    def _module_type(self, expr: ast.expr) -> str | None:
        """Return the canonical type of a module-level expression (no function scope)."""
        saved, self.scope = self.scope, None
        try:
            return self.target(expr)
        finally:
            self.scope = saved

    def run(self, tree: ast.Module) -> FileSummary:
        """Walk the module and return its summary; module constants are read on first use."""
        self.constants = ModuleConstants(tree, self._module_type)
        try:
            return super().run(tree)
        finally:
            self.constants = None

    def _wrapper_call(self, node: ast.Call, target: str) -> None:
        """Walk ``sync_to_async(f)``-style calls: the wrapped code is not ours."""
        scope = self.scope
        assert scope is not None
        for hook in self.hooks.wrapper:
            hook(self, node, target)
        for arg in node.args:
            if isinstance(arg, ast.Lambda):
                self._lambda(arg)
            elif isinstance(arg, ast.Attribute):
                self.expr(arg.value)
            elif not isinstance(arg, ast.Name):
                self.expr(arg)
        for kw in node.keywords:
            self.expr(kw.value)
        if isinstance(node.func, ast.Attribute):
            self.expr(node.func.value)


__all__ = ["CallWalker"]
