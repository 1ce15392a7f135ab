"""Rule ``ASH210``: Django's sync auth mixins in front of an async class-based view.

It belongs to the ``ASH2xx`` family (Django APIs that query the database
behind a sync call): ``LoginRequiredMixin``, ``PermissionRequiredMixin`` and
``UserPassesTestMixin`` check ``request.user`` in a sync ``dispatch()``. In a
view that ``View.as_view()`` marks async (every HTTP handler but ``options``
an ``async def``, or one of asgishift's async views), that ``dispatch()`` runs
on the event loop: the user's session and row are loaded there
(``SynchronousOnlyOperation``), and the redirect it returns for an anonymous
user is not awaitable (``TypeError`` from Django's handler). Django 4.2, 5.2
and 6.1 ship these mixins sync-only (``django/contrib/auth/mixins.py``); only
the function decorators wrap async views (Django 5.0+).

The check runs at link time on every project class, with the whole class
hierarchy in view (:func:`linearize`: Python's C3 order over the project's
classes and the few external classes whose bases are known here), so a mixin
imported under another name, re-exported by a project module or inherited
through a project base class is found. The ``dispatch()`` chain is walked in
that order from the view class:

* one of :data:`SYNC_AUTH_MIXINS` is the hazard, named in the message;
* so is one of Django's auth decorators (:data:`AUTH_DECORATORS`) that
  ``method_decorator`` puts on a sync ``dispatch``, on the method or as
  ``@method_decorator(login_required, name="dispatch")`` on the class (it wraps
  the inherited ``View.dispatch``, a sync one): Django's decorator checks the
  user synchronously around a sync function;
* a project ``dispatch`` that calls ``super().dispatch()`` passes the request
  on, one that does not ends the chain; a sync one in a class under
  ``AccessMixin`` (a custom access mixin) is the hazard named when the chain
  reaches none of Django's mixins; after a project ``async def dispatch``
  under ``AccessMixin`` that checks the user itself (a hand-made async twin
  calling ``handle_no_permission``, ``sync_to_async`` or reading
  ``request.user``, which ``ASH208`` reports), ``LoginRequiredMixin``'s
  check reads the user already loaded and is passed;
* asgishift's async twins, asgishift's async views and Django's (or the REST
  framework's) views end the chain: their ``dispatch`` does not call the
  mixins below them;
* any other external class is passed through.

A view whose handlers are partly ``async def`` and partly sync is not
reported: Django's ``as_view()`` refuses it (``ImproperlyConfigured``) before
any request, which ``ASH306`` (:mod:`.view_handlers`) reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgishift.audit._model import Rule, Severity
from asgishift.audit._records import Body, Site
from asgishift.audit._scope import Hooks
from asgishift.audit._tables import SYNC_TO_ASYNC
from asgishift.audit.rules._family import Add, Family
from asgishift.audit.rules.hidden_queries import SESSION_LOADING_DECORATORS

if TYPE_CHECKING:
    from asgishift.audit._link import Graph

_MIXINS = "django.contrib.auth.mixins."
#: Django's base of the auth mixins: a project class under it that defines a
#: sync ``dispatch`` is a custom access mixin.
ACCESS_MIXIN = _MIXINS + "AccessMixin"
#: Django's auth mixins whose ``dispatch()`` reads ``request.user`` synchronously,
#: with the fix the message names for each.
SYNC_AUTH_MIXINS: dict[str, str] = {
    _MIXINS + "LoginRequiredMixin": (
        "use asgishift.django_integration.views.AsyncLoginRequiredMixin with one of its "
        "async views, or decorate an `async def dispatch` with "
        "`method_decorator(login_required)` (async-aware on Django 5.0+)"
    ),
    _MIXINS + "PermissionRequiredMixin": (
        "use asgishift.django_integration.views.AsyncPermissionRequiredMixin with one of "
        "its async views, or decorate an `async def dispatch` with "
        "`method_decorator(permission_required(...))` (async-aware on Django 5.0+)"
    ),
    _MIXINS + "UserPassesTestMixin": (
        "decorate an `async def dispatch` with `method_decorator(user_passes_test(...))` "
        "(async-aware on Django 5.0+), or test `await request.auser()` there"
    ),
}
#: Passed after a project's own ``async def dispatch`` under ``AccessMixin`` that
#: checks the user (:func:`_checks_user`, a hand-made async twin), its sync
#: ``is_authenticated`` check reads the user already loaded: no query.
LOGIN_REQUIRED = _MIXINS + "LoginRequiredMixin"
#: The fix named for a project's own access mixin with a sync ``dispatch``.
CUSTOM_MIXIN_FIX = (
    "make its `dispatch` an `async def` that loads the user with `await request.auser()`, "
    "or decorate an `async def dispatch` with `method_decorator(user_passes_test(...))` "
    "(async-aware on Django 5.0+)"
)
#: The fix named for an auth decorator that ``method_decorator`` puts on a sync ``dispatch``.
DECORATOR_FIX = (
    "put it on an `async def dispatch` (calling `await super().dispatch(...)`): "
    "`method_decorator` keeps that async and the decorator awaits `request.auser()` "
    "(Django 5.0+)"
)
#: Django's auth decorators: around a sync ``dispatch`` they check the user
#: synchronously; around an ``async def`` one (Django 5.0+) with ``await request.auser()``.
AUTH_DECORATORS = SESSION_LOADING_DECORATORS | {
    "django.contrib.admin.views.decorators.staff_member_required"
}
_VIEWS = "asgishift.django_integration.views."
#: asgishift's async twins (``views/auth.py``), by every name they are importable by.
ASYNC_TWINS = frozenset(
    f"{_VIEWS}{module}{name}"
    for module in ("", "auth.")
    for name in ("AsyncLoginRequiredMixin", "AsyncPermissionRequiredMixin")
)
#: asgishift's async views (``views/base.py``, ``views/generic.py``): ``view_is_async``
#: is always true and their ``async def dispatch`` does not call ``super()``.
ASYNC_VIEWS = frozenset(
    {
        "AsyncViewMixin",
        "AsyncView",
        "AsyncTemplateView",
        "AsyncRedirectView",
        "AsyncListView",
        "AsyncDetailView",
        "AsyncFormView",
        "AsyncCreateView",
        "AsyncUpdateView",
        "AsyncDeleteView",
    }
)
#: The bases of the external classes the hierarchy needs (the twins are
#: subclasses of Django's mixins, which are subclasses of ``AccessMixin``).
KNOWN_BASES: dict[str, tuple[str, ...]] = {
    **{mixin: (ACCESS_MIXIN,) for mixin in SYNC_AUTH_MIXINS},
    **{twin: (_MIXINS + twin.rsplit(".", 1)[1][5:],) for twin in ASYNC_TWINS},
}
#: The HTTP handlers ``View.view_is_async`` compares (all but ``options``).
HANDLERS = ("get", "post", "put", "patch", "delete", "head", "trace")
_FORM = ("get", "post", "put")
#: The sync handlers of Django's generic views (``django.views.generic``), by
#: class name; ``View`` itself has none but ``options``.
DJANGO_VIEW_HANDLERS: dict[str, tuple[str, ...]] = {
    "View": (),
    "TemplateView": ("get",),
    "RedirectView": ("get", "head", "post", "delete", "put", "patch"),
    **dict.fromkeys(("ListView", "BaseListView", "DetailView", "BaseDetailView"), ("get",)),
    **dict.fromkeys(
        (
            "FormView",
            "BaseFormView",
            "ProcessFormView",
            "CreateView",
            "BaseCreateView",
            "UpdateView",
            "BaseUpdateView",
        ),
        _FORM,
    ),
    **dict.fromkeys(("DeleteView", "BaseDeleteView"), ("get", "post", "delete")),
    **dict.fromkeys(
        (
            f"{prefix}{name}"
            for prefix in ("", "Base")
            for name in (
                "ArchiveIndexView",
                "YearArchiveView",
                "MonthArchiveView",
                "WeekArchiveView",
                "DayArchiveView",
                "TodayArchiveView",
                "DateDetailView",
            )
        ),
        ("get",),
    ),
}
#: Packages whose view classes end the ``dispatch`` chain (their ``dispatch``
#: calls the handler, not ``super().dispatch()``).
VIEW_PACKAGES = ("django.views.", "rest_framework.", "adrf.")
_SUPER_DISPATCH = "__super__.dispatch"

RULES: tuple[Rule, ...] = (
    Rule(
        code="ASH210",
        name="sync-auth-mixin-in-async-view",
        summary=(
            "An async Django class-based view inherits an auth mixin whose `dispatch()` "
            "checks `request.user` synchronously."
        ),
        message=(
            "{call} is an async view, but {mixin} checks request.user in a sync dispatch() "
            "(session and user queries on the event loop); {fix}"
        ),
        why=(
            "`View.as_view()` makes a view async when all its handlers are `async def` "
            "(asgishift's async views always are). Django's `LoginRequiredMixin`, "
            "`PermissionRequiredMixin` and `UserPassesTestMixin` (and a project mixin under "
            "`AccessMixin` with a sync `dispatch`) still check `request.user` in a sync "
            "`dispatch()`, which then runs on the event loop: loading a logged-in user raises "
            "`SynchronousOnlyOperation` (or blocks the loop with `DJANGO_ALLOW_ASYNC_UNSAFE`), "
            "and the login redirect returned for an anonymous user is not awaitable "
            "(`TypeError`). Django has no async version of these mixins. asgishift's "
            "`AsyncLoginRequiredMixin` and `AsyncPermissionRequiredMixin` "
            "(`asgishift.django_integration.views`, with its async views) do the check in a "
            "thread; Django's `login_required`, `permission_required` and `user_passes_test` "
            "wrap an `async def dispatch` through `method_decorator` on Django 5.0+; put on a "
            "sync `dispatch` (on the method, or by `@method_decorator(login_required, "
            'name="dispatch")` on the class, which wraps the inherited sync `View.dispatch`) '
            "they check the user synchronously too, and are reported. A view with both sync "
            "and `async def` handlers is not reported: `as_view()` refuses it."
        ),
        example=(
            "from django.contrib.auth.mixins import LoginRequiredMixin\n"
            "from django.http import HttpResponse\n"
            "from django.views import View\n\n\n"
            "class Dashboard(LoginRequiredMixin, View):\n"
            "    async def get(self, request):\n"
            '        return HttpResponse("hello")\n'
        ),
        fixed=(
            "from django.http import HttpResponse\n\n"
            "from asgishift.django_integration.views import AsyncLoginRequiredMixin, AsyncView\n"
            "\n\n"
            "class Dashboard(AsyncLoginRequiredMixin, AsyncView):\n"
            "    async def get(self, request):\n"
            '        return HttpResponse("hello")\n'
        ),
        severity=Severity.ERROR,
    ),
)


def _parents(graph: Graph, node: str) -> tuple[str, ...]:
    """Return the bases of a class of the hierarchy, in declaration order.

    :param node: a project class key, or an external class's dotted name.
    :return: project class keys and external names; an external class not
        in :data:`KNOWN_BASES` has none (its own bases are not known here).
    """
    info = graph.classes.get(node)
    if info is None:
        return KNOWN_BASES.get(node, ())
    bases: list[str] = []
    for base in info[0].bases:
        resolved = graph.resolve(base)
        if resolved.kind in ("class", "ext") and resolved.key not in bases:
            bases.append(resolved.key)
    return tuple(bases)


def linearize(graph: Graph, node: str, memo: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Return the method resolution order of ``node`` (C3, as Python computes it).

    An inconsistent hierarchy (which Python refuses) or a cycle gets the
    depth-first order instead.

    :param memo: linearizations already computed in this run.
    """
    hit = memo.get(node)
    if hit is not None:
        return hit
    memo[node] = (node,)  # cycle guard
    parents = _parents(graph, node)
    sequences = [list(linearize(graph, p, memo)) for p in parents] + [list(parents)]
    order = [node]
    while any(sequences):
        head = next(
            (
                seq[0]
                for seq in sequences
                if seq and not any(seq[0] in other[1:] for other in sequences)
            ),
            None,
        )
        if head is None:  # no consistent order: fall back to depth-first
            for seq in sequences:
                order.extend(n for n in seq if n not in order)
            break
        order.append(head)
        for seq in sequences:
            if seq and seq[0] == head:
                del seq[0]
    memo[node] = tuple(order)
    return memo[node]


