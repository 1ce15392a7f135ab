"""The async view machinery: one thread hop per view phase.

:class:`AsyncViewMixin` makes any Django class-based view async without
rewriting it. Django's generic views are sync code calling hooks
(``get_queryset``, ``get_context_data``, ``form_valid``, ...). Here the whole
sync handler of a request (``BaseListView.get``, ``ProcessFormView.post``, ...)
runs in **one** thread hop, together with the access checks of the auth mixins
and the template rendering, instead of one hop per ORM call. The hop goes
through :func:`asgishift.django_integration.db.db_sync_to_async`: the
request's thread-sensitive executor (asgishift's bounded handler or Django's).

Hooks may be ``async def``: a subclass's coroutine hooks are called from the
worker thread through ``async_to_sync`` (they run on the event loop, and their
own ORM calls through ``db_sync_to_async`` come back to the same thread). An
async hook calling ``super()`` for a hook that queries the database awaits it
through the wrapper: ``await db_sync_to_async(super().get_context_data)(**kwargs)``.

Rendering in the phase: a ``TemplateResponse`` is rendered on the worker thread
in the same hop. Under an ASGI handler the rendered response then tells Django
it needs no further render hop. ``process_template_response`` middleware sees
an already rendered response; set ``render_in_phase = False`` on a view to
keep Django's deferred rendering (one more hop).

See https://docs.djangoproject.com/en/stable/topics/class-based-views/ and
https://docs.djangoproject.com/en/stable/topics/async/#async-views.
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import Callable
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync, iscoroutinefunction
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpResponse
from django.template.response import SimpleTemplateResponse
from django.utils.functional import classproperty
from django.views.generic import RedirectView, TemplateView, View

from asgishift.django_integration._explain import explain
from asgishift.django_integration._hops import run

#: Attributes never treated as hooks (the request entry points and Django internals).
_NOT_HOOKS = frozenset({"dispatch", "setup", "as_view", "view_is_async", "__init__"})


@functools.cache
def _async_hook_names(cls: type) -> tuple[str, ...]:
    """Names of the coroutine-function attributes of ``cls`` a sync phase may call."""
    names = []
    for name in dir(cls):
        if name.startswith("__") or name in _NOT_HOOKS:
            continue
        attr = getattr(cls, name, None)
        if not (callable(attr) and iscoroutinefunction(attr)):
            continue
        if getattr(attr, "__module__", "").startswith(__package__ or __name__):
            continue  # asgishift's own async methods are called async-aware already
        names.append(name)
    return tuple(names)


class _AsyncHook:
    """Stand-in for an ``async def`` hook while a sync phase may call it.

    Called on the worker thread it runs the coroutine on the event loop
    (``async_to_sync``) and returns its result; called on the loop it returns
    the coroutine for the caller to await.
    """

    def __init__(self, bound: Callable[..., Any]) -> None:
        self.bound = bound
        functools.update_wrapper(self, bound)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: run it on the loop and wait
            return async_to_sync(self.bound)(*args, **kwargs)
        return self.bound(*args, **kwargs)


async def _rendered(response: SimpleTemplateResponse) -> SimpleTemplateResponse:
    """The ``render`` of a response already rendered in the view's hop: return it as it is."""
    return response


# A bound method pickles as getattr(response, "<name>"): named "render", a pickled
# response (cache_page, the cache middleware) comes back with the class's own render().
_rendered.__name__ = "render"


def _mark_rendered(response: SimpleTemplateResponse) -> None:
    """Let Django's async handler skip its render hop for a response rendered in the phase.

    Django's ASGI path awaits ``response.render()`` when it is a coroutine
    function instead of hopping to a thread; a sync handler (WSGI, the test
    ``Client``) calls ``render()`` itself, so the response is left as it is there.
    The marked response still pickles (Django's cache framework stores it), and
    unpickles with its class's ``render()``.
    """
    if getattr(AsyncToSync.executors, "current", None) is not None:
        return  # called through async_to_sync: a sync get_response() renders (no hop)
    if SyncToAsync.thread_sensitive_context.get(None) is None:
        return  # no request thread (e.g. AsyncClient): keep Django's own path
    response.render = types.MethodType(_rendered, response)


