"""The audit rule catalogue: every rule asgishift knows, one module per family.

Each family module holds its :class:`~asgishift.audit._model.Rule`
declarations (code, kebab-case name, message template naming the fix, *why*
paragraph, an example that fires and a fixed version that does not, whether
``--fix`` can rewrite it) beside the code that detects them: the hooks the
single AST walk calls (:class:`~asgishift.audit._walk.Hooks`) and the checks
the linker runs. Adding a rule touches its family module only. Output
formats, ``--explain``, the docs page and the runtime detector read the
rules through :func:`all_rules`.

Families:

* :mod:`~asgishift.audit.rules.blocking`: ``ASH1xx`` blocking calls (sleep,
  network, processes, files, DB drivers, locks, ``input``, mail); ``ASH199`` is the
  user rule for ``extra_blocking`` callables.
* :mod:`~asgishift.audit.rules.orm`: ``ASH201``-``ASH206`` the Django ORM used
  synchronously from async code.
* :mod:`~asgishift.audit.rules.hidden_queries`: ``ASH207``-``ASH209`` Django
  APIs that query behind a sync call (the sites framework, ``request.user``,
  ``request.session``).
* :mod:`~asgishift.audit.rules.auth_mixins`: ``ASH210`` Django's sync auth
  mixins (``LoginRequiredMixin``...) in front of an async class-based view.
* :mod:`~asgishift.audit.rules.migration`: ``ASH3xx`` migration hazards
  (``async_to_sync`` from async, nested loops, thread-locals, request globals
  in threads, sync-only middleware).
* :mod:`~asgishift.audit.rules.view_handlers`: ``ASH306`` a Django class-based
  view with both sync and ``async def`` handlers (``as_view()`` refuses it).
* :mod:`~asgishift.audit.rules.wrappers`: ``ASH4xx`` wrapper misuse
  (``thread_sensitive=False`` around the ORM, coroutines never awaited).

The ``calls`` of ``ASH1xx`` rules are importable dotted names
(``"requests.Session.get"``) so the runtime detector can patch them. Whether
``asgishift audit --fix`` rewrites a rule's findings is its
:attr:`~asgishift.audit._model.Rule.fix` (``FixKind.SAFE``/``UNSAFE``/``None``),
declared beside the rule in its family module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING

from asgishift.audit._model import Rule
from asgishift.audit._scope import Hooks
from asgishift.audit.rules import (
    auth_mixins,
    blocking,
    hidden_queries,
    migration,
    orm,
    view_handlers,
    wrappers,
)
from asgishift.audit.rules._family import Add, Family

if TYPE_CHECKING:
    from asgishift.audit._link import Graph

#: Every family, in code order.
FAMILIES: tuple[Family, ...] = (
    blocking.FAMILY,
    orm.FAMILY,
    hidden_queries.FAMILY,
    auth_mixins.FAMILY,
    migration.FAMILY,
    view_handlers.FAMILY,
    wrappers.FAMILY,
)

_CODE_RE = re.compile(r"ASH\d{3}\Z")


@cache
def _by_code() -> dict[str, Rule]:
    """Index the catalogue by code, checking codes are unique and well formed."""
    index: dict[str, Rule] = {}
    for family in FAMILIES:
        for rule in family.rules:
            if not _CODE_RE.match(rule.code):
                raise ValueError(f"rule code {rule.code!r} does not match ASH + 3 digits")
            if rule.code in index:
                raise ValueError(
                    f"rule code {rule.code} is declared twice in asgishift.audit.rules"
                )
            index[rule.code] = rule
    return index


def all_rules() -> tuple[Rule, ...]:
    """Return every rule of the catalogue, sorted by code.

    :return: a tuple of :class:`Rule`, ``ASH101`` first.
    """
    return tuple(sorted(_by_code().values(), key=lambda rule: rule.code))


def get_rule(code: str) -> Rule:
    """Return the rule with this code.

    :param code: a rule code such as ``"ASH101"`` (case-insensitive).
    :return: the :class:`Rule`.
    :raise KeyError: the code is unknown; the message lists the known codes.
    """
    rule = _by_code().get(code.upper())
    if rule is None:
        known = ", ".join(sorted(_by_code()))
        raise KeyError(f"unknown rule code {code!r}; known codes: {known}")
    return rule


def calls_index() -> dict[str, str]:
    """Map each canonical dotted callable name to the code of the rule matching it.

    Computed on every call (rules' ``calls`` may be patched at run time by the
    runtime detector); cheap, the catalogue has a few hundred names.

    :return: ``{"time.sleep": "ASH101", ...}``.
    """
    index: dict[str, str] = {}
    for rule in all_rules():
        for name in rule.calls:
            index.setdefault(name, rule.code)
    return index


@cache
def walk_hooks() -> Hooks:
    """Return the walker hooks of every family, merged in family order."""
    hooks = Hooks()
    for family in FAMILIES:
        hooks = hooks.merge(family.hooks)
    return hooks


def conditions() -> Mapping[str, Callable[[Graph, str], bool]]:
    """Return the link-time hazard conditions of every family, by kind (``"fk"``)."""
    merged: dict[str, Callable[[Graph, str], bool]] = {}
    for family in FAMILIES:
        merged.update(family.conditions)
    return merged


def link_checks() -> tuple[Callable[[Graph, Add], None], ...]:
    """Return the whole-project checks of every family, in family order."""
    return tuple(check for family in FAMILIES for check in family.checks)


__all__ = [
    "FAMILIES",
    "all_rules",
    "calls_index",
    "conditions",
    "get_rule",
    "link_checks",
    "walk_hooks",
]
