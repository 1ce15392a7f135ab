"""``ASH108`` for ``with lock:``: a thread lock held around a wait in async code.

Entering ``with lock:`` acquires the lock, which blocks while another thread
(or a suspended coroutine) holds it. Reporting every such block would flag
locks held for in-memory bookkeeping, released long before the event loop
could notice; so the walk records a hazard with a link-time condition
(:func:`on_block`), and the linker keeps it (:func:`lock_waits`) only when the
lock resolves to a ``threading`` lock and the block waits: it makes a blocking
call or has a syntax hazard, directly or through the sync functions it calls.
The hook and the condition are part of the blocking family
(:mod:`asgishift.audit.rules.blocking`).
"""

from __future__ import annotations

import ast
import weakref
from typing import TYPE_CHECKING

from asgishift.audit._scope import short

if TYPE_CHECKING:
    from asgishift.audit._link import Graph
    from asgishift.audit._walk import WalkerBase

#: What ``with lock:`` calls on entry, for each thread lock type.
_LOCK_ACQUIRES = frozenset(
    {
        "threading.Lock.acquire",
        "threading.RLock.acquire",
        "threading.Semaphore.acquire",
        "threading.BoundedSemaphore.acquire",
        "threading.Condition.acquire",
    }
)
LOCK_COND = "lockwait"


def on_block(walker: WalkerBase, ctx: ast.expr, calls: int, hazards: int) -> None:
    """``with lock:``: record an ``ASH108`` hazard the linker keeps if the body waits.

    The condition's argument is ``<lock>.acquire|<1 if the body has a syntax
    hazard>|<call target>|...`` over the body's own call sites.
    """
    scope = walker.scope
    base = walker.target(ctx)
    if scope is None or base is None:
        return
    flagged = any(not h.cond.startswith(LOCK_COND + ":") for h in scope.hazards[hazards:])
    targets = [site[0] for site in scope.calls[calls:]]  # sites are plain tuples
    if not flagged and not targets:
        return
    argument = "|".join((base + ".acquire", "1" if flagged else "0", *targets))
    walker.hazard("ASH108", ctx, short(ctx) + ".acquire", (), f"{LOCK_COND}:{argument}")


#: Per graph: sync function -> whether it (or a sync function it calls) blocks.
_BLOCKS: weakref.WeakKeyDictionary[Graph, dict[str, bool]] = weakref.WeakKeyDictionary()


def _blocks(graph: Graph, callee: str) -> bool:
    """Return whether sync function ``callee`` reaches a blocking call or hazard."""
    memo = _BLOCKS.setdefault(graph, {})
    hit = memo.get(callee)
    if hit is None:
        hit = False
        for qual, _, _ in graph.walk([(callee, (), frozenset())]):
            body = graph.body(qual)
            if any(graph.edge(site.target).code for site in body.calls) or any(
                not h.cond.startswith(LOCK_COND + ":") and graph.condition(h) for h in body.hazards
            ):
                hit = True
                break
        memo[callee] = hit
    return hit


def lock_waits(graph: Graph, argument: str) -> bool:
    """``lockwait:<lock>.acquire|<flag>|<targets>``: a thread lock held around a wait."""
    acquire, flagged, *targets = argument.split("|")
    if not any(name in _LOCK_ACQUIRES for name in graph.resolve(acquire).seen):
        return False
    if flagged == "1":
        return True
    for target in targets:
        edge = graph.edge(target)
        if edge.code or (edge.callee and _blocks(graph, edge.callee)):
            return True
    return False


__all__ = ["LOCK_COND", "lock_waits", "on_block"]
