"""Rule family ``ASH3xx``: hazards of moving a sync project to ASGI.

``ASH301`` (``async_to_sync`` called from async code) and ``ASH302`` (a nested
event loop) match call names (:attr:`Rule.calls`), plus functions decorated
with ``@async_to_sync`` and attributes assigned a wrapper (the linker).
``ASH303`` reads of ``threading.local`` state are recorded by an attribute
hook and confirmed at link time. ``ASH304`` follows functions handed to a
thread (recorded by a call hook) for uses of Flask's request globals.
``ASH305`` checks middleware classes and factories for async markers.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from asgishift.audit._model import Hop, Rule, Severity
from asgishift.audit._records import FileIndex, Hazard, Site
from asgishift.audit._scope import Hooks, pos
from asgishift.audit._tables import (
    ASYNC_TO_SYNC,
    COPY_CONTEXT,
    FLASK_GLOBALS,
    HANDOFF_METHODS,
    MIDDLEWARE_MARKERS,
    THREAD_LOCALS,
    THREAD_STARTERS,
)
from asgishift.audit.rules._family import Add, Family

if TYPE_CHECKING:
    from asgishift.audit._link import Graph
    from asgishift.audit._walk import WalkerBase

RULES: tuple[Rule, ...] = (
    Rule(
        code="ASH301",
        name="async-to-sync-in-async",
        summary="`async_to_sync` is called from (or reachable from) async code.",
        message=(
            "{call}() called from async code raises RuntimeError{why}; await the "
            "coroutine function directly"
        ),
        why=(
            "`async_to_sync` needs a thread without a running event loop; called from async "
            "code it raises `RuntimeError: You cannot use AsyncToSync in the same thread as "
            "an async event loop`."
        ),
        example=(
            "from asgiref.sync import async_to_sync\n\n\nasync def fetch():\n    return 1\n\n\n"
            "async def view(request):\n    return async_to_sync(fetch)()\n"
        ),
        fixed=(
            "async def fetch():\n    return 1\n\n\n"
            "async def view(request):\n    return await fetch()\n"
        ),
        calls=tuple(sorted(ASYNC_TO_SYNC)),
    ),
    Rule(
        code="ASH302",
        name="nested-event-loop",
        summary="A new event loop is started from (or reachable from) async code.",
        message=(
            "{call}() starts an event loop inside a running one; `await` the coroutine instead"
        ),
        why=(
            "`asyncio.run()` and `loop.run_until_complete()` raise `RuntimeError` when a loop "
            "is already running in the thread, and a fresh loop would block the outer one. "
            "A fallback in the `except RuntimeError:` handler of a `try` that only asks for "
            "the current loop (`asyncio.get_event_loop()`) is not reported: it runs only "
            "where no loop is running."
        ),
        example=(
            "import asyncio\n\n\nasync def work():\n    return 1\n\n\n"
            "async def view(request):\n    return asyncio.run(work())\n"
        ),
        fixed=(
            "async def work():\n    return 1\n\n\n"
            "async def view(request):\n    return await work()\n"
        ),
        calls=(
            "asyncio.run",
            "asyncio.new_event_loop",
            "asyncio.get_event_loop.run_until_complete",
            "asyncio.new_event_loop.run_until_complete",
            "asyncio.AbstractEventLoop.run_until_complete",
            "asyncio.Runner.run",
        ),
    ),
    Rule(
        code="ASH303",
        name="thread-local-in-async",
        summary="Async code reads `threading.local` state.",
        message=(
            "{call} is threading.local state read from async code; concurrent requests share "
            "the loop thread, use `contextvars.ContextVar` or `asgiref.local.Local`"
        ),
        why=(
            "Every coroutine on the event loop runs in the same thread, so a "
            "`threading.local` value set for one request is seen (and overwritten) by all "
            "the others."
        ),
        example=(
            "import threading\n\n_state = threading.local()\n\n\nasync def who():\n"
            "    return _state.user\n"
        ),
        fixed=(
            'import contextvars\n\n_user = contextvars.ContextVar("user")\n\n\n'
            "async def who():\n    return _user.get()\n"
        ),
        severity=Severity.WARNING,
        calls=(),
    ),
    Rule(
        code="ASH304",
        name="request-global-in-thread",
        summary="A Flask request global is used from a function run in another thread.",
        message=(
            "{call} is used in {function}, which runs in another thread without the request "
            "context; decorate it with `flask.copy_current_request_context` or pass the values in"
        ),
        why=(
            "`flask.request`, `flask.g` and `flask.session` are bound to the request context "
            "of the current thread (or task); a function started with `threading.Thread` or "
            "an executor raises `RuntimeError: Working outside of request context`."
        ),
        example=(
            "import threading\n\nfrom flask import request\n\n\ndef audit_log():\n"
            "    print(request.path)\n\n\ndef view():\n"
            "    threading.Thread(target=audit_log).start()\n"
        ),
        fixed=(
            "import threading\n\nfrom flask import copy_current_request_context, request\n\n\n"
            "def view():\n    @copy_current_request_context\n    def audit_log():\n"
            "        print(request.path)\n\n    threading.Thread(target=audit_log).start()\n"
        ),
        severity=Severity.ERROR,
        calls=(),
    ),
    Rule(
        code="ASH305",
        name="sync-only-middleware",
        summary="A Django middleware declares no async support.",
        message=(
            "Middleware {call} is sync-only, so Django runs it in a thread for every "
            "request under ASGI; subclass MiddlewareMixin or set `async_capable = True` "
            "and handle coroutines"
        ),
        why=(
            "Under ASGI Django adapts every sync-only middleware with `sync_to_async`, "
            "costing a thread switch per request and per middleware, and forcing the whole "
            "chain below it to be synchronous. A middleware is a class or function listed in "
            "`MIDDLEWARE`, or one of the middleware's shape (`__init__(self, get_response)`, "
            "`def m(get_response)` returning a function) defined at module or class level; "
            "one defined inside a function (a mixin made by a factory) is reported only "
            "when `MIDDLEWARE` names it."
        ),
        example=(
            "class TimingMiddleware:\n    def __init__(self, get_response):\n"
            "        self.get_response = get_response\n\n    def __call__(self, request):\n"
            "        return self.get_response(request)\n"
        ),
        fixed=(
            "from asgiref.sync import iscoroutinefunction, markcoroutinefunction\n\n\n"
            "class TimingMiddleware:\n    async_capable = True\n    sync_capable = False\n\n"
            "    def __init__(self, get_response):\n        self.get_response = get_response\n"
            "        markcoroutinefunction(self)\n\n"
            "    async def __call__(self, request):\n"
            "        return await self.get_response(request)\n"
        ),
        severity=Severity.WARNING,
        calls=(),
    ),
)


# ------------------------------------------------------------------ walker hooks
def _flask_use(walker: WalkerBase, target: str, node: ast.expr) -> None:
    """Record a use of a Flask request global."""
    if walker.scope is None:
        return
    line, col, end_line, end_col = pos(node)
    walker.scope.flask_uses.append(Hazard("ASH304", line, col, end_line, end_col, target, (), ""))


def _on_name(walker: WalkerBase, node: ast.Name) -> None:
    if walker.uses_flask and isinstance(node.ctx, ast.Load):
        target = walker.resolve_name(node.id)
        if target in FLASK_GLOBALS:
            _flask_use(walker, target, node)


def _on_attribute(walker: WalkerBase, node: ast.Attribute) -> None:
    scope = walker.scope
    value = node.value
    if not isinstance(value, ast.Name) or scope is None:
        return
    name = value.id
    if (
        scope.is_async
        and name not in scope.models
        and name not in scope.locals
        and name not in scope.types
    ):
        target = walker.resolve_name(name)
        if target is not None and not target.startswith("builtins."):
            walker.hazard("ASH303", node, f"{name}.{node.attr}", (), f"tlocal:{target}")
    if walker.uses_flask:
        target = walker.resolve_name(name)
        if target is not None and f"{target}.{node.attr}" in FLASK_GLOBALS:
            _flask_use(walker, f"{target}.{node.attr}", node)


def _on_call(walker: WalkerBase, node: ast.Call, target: str | None) -> None:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in HANDOFF_METHODS:
        index = 1 if func.attr == "run_in_executor" else 0
        if len(node.args) > index:
            walker.thread_target(node.args[index], node)
    if target in THREAD_STARTERS:
        for kw in node.keywords:
            if kw.arg == "target":
                walker.thread_target(kw.value, node)
        if target == "threading.Timer" and len(node.args) > 1:
            walker.thread_target(node.args[1], node)


# ------------------------------------------------------------------ link time
def _is_thread_local(graph: Graph, target: str) -> bool:
    """``tlocal:<target>``: ``target`` names a ``threading.local`` instance."""
    resolved = graph.resolve(target)
    if any(name in THREAD_LOCALS for name in resolved.seen):
        return True
    if resolved.kind == "class":
        return any(e in THREAD_LOCALS for e in graph.mro(resolved.key)[1])
    return False


def _request_globals_in_threads(graph: Graph, add: Add) -> None:
    """ASH304: a function started in a thread uses Flask's request globals."""
    for key, (func, path) in graph.funcs.items():
        for site in func.thread_targets:
            resolved = graph.resolve(site.target)
            if resolved.kind != "func" or graph.funcs[resolved.key][0].is_async:
                continue
            target = graph.funcs[resolved.key][0]
            if any(n in COPY_CONTEXT for dec in target.decorators for n in graph.resolve(dec).seen):
                continue
            start = Hop(path, site.line, site.col, graph.display(key), resolved.key)
            for qual, hops, _ in graph.walk([(resolved.key, (start,), frozenset())]):
                inner = graph.funcs[qual][1]
                for use in graph.body(qual).flask_uses:
                    chain = (*hops, Hop(inner, use.line, use.col, graph.display(qual), use.call))
                    args = {"call": use.call, "function": graph.display(qual)}
                    add(graph.finding("ASH304", inner, use, args, chain))