class AsyncViewMixin:
    """Make a Django class-based view async: put it first in the bases.

    ``class ArticleList(AsyncViewMixin, ListView)`` is what
    :class:`~asgishift.django_integration.views.AsyncListView` is. The view's
    ``as_view()`` returns a coroutine function; a sync handler (``get``,
    ``post``, ...) runs with the :meth:`check_access` checks and the template
    rendering in one thread hop; an ``async def`` handler runs on the loop.

    :cvar render_in_phase: render a ``TemplateResponse`` in the handler's hop
        (default ``True``; see the module doc).
    """

    render_in_phase = True

    @classproperty
    def view_is_async(cls) -> bool:
        """Always true: ``as_view()`` marks the view function as a coroutine function."""
        return True

    def check_access(self) -> HttpResponse | None:
        """Run on the worker thread before the handler; return a response to deny.

        The async auth mixins override it (and call ``super()``), so their
        checks share the handler's hop. May raise ``PermissionDenied``.
        """
        return None

    def _install_async_hooks(self) -> None:
        cls: Any = type(self)
        for name in _async_hook_names(cls):
            setattr(self, name, _AsyncHook(getattr(self, name)))

    async def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Route to the handler for ``request.method`` (as Django's ``View.dispatch``).

        :raise: what the handler raises; ``SynchronousOnlyOperation`` from an
            async hook is re-raised as ``AsyncORMUsageError`` naming the fix.
        """
        method = request.method.lower()
        handler = None
        if method in self.http_method_names:  # type: ignore[attr-defined]
            handler = getattr(self, method, None)
        if handler is None:
            handler = self.http_method_not_allowed
        checks = type(self).check_access is not AsyncViewMixin.check_access
        self._install_async_hooks()
        try:
            if iscoroutinefunction(handler):
                if checks:
                    denied = await run(self.check_access, (), {})
                    if denied is not None:
                        return denied
                return await handler(request, *args, **kwargs)
            return await run(self._phase, (handler, request, args, kwargs), {})
        except SynchronousOnlyOperation as exc:
            raise explain(exc) from exc

    def _phase(
        self, handler: Callable[..., Any], request: Any, args: tuple[Any, ...], kwargs: Any
    ) -> Any:
        """The worker-thread part of a request: access checks, handler, rendering."""
        denied = self.check_access()
        if denied is not None:
            return denied
        response = handler(request, *args, **kwargs)
        if (
            self.render_in_phase
            and isinstance(response, SimpleTemplateResponse)
            and not response.is_rendered
        ):
            response.render()
            _mark_rendered(response)
        return response

    async def options(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Answer ``OPTIONS`` with the ``Allow`` header (as Django's ``View.options``)."""
        response = View.options(self, request, *args, **kwargs)
        return await response if not isinstance(response, HttpResponse) else response

    async def http_method_not_allowed(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Answer 405 with the ``Allow`` header, logging it (as Django does)."""
        response = View.http_method_not_allowed(self, request, *args, **kwargs)
        return await response if not isinstance(response, HttpResponse) else response


class AsyncView(AsyncViewMixin, View):
    """Django's ``View`` for async code: handlers may be ``async def`` or sync.

    A sync handler runs in one hop on the request's thread (with the ORM),
    an async one on the event loop; they may be mixed, unlike Django's
    ``View`` which requires all-sync or all-async.
    """


class AsyncTemplateView(AsyncViewMixin, TemplateView):
    """Django's ``TemplateView``, async: context and rendering in one thread hop."""


class AsyncRedirectView(AsyncViewMixin, RedirectView):
    """Django's ``RedirectView``, async.

    The default ``get_redirect_url`` (a ``url`` pattern or ``reverse()``) runs
    on the event loop with no hop; an overridden sync one runs in one hop (it
    may query the database); an ``async def`` one is awaited.
    """

    async def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Redirect to :meth:`get_redirect_url`, or answer 410 Gone when it is ``None``."""
        hook = type(self).get_redirect_url
        if isinstance(self.__dict__.get("get_redirect_url"), _AsyncHook) or iscoroutinefunction(
            hook
        ):
            url = await self.get_redirect_url(*args, **kwargs)
            return RedirectView.get(_FixedURL(self, url), request, *args, **kwargs)
        if hook is RedirectView.get_redirect_url:
            return RedirectView.get(self, request, *args, **kwargs)
        return await run(RedirectView.get, (self, request, *args), kwargs)

    async def head(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`get`."""
        return await self.get(request, *args, **kwargs)

    async def post(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`get`."""
        return await self.get(request, *args, **kwargs)

    async def options(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`get` (Django's ``RedirectView`` redirects ``OPTIONS`` too)."""
        return await self.get(request, *args, **kwargs)

    async def delete(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`get`."""
        return await self.get(request, *args, **kwargs)

    async def put(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`get`."""
        return await self.get(request, *args, **kwargs)

    async def patch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`get`."""
        return await self.get(request, *args, **kwargs)


class _FixedURL:
    """A view proxy whose ``get_redirect_url`` returns a URL computed beforehand."""

    def __init__(self, view: Any, url: str | None) -> None:
        self._view = view
        self._url = url

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str | None:
        return self._url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)
