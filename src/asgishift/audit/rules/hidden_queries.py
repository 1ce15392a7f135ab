"""Rules ``ASH207``-``ASH209``: Django APIs that query the database behind a sync call.

They belong to the ``ASH2xx`` family (the Django ORM used synchronously from
async code) but reach the database without a visible QuerySet:

* ``ASH207``: the sites framework (``Site.objects.get_current()``,
  ``get_current_site(request)``) reads the current ``Site`` and has no async
  version; matched by call name, so a sync helper reached from async code
  counts too.
* ``ASH208``: reading an attribute of ``request.user`` loads the session and
  the user (``AuthenticationMiddleware`` makes it a lazy object).
* ``ASH209``: the sync session API (``request.session["k"]``,
  ``.get()``, ``"k" in request.session`` as an ``if``/``while`` condition)
  loads the session from its store.

``ASH208`` and ``ASH209`` are recorded only in the body of an ``async def``
itself, on a parameter or variable that is a Django request: one annotated
with a Django request type (or a project type that resolves to one at link
time: a subclass, a re-export), or one named ``request`` in a module that
imports Django (a Starlette ``request.user`` is no query), or ``self.request``
in an async method of a class there (a class-based view: ``View.setup()``
stores the request on the view).

``ASH208`` skips the request of a REST framework or ``adrf`` view, and of its
permission and throttle methods (:func:`drf_handler`, and
:func:`request_holds` for bases further up): its ``user`` is loaded before
they run. ``ASH209`` skips a view decorated with ``login_required`` (or
``permission_required``, ``user_passes_test``), which loads the session with
``await request.auser()`` first. Once the function assigns ``request.user`` or
``request.session`` itself (a test building its request with
``RequestFactory``), reads of it are not reported: they read the stored value.
A sync helper taking the request is not followed: whether it gets the request
is not known statically.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from asgishift.audit._model import FixKind, Rule, Severity
from asgishift.audit._scope import Hooks
from asgishift.audit.rules._family import Family

if TYPE_CHECKING:
    from asgishift.audit._link import Graph
    from asgishift.audit._walk import WalkerBase

#: Annotations that make a parameter a Django request.
DJANGO_REQUESTS = frozenset(
    {
        "django.http.HttpRequest",
        "django.http.request.HttpRequest",
        "django.core.handlers.asgi.ASGIRequest",
        "django.core.handlers.wsgi.WSGIRequest",
        "rest_framework.request.Request",
    }
)
#: A REST framework request: its ``user`` is authenticated before the handler runs.
DRF_REQUEST = "rest_framework.request.Request"
#: Packages whose views authenticate the request (in a thread, for ``adrf``'s
#: async views) before calling the handler: a base class from one of them, or
#: their ``api_view`` decorator, makes the handler's ``request.user`` a loaded
#: user (and ``request.auser()`` would skip the view's authenticators).
DRF_PACKAGES = ("rest_framework.", "adrf.")
#: Decorators that, on an async view (Django 5.0+; older versions do not wrap
#: one), ``await request.auser()`` before the view runs: that loads the
#: session, so the view's sync session reads are served from its cache.
SESSION_LOADING_DECORATORS = frozenset(
    {
        "django.contrib.auth.decorators.login_required",
        "django.contrib.auth.decorators.permission_required",
        "django.contrib.auth.decorators.user_passes_test",
    }
)
#: The kind of the link-time condition of a hazard on a request (:func:`request_holds`).
REQUEST_COND = "djreq"
#: REST framework permission and throttle methods, ``(self, request, view...)``:
#: the view calls them after authenticating the request.
DRF_VIEW_HOOKS = frozenset({"has_permission", "has_object_permission", "allow_request"})
#: Top-level packages whose import makes a parameter named ``request`` Django's.
DJANGO_PACKAGES = ("django", "rest_framework", "adrf", "ninja")
#: The name an unannotated Django request parameter goes by.
REQUEST_NAME = "request"
#: Session methods that load the session; each has an async twin ``"a" + name``
#: since Django 5.1 (``clear()`` and the ``session_key`` property load nothing).
SESSION_LOADS = frozenset(
    {
        "get",
        "pop",
        "setdefault",
        "update",
        "has_key",
        "keys",
        "values",
        "items",
        "flush",
        "cycle_key",
        "set_expiry",
        "get_expiry_age",
        "get_expiry_date",
        "get_expire_at_browser_close",
        "set_test_cookie",
        "test_cookie_worked",
        "delete_test_cookie",
        "save",
        "delete",
        "exists",
        "create",
        "load",
    }
)
#: The async session method that does what a subscript does, by its context.
_SUBSCRIPT_TWINS: dict[type[ast.expr_context], str] = {
    ast.Load: "aget",
    ast.Store: "aset",
    ast.Del: "apop",
}

RULES: tuple[Rule, ...] = (
    Rule(
        code="ASH207",
        name="sync-only-django-query",
        summary=(
            "A Django API that queries the database and has no async version runs in (or is "
            "reachable from) async code."
        ),
        message=(
            "{call}() queries the database in async code and has no async version; "
            "call it with `await sync_to_async(...)`"
        ),
        why=(
            "The sites framework reads the current `Site` from the database "
            "(`Site.objects.get_current()`, `get_current_site(request)`; later calls hit "
            "its cache, the first one in each process does not), which raises "
            "`SynchronousOnlyOperation` in an event-loop thread. Django offers no async "
            "twin, so run it in a thread."
        ),
        example=(
            "from django.contrib.sites.shortcuts import get_current_site\n\n\n"
            "async def home(request):\n    return get_current_site(request).domain\n"
        ),
        fixed=(
            "from asgiref.sync import sync_to_async\n"
            "from django.contrib.sites.shortcuts import get_current_site\n\n\n"
            "async def home(request):\n"
            "    return (await sync_to_async(get_current_site)(request)).domain\n"
        ),
        calls=(
            "django.contrib.sites.shortcuts.get_current_site",
            "django.contrib.sites.models.Site.objects.get_current",
            "django.contrib.sites.models.SiteManager.get_current",
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH208",
        name="lazy-request-user",
        summary="An async Django view reads an attribute of the lazy `request.user`.",
        message=(
            "Reading {call} loads the user (session and database queries) in async code; "
            "use `user = await {request}.auser()` (Django 5.0+) and read `user.{field}`"
        ),
        why=(
            "`AuthenticationMiddleware` sets `request.user` to a lazy object: the first "
            "attribute read loads the session and the user from the database, which "
            "raises `SynchronousOnlyOperation` in an async view. `await request.auser()` "
            "loads it without blocking. Passing `request.user` on unread (to an async "
            "QuerySet method, to `sync_to_async`) is not reported, nor is a REST framework "
            "or `adrf` view's `request.user`: the view authenticates it before the handler "
            "runs."
        ),
        example=(
            "from django.http import HttpResponse\n\n\nasync def profile(request):\n"
            "    return HttpResponse(request.user.username)\n"
        ),
        fixed=(
            "from django.http import HttpResponse\n\n\nasync def profile(request):\n"
            "    user = await request.auser()\n    return HttpResponse(user.username)\n"
        ),
    ),
    Rule(
        code="ASH209",
        name="sync-session-access",
        summary="An async Django view reads or writes `request.session` through its sync API.",
        message=(
            "{call} loads the session from its store in async code; use "
            "`await {request}.session.{async_call}(...)` (Django 5.1+) or `sync_to_async`"
        ),
        why=(
            "The session is loaded on first use: `request.session[key]`, `.get()`, "
            '`"key" in request.session`, `.flush()`... read it from the session store '
            "synchronously, a database query with the default backend "
            "(`SynchronousOnlyOperation` in an async view), a cache or file read with "
            "others. Django 5.1 added async twins (`aget`, `aset`, `apop`, `ahas_key`, "
            "`aflush`...). A signed-cookie session loads nothing: silence the rule then. "
            "An async view decorated with `login_required` (or `permission_required`, "
            "`user_passes_test`) is not reported: the decorator has loaded the session."
        ),
        example=(
            "from django.http import JsonResponse\n\n\nasync def cart(request):\n"
            '    return JsonResponse({"items": request.session.get("cart", [])})\n'
        ),
        fixed=(
            "from django.http import JsonResponse\n\n\nasync def cart(request):\n"
            '    return JsonResponse({"items": await request.session.aget("cart", [])})\n'
        ),
        severity=Severity.WARNING,
    ),
)


def django_request(walker: WalkerBase, name: str) -> bool:
    """Return whether ``name`` is a Django request in the ``async def`` being walked.

    :param walker: the walker, inside a function body.
    :param name: a variable read there.
    :return: ``True`` when the innermost function is an ``async def`` that
        binds ``name`` itself (a parameter or a local) and ``name`` is
        annotated with a :data:`DJANGO_REQUESTS` type, or unannotated, named
        ``request``, in a module importing one of :data:`DJANGO_PACKAGES`.
    """
    scope = walker.scope
    if scope is None or not scope.is_async or name not in scope.locals:
        return False
    typ = scope.types.get(name)
    if typ is not None:
        return typ in DJANGO_REQUESTS
    if name != REQUEST_NAME or name in scope.querysets or name in scope.models:
        return False
    return _imports_django(walker)


def _imports_django(walker: WalkerBase) -> bool:
    """Return whether the module walked imports one of :data:`DJANGO_PACKAGES`."""
    return any(module.partition(".")[0] in DJANGO_PACKAGES for module in walker.imported)


def view_request(walker: WalkerBase, node: ast.expr) -> tuple[str, str] | None:
    """Return how the code names a request when ``node`` may be a Django one.

    :param walker: the walker, inside a function body.
    :param node: the receiver of ``.user`` or ``.session``.
    :return: ``(name, "")`` for a name :func:`django_request` accepts, and
        for ``self.request`` in an ``async def`` method (``self`` its first
        parameter) of a class in a module importing one of
        :data:`DJANGO_PACKAGES` (``View.setup()`` stores the request there
        before ``dispatch()`` calls ``get``/``post``); ``(name, type)`` for a
        local of the ``async def`` annotated with another type, a Django
        request only if ``type`` turns out to be one at link time (a
        project's ``HttpRequest`` subclass or re-export: see
        :func:`request_holds`); ``None`` otherwise.
    """
    scope = walker.scope
    if scope is None or not scope.is_async:
        return None
    if type(node) is ast.Name:
        name = node.id
        if django_request(walker, name):
            return name, ""
        typ = scope.types.get(name)
        if typ is not None and typ not in DJANGO_REQUESTS and name in scope.locals:
            return name, typ
        return None
    if type(node) is ast.Attribute and node.attr == REQUEST_NAME:
        owner = node.value
        if (
            type(owner) is ast.Name
            and scope.class_qual
            and scope.types.get(owner.id) == scope.class_qual
            and _imports_django(walker)
        ):
            return f"{owner.id}.{REQUEST_NAME}", ""
    return None


def _request_part(walker: WalkerBase, node: ast.expr, part: str) -> tuple[str, str] | None:
    """Return :func:`view_request` of ``<request>`` when ``node`` is ``<request>.<part>``.

    ``None`` too when the function assigned ``<request>.<part>`` itself
    before (``request.user = user`` in a test): it then holds that value,
    not the middleware's lazy object.
    """
    if type(node) is not ast.Attribute or node.attr != part:
        return None
    found = view_request(walker, node.value)
    if found is None:
        return None
    scope = walker.scope
    assert scope is not None  # view_request accepted it inside a function
    if scope.set_attrs and f"{found[0]}.{part}" in scope.set_attrs:
        return None
    return found


def _condition(walker: WalkerBase, typ: str, user: bool) -> str:
    """Return the link-time condition of a hazard on a request (``""``: none).

    :param typ: the request's annotation still to resolve, or ``""``.
    :param user: ``True`` for ``ASH208``: a method of a class whose bases
        are not all known gets the class checked for a REST framework view
        up its bases too (see :func:`request_holds`).
    """
    scope = walker.scope
    assert scope is not None
    cls = scope.class_qual if user and scope.class_bases else ""
    if not typ and not cls:
        return ""
    return f"{REQUEST_COND}:{typ}|{cls}|{'1' if user else '0'}"


def request_holds(graph: Graph, argument: str) -> bool:
    """``djreq:<type>|<class>|<user>``: keep a hazard on a request only if it is Django's.

    :param graph: the linked project.
    :param argument: ``type`` is the request's annotation (``""``: known to be
        Django's); it must resolve to one of :data:`DJANGO_REQUESTS` or a
        project class with one among its bases. With ``user`` ``"1"``
        (``ASH208``), a REST framework request is dropped, as is a hazard in
        a method of ``class`` when the class has a base from
        :data:`DRF_PACKAGES` further up (a project's ``BaseAPIView``).
    :return: whether the hazard stays.
    """
    typ, cls, user = argument.split("|")
    if typ:
        resolved = graph.resolve(typ)
        if resolved.kind == "class":
            bases = graph.mro(resolved.key)[1]
        elif resolved.kind == "ext":
            bases = (resolved.key,)
        else:
            return False
        if not any(base in DJANGO_REQUESTS for base in bases):
            return False
        if user == "1" and DRF_REQUEST in bases:
            return False
    return not cls or not any(base.startswith(DRF_PACKAGES) for base in graph.mro(cls)[1])


def drf_handler(walker: WalkerBase, name: str) -> bool:
    """Return whether ``name`` is the request of a REST framework (or ``adrf``) view.

    :param walker: the walker, inside a function body.
    :param name: the request as the code names it (``request``, ``self.request``).
    :return: ``True`` when it is annotated :data:`DRF_REQUEST`, or the function
        is decorated with an ``api_view`` of :data:`DRF_PACKAGES`, or is a
        method of a class with a direct base from one of them (bases further
        up, a project's own ``BaseAPIView``, are checked at link time by
        :func:`request_holds`), or is a permission or throttle method
        (:data:`DRF_VIEW_HOOKS`) taking a ``view`` (an ``adrf`` permission
        class needs no base).
    """
    scope = walker.scope
    assert scope is not None
    if scope.types.get(name) == DRF_REQUEST:
        return True
    method = scope.qualname.rpartition(".")[2]
    if scope.class_qual and method in DRF_VIEW_HOOKS and "view" in scope.locals:
        return True
    if any(d.startswith(DRF_PACKAGES) and d.endswith(".api_view") for d in scope.decorators):
        return True
    return any(base.startswith(DRF_PACKAGES) for base in scope.class_bases)


def _session_loaded(walker: WalkerBase) -> bool:
    """Return whether a decorator of the function loaded the session before it runs.

    :param walker: the walker, inside a function body.
    :return: ``True`` when one of :data:`SESSION_LOADING_DECORATORS` wraps it.
    """
    scope = walker.scope
    assert scope is not None
    return any(d in SESSION_LOADING_DECORATORS for d in scope.decorators)


def _user_or_session(walker: WalkerBase, node: ast.Attribute) -> None:
    """``request.user.<attr>`` (``ASH208``) or ``request.session.<method>`` (``ASH209``).

    :param node: an attribute read, or the callee of a call (the walk hands
        the attribute hooks no callee: :func:`_on_call` passes it here).
    """
    value = node.value
    if type(value) is not ast.Attribute:
        return
    kind = value.attr
    if kind == "user":
        found = _request_part(walker, value, "user")
        if found is not None and not drf_handler(walker, found[0]):
            name = found[0]
            extra = (("request", name), ("field", node.attr))
            cond = _condition(walker, found[1], True)
            walker.hazard("ASH208", node, f"{name}.user.{node.attr}", extra, cond)
    elif kind == "session" and node.attr in SESSION_LOADS:
        found = _request_part(walker, value, "session")
        if found is not None and not _session_loaded(walker):
            name = found[0]
            extra = (("request", name), ("async_call", "a" + node.attr))
            cond = _condition(walker, found[1], False)
            walker.hazard("ASH209", node, f"{name}.session.{node.attr}()", extra, cond)


def _on_attribute(walker: WalkerBase, node: ast.Attribute) -> None:
    """An attribute read: ``request.user.username``."""
    if type(node.ctx) is ast.Load and type(node.value) is ast.Attribute:
        _user_or_session(walker, node)


def _on_call(walker: WalkerBase, node: ast.Call, target: str | None) -> None:
    """A method call: ``request.user.has_perm(...)``, ``request.session.get(...)``."""
    del target
    func = node.func
    if type(func) is ast.Attribute and type(func.value) is ast.Attribute:
        _user_or_session(walker, func)


def _on_subscript(walker: WalkerBase, node: ast.Subscript) -> None:
    """``request.session[key]`` read, set or deleted (``ASH209``)."""
    found = _request_part(walker, node.value, "session")
    if found is not None and not _session_loaded(walker):
        name = found[0]
        twin = _SUBSCRIPT_TWINS.get(type(node.ctx), "aget")
        extra = (("request", name), ("async_call", twin))
        cond = _condition(walker, found[1], False)
        walker.hazard("ASH209", node, f"{name}.session[...]", extra, cond)


def _on_test(walker: WalkerBase, expr: ast.expr, how: str) -> None:
    """``key in request.session`` tested by ``if``/``while``/``not`` (``ASH209``)."""
    del how
    if type(expr) is not ast.Compare:
        return
    compare: ast.Compare = expr
    for op, right in zip(compare.ops, compare.comparators, strict=True):
        if type(op) is ast.In or type(op) is ast.NotIn:
            found = _request_part(walker, right, "session")
            if found is not None and not _session_loaded(walker):
                name = found[0]
                extra = (("request", name), ("async_call", "ahas_key"))
                cond = _condition(walker, found[1], False)
                walker.hazard("ASH209", right, f"... in {name}.session", extra, cond)


FAMILY = Family(
    rules=RULES,
    conditions={REQUEST_COND: request_holds},
    hooks=Hooks(
        call=(_on_call,),
        attribute=(_on_attribute,),
        subscript=(_on_subscript,),
        test=(_on_test,),
    ),
)

__all__ = [
    "DJANGO_PACKAGES",
    "DJANGO_REQUESTS",
    "DRF_PACKAGES",
    "DRF_REQUEST",
    "DRF_VIEW_HOOKS",
    "FAMILY",
    "REQUEST_COND",
    "RULES",
    "SESSION_LOADING_DECORATORS",
    "SESSION_LOADS",
    "django_request",
    "drf_handler",
    "request_holds",
    "view_request",
]