def _sync_only_middleware(graph: Graph, add: Add) -> None:
    """ASH305: project middleware (by shape or listed in MIDDLEWARE) without markers."""
    for path, (summary, _) in graph.summaries.items():
        _middleware_in(graph, summary, path, add)


def _middleware_in(graph: Graph, summary: FileIndex, path: str, add: Add) -> None:
    listed: set[str] = set()
    for site in summary.middleware_refs:
        resolved = graph.resolve(site.target)
        if resolved.kind in ("class", "func"):
            listed.add(resolved.key)
    candidates: list[tuple[str, Site]] = []
    for cls in summary.classes:
        shaped = cls.is_middleware and not _in_function(graph, cls.qualname)
        if (shaped or cls.qualname in listed) and not _class_marked(graph, cls.qualname):
            candidates.append((cls.qualname, Site(cls.qualname, cls.line, cls.col, 0, 0, False)))
    marked = set(summary.marked)
    for func in summary.functions:
        shaped = func.is_middleware and not _in_function(graph, func.qualname)
        if not (shaped or func.qualname in listed):
            continue
        if func.qualname.rsplit(".", 1)[-1] in marked or func.is_async:
            continue
        if any(dec.rsplit(".", 1)[-1] in MIDDLEWARE_MARKERS for dec in func.decorators):
            continue
        candidates.append((func.qualname, Site(func.qualname, func.line, func.col, 0, 0, False)))
    for name, where in candidates:
        where = where._replace(end_line=where.line, end_col=where.col)
        add(graph.finding("ASH305", path, where, {"call": name, "function": name}, ()))
    # MIDDLEWARE entries defined elsewhere in the project are reported at their definition.
    for key in listed:
        if key in graph.classes:
            cls, cls_path = graph.classes[key]
            if cls_path != path and not _class_marked(graph, key):
                where = Site(key, cls.line, cls.col, cls.line, cls.col, False)
                add(graph.finding("ASH305", cls_path, where, {"call": key, "function": key}, ()))


def _in_function(graph: Graph, qual: str) -> bool:
    """Return whether ``qual`` is defined inside a function (at any depth).

    Such a class or function is made anew by each call of the function around
    it, so no ``MIDDLEWARE`` entry can name it: it is middleware only through
    what the factory returns (often a base that a module-level class extends
    and marks), so its shape alone is not reported.
    """
    parts = qual.split(".")
    return any(".".join(parts[:i]) in graph.funcs for i in range(1, len(parts)))


def _class_marked(graph: Graph, qual: str) -> bool:
    """Return whether a class (or a base) declares async/sync capability."""
    project, external = graph.mro(qual)
    if any(graph.classes[c][0].has_markers for c in project):
        return True
    return any(e.rsplit(".", 1)[-1] == "MiddlewareMixin" for e in external)


FAMILY = Family(
    rules=RULES,
    hooks=Hooks(call=(_on_call,), attribute=(_on_attribute,), name=(_on_name,)),
    conditions={"tlocal": _is_thread_local},
    checks=(_request_globals_in_threads, _sync_only_middleware),
)

__all__ = ["FAMILY", "RULES"]
