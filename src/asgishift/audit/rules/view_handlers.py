"""Rule ``ASH306``: a Django class-based view with both sync and ``async def`` handlers.

A migration hazard of the ``ASH3xx`` family, the one most often met when a
team turns a view async one method at a time: ``View.as_view()`` asks the
class's ``view_is_async``, which compares the HTTP handlers it has (``get``,
``post``, ``put``, ``patch``, ``delete``, ``head``, ``trace``; not
``options``) and raises ``ImproperlyConfigured`` ("HTTP handlers must either
be all sync or all async") when some are ``async def`` and some are not. The
URLconf that calls ``as_view()`` then fails to load: the site is down, not one
view. A handler inherited from one of Django's generic views counts as well:
adding ``async def post`` to a ``TemplateView`` (whose ``get`` is sync) or a
``FormView`` is the usual way in.

The check runs at link time on every project class whose method resolution
order (:func:`~.auth_mixins.linearize`) reaches one of Django's views (or the
REST framework's, whose ``as_view()`` calls Django's): for each handler the
first class along that order that has it decides, a project method by its
``async``, one of Django's generic views by
:data:`~.auth_mixins.DJANGO_VIEW_HANDLERS` (sync); see
:func:`~.auth_mixins.handler_kinds`. Only classes no project
class derives from are reported, unless an ``X.as_view()`` call (a URLconf,
a ``get_urls()`` method) routes the class itself: a base class with mixed handlers whose
subclasses settle them is usually not routed, and each subclass is checked on
its own. asgishift's async views (which accept both) and ``adrf``'s are not
checked. As in Django, only the handlers ``http_method_names`` names count,
when a class along the order assigns it a list or tuple of string literals
(the first one decides); any other assignment counts as Django's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgishift.audit._model import Rule, Severity
from asgishift.audit._records import Site
from asgishift.audit._scope import Hooks
from asgishift.audit.rules._family import Add, Family
from asgishift.audit.rules.auth_mixins import handler_kinds, is_async_view_base, linearize

if TYPE_CHECKING:
    from asgishift.audit._link import Graph

#: Packages whose views' ``as_view()`` is Django's, with its ``view_is_async`` check.
CHECKED_VIEW_PACKAGES = ("django.views.", "rest_framework.")

RULES: tuple[Rule, ...] = (
    Rule(
        code="ASH306",
        name="mixed-sync-async-view-handlers",
        summary=(
            "A Django class-based view has both `async def` and sync HTTP handlers, which "
            "`as_view()` refuses with `ImproperlyConfigured`."
        ),
        message=(
            "{call} has async handlers ({async_handlers}) and sync ones ({sync_handlers}): "
            "Django's as_view() raises ImproperlyConfigured and the URLconf does not load; "
            "make every handler an `async def` (override the inherited ones) or none"
        ),
        why=(
            "`View.as_view()` decides from the class's HTTP handlers whether the view is "
            'async, and raises `ImproperlyConfigured` ("HTTP handlers must either be all '
            'sync or all async") when some are `async def` and some are not. The URLconf '
            "that calls `as_view()` fails to import, so every URL of the site fails, not "
            "only this view. Handlers inherited from Django's generic views are sync: "
            "`async def post` on a `TemplateView` or `FormView` subclass is mixed. Make all "
            "the handlers `async def`, overriding the inherited ones (asgishift's "
            "`AsyncTemplateView`, `AsyncFormView` and the other async generic views in "
            "`asgishift.django_integration.views` already are), or keep them all sync. "
            "`options` does not count, nor does a handler the class's `http_method_names` "
            "leaves out. A class that other project classes derive from is reported only when "
            "the project routes it itself (`Base.as_view()` in a URLconf or a method); "
            "otherwise each subclass is checked on its own."
        ),
        example=(
            "from django.http import HttpResponse\n"
            "from django.views.generic import TemplateView\n\n\n"
            "class Contact(TemplateView):\n"
            '    template_name = "contact.html"\n\n'
            "    async def post(self, request):\n"
            '        return HttpResponse("sent")\n'
        ),
        fixed=(
            "from django.http import HttpResponse\n\n"
            "from asgishift.django_integration.views import AsyncTemplateView\n\n\n"
            "class Contact(AsyncTemplateView):\n"
            '    template_name = "contact.html"\n\n'
            "    async def post(self, request):\n"
            '        return HttpResponse("sent")\n'
        ),
        severity=Severity.ERROR,
    ),
)


def _checked_view(order: tuple[str, ...]) -> bool:
    """Return whether ``as_view()`` of the class of MRO ``order`` is Django's own."""
    for node in order:
        if is_async_view_base(node) or node.startswith("adrf."):
            return False
        if node.startswith(CHECKED_VIEW_PACKAGES):
            return True
    return False


def _routed_classes(graph: Graph) -> set[str]:
    """Return the project classes a module-level ``X.as_view()`` call routes (URLconfs)."""
    routed: set[str] = set()
    for summary, _ in graph.summaries.values():
        for target in summary.routed:
            resolved = graph.resolve(target)
            if resolved.kind == "class":
                routed.add(resolved.key)
    return routed


def _mixed_view_handlers(graph: Graph, add: Add) -> None:
    """ASH306: a view class (with no project subclass) whose handlers mix sync and async."""
    memo: dict[str, tuple[str, ...]] = {}
    orders = {key: linearize(graph, key, memo) for key in graph.classes}
    derived = {base for order in orders.values() for base in order[1:]}
    derived -= _routed_classes(graph)
    for key, (cls, path) in graph.classes.items():
        order = orders[key]
        if key in derived or len(order) < 2 or not _checked_view(order):
            continue
        kinds = handler_kinds(graph, order)
        if len({is_async for is_async, _ in kinds.values()}) < 2:
            continue

        def listed(want: bool, kinds: dict[str, tuple[bool, str]] = kinds, own: str = key) -> str:
            return ", ".join(
                name if where == own else f"{name} from {where.rsplit('.', 1)[1]}"
                for name, (is_async, where) in kinds.items()
                if is_async is want
            )

        where = Site(key, cls.line, cls.col, cls.line, cls.col, False)
        args = {
            "call": key,
            "function": key,
            "async_handlers": listed(True),
            "sync_handlers": listed(False),
        }
        add(graph.finding("ASH306", path, where, args, ()))


FAMILY = Family(rules=RULES, hooks=Hooks(), checks=(_mixed_view_handlers,))

__all__ = ["CHECKED_VIEW_PACKAGES", "FAMILY", "RULES"]
