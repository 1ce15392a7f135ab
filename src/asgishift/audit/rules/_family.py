"""The shape of a rule family: its rules, its walker hooks and its link-time checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from asgishift.audit._model import Finding, Rule
from asgishift.audit._scope import Hooks

if TYPE_CHECKING:
    from asgishift.audit._link import Graph

#: ``add(finding)``: how a link-time check reports.
Add = Callable[[Finding], None]


def methods(owner: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``owner.name`` for each name (keeps long ``Rule.calls`` lists readable)."""
    return tuple(f"{owner}.{name}" for name in names)


class Family(NamedTuple):
    """One rule family, the unit the catalogue is assembled from.

    :param rules: the family's rules (code, message, docs, ``calls``).
    :param hooks: what the single AST walk calls at each event
        (:class:`~asgishift.audit._walk.Hooks`).
    :param conditions: link-time conditions of syntax hazards by kind
        (``{"fk": check}``); ``check(graph, argument)`` decides a hazard whose
        ``cond`` is ``"fk:<argument>"`` with the whole project in view.
    :param checks: whole-project checks run once by the linker,
        ``check(graph, add)`` (thread targets, middleware, never-awaited
        coroutines).
    """

    rules: tuple[Rule, ...]
    hooks: Hooks
    conditions: Mapping[str, Callable[[Graph, str], bool]] = {}
    checks: tuple[Callable[[Graph, Add], None], ...] = ()


__all__ = ["Add", "Family", "methods"]