def is_async_view_base(name: str) -> bool:
    """Return whether ``name`` is one of asgishift's async views (:data:`ASYNC_VIEWS`)."""
    return name.startswith(_VIEWS) and name.rsplit(".", 1)[1] in ASYNC_VIEWS


def _named_handlers(graph: Graph, order: tuple[str, ...]) -> tuple[str, ...]:
    """Return the :data:`HANDLERS` the ``http_method_names`` of MRO ``order`` allows."""
    for node in order:
        entry = graph.classes.get(node)
        if entry is None:
            continue
        cls = entry[0]
        if cls.http_method_names is not None:
            return tuple(handler for handler in HANDLERS if handler in cls.http_method_names)
        if "http_method_names" in cls.plain or any(
            name == "http_method_names" for name, _ in cls.members
        ):
            return HANDLERS  # assigned, but not a literal the audit reads
    return HANDLERS


def handler_kinds(graph: Graph, order: tuple[str, ...]) -> dict[str, tuple[bool, str]]:
    """Return ``{handler: (is_async, where)}`` for the HTTP handlers a view class has.

    :param order: the class's MRO (:func:`linearize`).
    :return: for each of :data:`HANDLERS` that some class along
        ``order`` has, whether the first one is an ``async def`` and the class
        it comes from (a project class key, or a Django view's dotted name).
        Only the handlers a project class's literal ``http_method_names``
        names count, as in ``View.view_is_async`` (the first class along
        ``order`` that assigns the attribute decides; an assignment the audit
        cannot read counts as Django's default, every handler).
    """
    kinds: dict[str, tuple[bool, str]] = {}
    for handler in _named_handlers(graph, order):
        for node in order:
            func = graph.funcs.get(f"{node}.{handler}")
            if func is not None:
                kinds[handler] = (func[0].is_async, node)
                break
            if node.startswith("django.views.") and handler in DJANGO_VIEW_HANDLERS.get(
                node.rsplit(".", 1)[1], ()
            ):
                kinds[handler] = (False, node)
                break
    return kinds


