"""Rule family ``ASH4xx``: wrappers used wrongly.

``ASH401``: ``sync_to_async(f, thread_sensitive=False)`` (call or decorator)
around a function that reaches the Django ORM; the hooks record the wrapped
references, the linker searches each for an ORM hazard. ``ASH402``: a
coroutine function called and its coroutine discarded; the walker records
every discarded call, the linker keeps those that resolve to an
``async def`` (or a known standard-library coroutine function).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from asgishift.audit._model import Hop, Rule
from asgishift.audit._scope import Hooks, Scope, is_false
from asgishift.audit._tables import COROUTINE_KEEPING_DECORATORS, KNOWN_COROUTINES, SYNC_TO_ASYNC
from asgishift.audit.rules._family import Add, Family

if TYPE_CHECKING:
    from asgishift.audit._link import Graph
    from asgishift.audit._walk import WalkerBase

#: The codes ``ASH401`` looks for in the wrapped code.
ORM_CODES = frozenset({"ASH201", "ASH202", "ASH203", "ASH204", "ASH205", "ASH206"})

RULES: tuple[Rule, ...] = (
    Rule(
        code="ASH401",
        name="thread-insensitive-orm-wrapper",
        summary="`sync_to_async(thread_sensitive=False)` wraps code that uses the Django ORM.",
        message=(
            "{call} runs ORM code with thread_sensitive=False, outside the connection's "
            "thread; drop `thread_sensitive=False`"
        ),
        why=(
            "Django database connections are per thread; with `thread_sensitive=False` the "
            "ORM code runs in an arbitrary pool thread, opening extra connections and "
            "breaking transactions started in the request thread."
        ),
        example=(
            "from asgiref.sync import sync_to_async\nfrom shop.models import Book\n\n\n"
            "def _count():\n    return Book.objects.count()\n\n\n"
            "async def view(request):\n"
            "    return await sync_to_async(_count, thread_sensitive=False)()\n"
        ),
        fixed=(
            "from asgiref.sync import sync_to_async\nfrom shop.models import Book\n\n\n"
            "def _count():\n    return Book.objects.count()\n\n\n"
            "async def view(request):\n    return await sync_to_async(_count)()\n"
        ),
        calls=(),
    ),
    Rule(
        code="ASH402",
        name="coroutine-never-awaited",
        summary="A coroutine function is called and its coroutine discarded.",
        message=(
            "Coroutine {call}() is created but never awaited, so it never runs; `await` it "
            "or schedule it with `asyncio.create_task()`"
        ),
        why=(
            "Calling an `async def` only builds a coroutine object; unless it is awaited or "
            "scheduled, its body never runs and Python warns `coroutine ... was never awaited`."
        ),
        example=(
            "async def notify(user):\n    return user\n\n\n"
            "async def view(user):\n    notify(user)\n"
        ),
        fixed=(
            "async def notify(user):\n    return user\n\n\n"
            "async def view(user):\n    await notify(user)\n"
        ),
        calls=(),
    ),
)


def _insensitive(node: ast.Call) -> bool:
    return any(kw.arg == "thread_sensitive" and is_false(kw.value) for kw in node.keywords)


def _on_wrapper(walker: WalkerBase, node: ast.Call, target: str) -> None:
    scope = walker.scope
    if scope is None or target not in SYNC_TO_ASYNC or not node.args or not _insensitive(node):
        return
    arg = node.args[0]
    if isinstance(arg, ast.Lambda):
        qual = f"{scope.qualname}.<lambda:{arg.lineno}:{arg.col_offset}>"
        scope.insensitive.append(walker.site(qual, node))
    elif isinstance(arg, (ast.Name, ast.Attribute)):
        ref = walker.target(arg)
        if ref is not None:
            scope.insensitive.append(walker.site(ref, node))


def _on_decorator(
    walker: WalkerBase,
    dec: ast.expr,
    target: str | None,
    qual: str,
    scope: Scope,
    is_async: bool,
) -> None:
    """Record ``@sync_to_async(thread_sensitive=False)`` on ``qual``."""
    del is_async
    if isinstance(dec, ast.Call) and target in SYNC_TO_ASYNC and _insensitive(dec):
        scope.insensitive.append(walker.site(qual, dec))


def _thread_insensitive_orm(graph: Graph, add: Add) -> None:
    """ASH401: each ``thread_sensitive=False`` wrapper whose function reaches the ORM."""
    for key, (func, path) in graph.funcs.items():
        for site in func.insensitive:
            resolved = graph.resolve(site.target)
            if resolved.kind != "func":
                continue
            first = Hop(path, site.line, site.col, graph.display(key), resolved.key)
            hit = _first_orm(graph, resolved.key, first)
            if hit is not None:
                call = f"sync_to_async({resolved.key.rsplit('.', 1)[-1]}, thread_sensitive=False)"
                args = {"call": call, "function": graph.display(key)}
                add(graph.finding("ASH401", path, site, args, hit))


def _first_orm(graph: Graph, start: str, first: Hop) -> tuple[Hop, ...] | None:
    """Return the chain to the first ORM hazard reachable from ``start``."""
    for qual, hops, _ in graph.walk([(start, (first,), frozenset())]):
        path = graph.funcs[qual][1]
        body = graph.body(qual)
        for hazard in body.hazards:
            if hazard.code in ORM_CODES and graph.condition(hazard):
                return (*hops, Hop(path, hazard.line, hazard.col, graph.display(qual), hazard.call))
        for site in body.calls:
            edge = graph.edge(site.target)
            if edge.code in ORM_CODES:
                return (*hops, Hop(path, site.line, site.col, graph.display(qual), edge.name))
    return None


def _keeps_coroutine(graph: Graph, key: str) -> bool:
    """Return whether calling project function ``key`` still builds a coroutine.

    True when it has no decorator, or only ones that keep a coroutine function
    one (``staticmethod``, ``abstractmethod``...); a call of a function with any
    other decorator (Textual's ``@work``, a project's task decorator, one the
    walk could not name) may return anything, so discarding it is not reported.
    """
    return all(
        any(name in COROUTINE_KEEPING_DECORATORS for name in graph.resolve(dec).seen)
        for dec in graph.funcs[key][0].decorators
    )


def _never_awaited(graph: Graph, add: Add) -> None:
    """ASH402: a call of a coroutine function whose result is thrown away."""
    async_names = {key.rsplit(".", 1)[-1] for key, (f, _) in graph.funcs.items() if f.is_async}
    async_names.update(name.rsplit(".", 1)[-1] for name in KNOWN_COROUTINES)
    for key, (func, path) in graph.funcs.items():
        summary = graph.summaries[path][0]
        if async_names.isdisjoint(summary.discard_names):
            continue
        for site in graph.discarded(key, async_names):
            resolved = graph.resolve(site.target)
            is_coroutine = (
                resolved.kind == "func"
                and graph.funcs[resolved.key][0].is_async
                and not graph.funcs[resolved.key][0].is_generator
                and not graph.is_async_to_sync(resolved.key)
                and _keeps_coroutine(graph, resolved.key)
            )
            if is_coroutine or any(name in KNOWN_COROUTINES for name in resolved.seen):
                name = resolved.key if resolved.kind == "func" else resolved.seen[-1]
                args = {"call": name, "function": func.qualname}
                add(graph.finding("ASH402", path, site, args, ()))


FAMILY = Family(
    rules=RULES,
    hooks=Hooks(wrapper=(_on_wrapper,), decorator=(_on_decorator,)),
    checks=(_thread_insensitive_orm, _never_awaited),
)

__all__ = ["FAMILY", "ORM_CODES", "RULES"]
