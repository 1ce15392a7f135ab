"""The function-body half of the per-file walk: statements and expressions.

:class:`Walker` extends :class:`~asgishift.audit._walk.WalkerBase` (module,
class and function levels) and :class:`~asgishift.audit._walk_calls.CallWalker`
(what a call records) with the walk of function bodies: it walks statements
and expressions, types variables as they are bound, and calls the rule
families' :class:`~asgishift.audit._walk.Hooks` at each event.
"""

from __future__ import annotations

import ast
import sys

from asgishift.audit._loops import ComprehensionNames, iter_shape, target_types
from asgishift.audit._tables import ASYNC_TO_SYNC, NO_LOOP_PROBES, RETURN_TYPES
from asgishift.audit._walk import Scope
from asgishift.audit._walk_calls import CallWalker


class Walker(CallWalker):
    """Walk one module's AST once and build its summary (see :mod:`asgishift.audit._walk`)."""

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
                    scope.discarded.append(self.site(target, value))
            self.expr(value)
        elif kind is ast.Assign or kind is ast.AnnAssign:
            value = node.value  # type: ignore[attr-defined]
            first = len(scope.calls)
            if type(value) is ast.Lambda and kind is ast.Assign:
                targets = node.targets  # type: ignore[attr-defined]
                if len(targets) == 1 and type(targets[0]) is ast.Name:
                    self._def_lambda(targets[0], value)
                    return
            if value is not None:
                self.expr(value)
            if kind is ast.AnnAssign:
                tgt = node.target  # type: ignore[attr-defined]
                self._bind(tgt, value)
                typ, element, mapped = self.annotation(node.annotation)  # type: ignore[attr-defined]
                if isinstance(tgt, ast.Name):
                    if typ is not None:
                        scope.types[tgt.id] = typ
                    else:
                        if element is not None:
                            scope.elements[tgt.id] = element
                        if mapped is not None:
                            scope.values[tgt.id] = mapped
            else:
                for tgt in node.targets:  # type: ignore[attr-defined]
                    self._bind(tgt, value)
                if len(node.targets) == 1:  # type: ignore[attr-defined]
                    if type(value) is ast.Call:
                        self._keep(node.targets[0], value, first)  # type: ignore[attr-defined]
                    elif type(value) is ast.Dict:
                        self._def_dispatch(node.targets[0], value)  # type: ignore[attr-defined]
        elif kind is ast.AugAssign:
            self.expr(node.value)  # type: ignore[attr-defined]
            aug = node.target  # type: ignore[attr-defined]
            if type(aug) is ast.Subscript:
                for sub_hook in self.hooks.subscript:
                    sub_hook(self, aug)  # ``d[k] += v`` reads and sets ``d[k]``
            if scope.guards is not None and isinstance(aug, ast.Name):
                scope.guards.rebind(aug.id, None)
        elif kind is ast.Return:
            if node.value is not None:  # type: ignore[attr-defined]
                self._return(node.value)  # type: ignore[attr-defined]
        elif kind is ast.For or kind is ast.AsyncFor:
            loop: ast.For | ast.AsyncFor = node  # type: ignore[assignment]
            self.expr(loop.iter)
            typed = False
            for hook in self.hooks.iterate:
                typed = hook(self, loop.iter, kind is ast.AsyncFor, loop.target) or typed
            if not typed:
                self._bind(loop.target, None)
                for name, item_type in target_types(loop.target, iter_shape(self, loop.iter)):
                    scope.types[name] = item_type
            guards = scope.guards
            clauses = guards.iterates(loop.iter, loop.target) if guards is not None else None
            if clauses:
                assert guards is not None
                mark = guards.push(clauses, len(scope.calls), len(scope.hazards))
                for sub in loop.body:
                    self.stmt(sub)
                guards.pop(mark, len(scope.calls), len(scope.hazards))
                guards.leave_loop(loop.target)
            else:
                for sub in loop.body:
                    self.stmt(sub)
            for sub in loop.orelse:
                self.stmt(sub)
        elif (kind is ast.If or kind is ast.While) and type(node.test) is ast.Constant:  # type: ignore[attr-defined]
            # ``if True: ... else: ...`` (psycopg's generated ``if True:  # ASYNC``),
            # ``if False:``, ``while True:``: only the branch that can run is
            # walked; the other is dead code, as CPython's compiler drops it.
            live = node.body if node.test.value else node.orelse  # type: ignore[attr-defined]
            for sub in live:
                self.stmt(sub)
        elif kind is ast.If or kind is ast.While:
            test = node.test  # type: ignore[attr-defined]
            self.expr(test)
            for test_hook in self.hooks.test:
                test_hook(self, test, "if")
            guards = scope.guards
            clauses = guards.test(test) if guards is not None else None
            if clauses:
                assert guards is not None
                mark = guards.push(clauses, len(scope.calls), len(scope.hazards))
                for sub in node.body:  # type: ignore[attr-defined]
                    self.stmt(sub)
                guards.pop(mark, len(scope.calls), len(scope.hazards))
            else:
                for sub in node.body:  # type: ignore[attr-defined]
                    self.stmt(sub)
            for sub in node.orelse:  # type: ignore[attr-defined]
                self.stmt(sub)
        elif kind is ast.With or kind is ast.AsyncWith:
            block: ast.With | ast.AsyncWith = node  # type: ignore[assignment]
            for item in block.items:
                ctx = item.context_expr
                self.expr(ctx)
                if kind is ast.With:
                    self._enter(ctx)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, ctx)
            calls, hazards = len(scope.calls), len(scope.hazards)
            for sub in block.body:
                self.stmt(sub)
            if kind is ast.With:
                # ``with lock:`` holds ``lock`` for the body: the hooks decide.
                for item in block.items:
                    if isinstance(item.context_expr, (ast.Name, ast.Attribute)):
                        for block_hook in self.hooks.block:
                            block_hook(self, item.context_expr, calls, hazards)
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            fn: ast.FunctionDef | ast.AsyncFunctionDef = node  # type: ignore[assignment]
            scope.defs[fn.name] = self.function(fn, f"{scope.qualname}.{fn.name}", "", scope)
        elif kind is ast.ClassDef:
            cls: ast.ClassDef = node  # type: ignore[assignment]
            qual = f"{scope.qualname}.{cls.name}"
            scope.defs[cls.name] = qual
            self.klass(cls, qual, scope)
        elif kind is ast.Import or kind is ast.ImportFrom:
            self._import_table(node, scope.imports)  # type: ignore[arg-type]
            if scope.dispatch:  # ``from x import handlers`` replaces a local dict
                for alias in node.names:  # type: ignore[attr-defined]
                    scope.dispatch.pop(alias.asname or alias.name.partition(".")[0], None)
        elif kind is ast.Try or (sys.version_info >= (3, 11) and kind is ast.TryStar):
            for sub in node.body:  # type: ignore[attr-defined]
                self.stmt(sub)
            for handler in node.handlers:  # type: ignore[attr-defined]
                calls, hazards = len(scope.calls), len(scope.hazards)
                if handler.name:  # ``except E as name`` rebinds ``name``
                    self._bind(ast.Name(id=handler.name, ctx=ast.Store()), None)
                for sub in handler.body:
                    self.stmt(sub)
                if self._catches_runtime_error(handler) and self._probes_loop(node.body):  # type: ignore[attr-defined]
                    # ``try: get_event_loop() except RuntimeError: new_event_loop()``:
                    # the handler runs only where no loop runs, never from async code.
                    del scope.calls[calls:], scope.hazards[hazards:]
                    del scope.arity[calls:]
                    scope.call_args = [a for a in scope.call_args if a[0] < calls]
                    scope.call_replaced = [r for r in scope.call_replaced if r[0] < calls]
                    scope.created = [i for i in scope.created if i < calls]
                    scope.kept = None
                    if scope.guards is not None:
                        scope.guards.truncate(calls, hazards)
            for sub in node.orelse:  # type: ignore[attr-defined]
                self.stmt(sub)
            for sub in node.finalbody:  # type: ignore[attr-defined]
                self.stmt(sub)
        else:
            if kind is ast.Nonlocal or kind is ast.Global:
                self._escape(node.names)  # type: ignore[attr-defined]
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self.stmt(child)
                elif isinstance(child, ast.expr):
                    self.expr(child)

    def _escape(self, names: list[str]) -> None:
        """``nonlocal p`` in a nested function: ``p`` of an enclosing one is no guard."""
        scope = self.scope.parent if self.scope is not None else None
        while scope is not None:
            if scope.guards is not None:
                for name in names:
                    scope.guards.poison(name)
            scope = scope.parent

    def _probes_loop(self, body: list[ast.stmt]) -> bool:
        """Return whether ``body`` is one statement asking for the loop, and nothing else.

        ``loop = asyncio.get_event_loop()``, ``self.lock = asyncio.Lock()``: one
        call of a :data:`~asgishift.audit._tables.NO_LOOP_PROBES` entry whose
        arguments are names or constants, so no other call can raise there.
        """
        if len(body) != 1 or not isinstance(body[0], (ast.Assign, ast.Expr, ast.Return)):
            return False
        stmt = body[0]
        if isinstance(stmt, ast.Assign) and not all(
            isinstance(t, ast.Name)
            or (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name))
            for t in stmt.targets
        ):
            return False
        call = stmt.value
        return (
            isinstance(call, ast.Call)
            and all(isinstance(a, (ast.Name, ast.Constant)) for a in call.args)
            and all(isinstance(k.value, (ast.Name, ast.Constant)) for k in call.keywords)
            and self.target(call.func) in NO_LOOP_PROBES
        )

    def _catches_runtime_error(self, handler: ast.ExceptHandler) -> bool:
        """Return whether an ``except`` clause names ``RuntimeError`` (alone or in a tuple)."""
        kind = handler.type
        names = kind.elts if isinstance(kind, ast.Tuple) else [kind] if kind else []
        return any(self.target(name) == "builtins.RuntimeError" for name in names)

    def _bind(self, tgt: ast.expr, value: ast.expr | None) -> None:
        """Update variable typing after ``tgt = value``."""
        scope = self.scope
        assert scope is not None
        if isinstance(tgt, ast.Name):
            name = tgt.id
            if scope.guards is not None:
                scope.guards.rebind(name, value)
            if scope.replaced is not None:
                scope.replaced.pop(name, None)
            if scope.set_attrs:
                prefix = name + "."
                scope.set_attrs = {a for a in scope.set_attrs if not a.startswith(prefix)}
            if scope.kept:
                scope.created.extend(scope.kept.pop(name, ()))  # never read before rebinding
            scope.locals.add(name)
            scope.types.pop(name, None)
            if scope.object_refs:
                scope.object_refs.discard(name)
            scope.elements.pop(name, None)
            scope.values.pop(name, None)
            scope.querysets.pop(name, None)
            scope.models.pop(name, None)
            if scope.dispatch:
                scope.dispatch.pop(name, None)
            if value is None:
                return
            for hook in self.hooks.bind:
                if hook(self, name, value):
                    return
            if isinstance(value, ast.Await):
                return
            if isinstance(value, ast.Subscript):
                # ``x = d[k]`` is typed only by an annotated mapping's value type.
                typ = self.mapped_type(value)
                if typ is not None:
                    scope.types[name] = typ
            elif isinstance(value, (ast.Call, ast.Name, ast.Attribute, ast.BinOp)):
                # ``f = helper`` (or ``= partial(helper)``): ``f()`` calls ``helper``.
                typ = self.target(value)
                if typ is not None and (
                    not isinstance(value, ast.Attribute) or typ in RETURN_TYPES
                ):
                    scope.types[name] = typ
                    if type(value) is ast.Name:  # the object itself, not an instance
                        if scope.object_refs is None:
                            scope.object_refs = set()
                        scope.object_refs.add(name)
        elif isinstance(tgt, ast.Attribute):
            if isinstance(tgt.value, ast.Name):
                if scope.set_attrs is None:
                    scope.set_attrs = set()
                scope.set_attrs.add(f"{tgt.value.id}.{tgt.attr}")
                if scope.guards is not None:
                    scope.guards.alias(f"{tgt.value.id}.{tgt.attr}", value)
                if isinstance(value, ast.Lambda) or (
                    isinstance(value, ast.Constant) and value.value is None
                ):
                    # ``session.create = lambda: None``: ``session.load()`` no
                    # longer reaches the class's ``create`` through ``self``.
                    if scope.replaced is None:
                        scope.replaced = {}
                    scope.replaced.setdefault(tgt.value.id, set()).add(tgt.attr)
            self._bind_attribute(tgt, value)
        elif isinstance(tgt, ast.Subscript):
            for sub_hook in self.hooks.subscript:
                sub_hook(self, tgt)  # ``d[k] = v`` calls ``d.__setitem__``
            if scope.dispatch and isinstance(tgt.value, ast.Name):
                self._add_dispatch(tgt.value.id, value)
        elif isinstance(tgt, (ast.Tuple, ast.List)):
            for elt in tgt.elts:
                self._bind(elt, None)
        elif isinstance(tgt, ast.Starred):
            self._bind(tgt.value, None)

    def _bind_attribute(self, tgt: ast.Attribute, value: ast.expr | None) -> None:
        """Type ``self.x = value`` in a method as a member of the class."""
        scope = self.scope
        assert scope is not None
        if not (
            isinstance(tgt.value, ast.Name)
            and scope.class_qual
            and scope.types.get(tgt.value.id) == scope.class_qual
            and value is not None
        ):
            return
        typ: str | None = None
        if isinstance(value, (ast.Call, ast.BinOp)):
            typ = self.target(value)
            if isinstance(value, ast.Call) and typ in ASYNC_TO_SYNC:
                self.wrappers.setdefault(scope.class_qual, []).append((tgt.attr, tgt.lineno))
        elif isinstance(value, ast.Name):
            # ``self.store = store`` with ``store: ReportStore``
            typ = scope.types.get(value.id)
        if typ is not None:
            self.members.setdefault(scope.class_qual, {}).setdefault(tgt.attr, typ)

    # ------------------------------------------------------------ expressions
    def expr(self, node: ast.expr) -> None:
        """Walk one expression inside a function body."""
        kind = type(node)
        # The commonest kinds first (Django: names 34 %, constants 23 %, calls 22 %).
        if kind is ast.Name:
            scope = self.scope
            if scope is not None and scope.kept:
                scope.kept.pop(node.id, None)  # type: ignore[attr-defined]  # ``gen`` read
            for name_hook in self.hooks.name:
                name_hook(self, node)  # type: ignore[arg-type]
        elif kind is ast.Constant:
            return
        elif kind is ast.Call:
            self._call(node)  # type: ignore[arg-type]
        elif kind is ast.Attribute:
            for hook in self.hooks.attribute:
                hook(self, node)  # type: ignore[arg-type]
            value = node.value  # type: ignore[attr-defined]
            if type(value) is ast.Name and type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                self._read_attribute(node, value.id)  # type: ignore[arg-type]
            self.expr(value)
        elif kind is ast.Compare:
            cmp: ast.Compare = node  # type: ignore[assignment]
            self.expr(cmp.left)
            for item in cmp.comparators:
                self.expr(item)
        elif kind is ast.BinOp:
            self.expr(node.left)  # type: ignore[attr-defined]
            self.expr(node.right)  # type: ignore[attr-defined]
        elif kind is ast.BoolOp:
            for item in node.values:  # type: ignore[attr-defined]
                self.expr(item)
        elif kind is ast.Tuple or kind is ast.List or kind is ast.Set:
            for item in node.elts:  # type: ignore[attr-defined]
                self.expr(item)
        elif kind is ast.Dict:
            for key in node.keys:  # type: ignore[attr-defined]
                if key is not None:
                    self.expr(key)
            for item in node.values:  # type: ignore[attr-defined]
                self.expr(item)
        elif kind is ast.JoinedStr:
            for item in node.values:  # type: ignore[attr-defined]
                if type(item) is ast.FormattedValue:
                    self.expr(item.value)
        elif kind is ast.Await:
            value = node.value  # type: ignore[attr-defined]
            self.awaited.add(id(value))
            self.expr(value)
        elif (
            kind is ast.ListComp
            or kind is ast.SetComp
            or kind is ast.GeneratorExp
            or kind is ast.DictComp
        ):
            comp: ast.ListComp = node  # type: ignore[assignment]
            hidden = self._shadow_dispatch(comp.generators)
            names = ComprehensionNames(self.scope) if self.scope is not None else None
            for gen in comp.generators:
                self.expr(gen.iter)
                for hook_iter in self.hooks.iterate:
                    hook_iter(self, gen.iter, bool(gen.is_async), None)
                if names is not None:
                    names.bind(gen.target, iter_shape(self, gen.iter))
                for cond in gen.ifs:
                    self.expr(cond)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
            if names is not None:
                names.restore()
            if hidden:
                self.scope.dispatch.update(hidden)  # type: ignore[union-attr]
        elif kind is ast.Subscript:
            sub: ast.Subscript = node  # type: ignore[assignment]
            self.expr(sub.value)
            self.expr(sub.slice)
            for sub_hook in self.hooks.subscript:
                sub_hook(self, sub)
        elif kind is ast.UnaryOp:
            operand = node.operand  # type: ignore[attr-defined]
            self.expr(operand)
            if isinstance(node.op, ast.Not):  # type: ignore[attr-defined]
                for test_hook in self.hooks.test:
                    test_hook(self, operand, "not")
        elif kind is ast.Lambda:
            self.expr(node.body)  # type: ignore[attr-defined]
        elif kind is ast.NamedExpr:
            walrus: ast.NamedExpr = node  # type: ignore[assignment]
            self.expr(walrus.target)
            self.expr(walrus.value)
            if self.scope is not None:
                self._bind(walrus.target, None)  # what the name held is gone
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

    def _def_lambda(self, tgt: ast.Name, node: ast.Lambda) -> None:
        """Walk ``name = lambda: ...`` as ``def name(): ...``: it runs where ``name()`` runs."""
        scope = self.scope
        assert scope is not None
        qual = self._lambda(node)
        self._bind(tgt, node)
        scope.locals.discard(tgt.id)  # rebinding the name makes it a local again
        scope.defs[tgt.id] = qual


__all__ = ["Scope", "Walker"]