def _view_is_async(graph: Graph, order: tuple[str, ...]) -> bool:
    """Return whether ``as_view()`` makes the class of MRO ``order`` an async view.

    ``True`` when one of asgishift's async views comes before Django's views,
    or when every handler of :data:`HANDLERS` the class has is an ``async
    def`` (at least one): the first class in ``order`` that defines it
    decides, a project method by its ``async``, one of
    :data:`DJANGO_VIEW_HANDLERS` as sync. ``False`` for a class with no
    Django view in ``order``, and for mixed handlers (Django raises
    ``ImproperlyConfigured`` then).
    """
    is_view = False
    for node in order:
        if is_async_view_base(node):
            return True
        if node.startswith(VIEW_PACKAGES):
            is_view = True
            break
    if not is_view:
        return False
    kinds = {is_async for is_async, _ in handler_kinds(graph, order).values()}
    return kinds == {True}


def _async_dispatch(graph: Graph, order: tuple[str, ...]) -> bool:
    """Return whether the first ``dispatch`` defined along ``order`` is an ``async def``.

    A project method decides by its ``async``; asgishift's twins and async
    views have one; Django's mixins and views (and the other
    :data:`VIEW_PACKAGES`) a sync one; other external classes are passed.
    """
    for node in order:
        func = graph.funcs.get(f"{node}.dispatch")
        if func is not None:
            return func[0].is_async
        if node in ASYNC_TWINS or is_async_view_base(node):
            return True
        if node in SYNC_AUTH_MIXINS or node.startswith(VIEW_PACKAGES):
            return False
    return False


def _decorator(graph: Graph, order: tuple[str, ...], at: int) -> str | None:
    """Return the auth decorator ``method_decorator`` wraps a sync ``dispatch`` of ``order[at]`` in.

    :param order: the view's MRO; :param at: the index of a project class in it.
    :return: ``"@method_decorator(login_required)"`` (the first of
        :data:`AUTH_DECORATORS` found) when the class decorates its own sync
        ``dispatch`` method with it, or names ``dispatch`` in a class
        decorator and the ``dispatch`` it wraps (the first along
        ``order[at:]``) is sync; ``None`` otherwise.
    """
    node = order[at]
    func = graph.funcs.get(f"{node}.dispatch")
    found = [d for d in func[0].decorators if d in AUTH_DECORATORS] if func is not None else []
    if not found:
        wrapped = graph.classes[node][0].wrapped
        found = [d for m, d in wrapped if m == "dispatch" and d in AUTH_DECORATORS]
    if not found or _async_dispatch(graph, order[at:]):
        return None
    return f"@method_decorator({found[0].rsplit('.', 1)[1]})"


def _checks_user(body: Body) -> bool:
    """Return whether an ``async def dispatch`` checks the user itself (loading it).

    :param body: the method's body record.
    :return: ``True`` when it calls ``handle_no_permission`` or
        ``sync_to_async``, or reads ``request.user`` (an ``ASH208`` hazard).
    """
    return any(h.code == "ASH208" for h in body.hazards) or any(
        site.target.endswith(".handle_no_permission") or site.target in SYNC_TO_ASYNC
        for site in body.calls
    )


def _sync_dispatch(
    graph: Graph, order: tuple[str, ...], memo: dict[str, tuple[str, ...]]
) -> tuple[str, str] | None:
    """Return ``(what, fix)`` when the ``dispatch()`` chain reaches a sync auth check.

    :param order: the view's MRO (:func:`linearize`).
    :return: the first of :data:`SYNC_AUTH_MIXINS`, or of
        :data:`AUTH_DECORATORS` wrapping a sync ``dispatch`` (:func:`_decorator`),
        the chain reaches; else the first project class under ``AccessMixin``
        with a sync ``dispatch`` that the chain passed (a custom access
        mixin); ``None`` when none comes before a ``dispatch`` that does not
        call ``super()``.
    """
    custom: tuple[str, str] | None = None
    own_check = False
    for at, node in enumerate(order):
        fix = SYNC_AUTH_MIXINS.get(node)
        if fix is not None and not (own_check and node == LOGIN_REQUIRED):
            return node.rsplit(".", 1)[1], fix
        if node in ASYNC_TWINS or is_async_view_base(node) or node.startswith(VIEW_PACKAGES):
            break
        if node not in graph.classes:
            continue
        decorator = _decorator(graph, order, at)
        if decorator is not None:
            return decorator, DECORATOR_FIX
        qual = f"{node}.dispatch"
        func = graph.funcs.get(qual)
        if func is None:
            continue
        body = graph.body(qual)
        if ACCESS_MIXIN in linearize(graph, node, memo):
            if not func[0].is_async and custom is None:
                custom = (node, CUSTOM_MIXIN_FIX)
            own_check = own_check or (func[0].is_async and _checks_user(body))
        if not any(site.target.endswith(_SUPER_DISPATCH) for site in body.calls):
            break
    return custom


def _sync_auth_mixins(graph: Graph, add: Add) -> None:
    """ASH210: an async class-based view whose ``dispatch()`` chain checks the user sync."""
    memo: dict[str, tuple[str, ...]] = {}
    for key, (cls, path) in graph.classes.items():
        order = linearize(graph, key, memo)
        if len(order) < 2 or not _view_is_async(graph, order):
            continue
        found = _sync_dispatch(graph, order, memo)
        if found is None:
            continue
        mixin, fix = found
        where = Site(key, cls.line, cls.col, cls.line, cls.col, False)
        args = {"call": key, "function": key, "mixin": mixin, "fix": fix}
        add(graph.finding("ASH210", path, where, args, ()))


FAMILY = Family(rules=RULES, hooks=Hooks(), checks=(_sync_auth_mixins,))

__all__ = [
    "ACCESS_MIXIN",
    "ASYNC_TWINS",
    "ASYNC_VIEWS",
    "AUTH_DECORATORS",
    "CUSTOM_MIXIN_FIX",
    "DECORATOR_FIX",
    "DJANGO_VIEW_HANDLERS",
    "FAMILY",
    "HANDLERS",
    "KNOWN_BASES",
    "LOGIN_REQUIRED",
    "RULES",
    "SYNC_AUTH_MIXINS",
    "VIEW_PACKAGES",
    "handler_kinds",
    "is_async_view_base",
    "linearize",
]
