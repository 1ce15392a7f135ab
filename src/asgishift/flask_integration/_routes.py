"""Which requests run on the event loop: match the URL map before dispatch.

A request goes to the loop when the endpoint its URL matches is an
``async def`` view (or a WebSocket rule); everything else is handed to the
WSGI bridge unchanged. Matching uses Flask's own URL adapter
(:meth:`flask.Flask.create_url_adapter`), so host and subdomain matching,
``SERVER_NAME`` and ``TRUSTED_HOSTS`` behave as in Flask.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Request

__all__ = ["RouteTable", "route_key", "wrapped_coroutine_function"]

logger = logging.getLogger("asgishift.flask")

#: How many request targets known to go to a sync view are remembered.
SYNC_CACHE_SIZE = 4096

RouteKey = tuple[str, str, bytes, str, str, tuple[bytes, ...]]


def route_key(scope: Mapping[str, Any], headers: tuple[bytes, ...] = ()) -> RouteKey:
    """Return what URL matching depends on in an ASGI HTTP scope.

    Method, scheme, ``Host`` header, ``root_path``, path and the values of
    ``headers``: the query string and the other headers never change which
    rule matches.

    :param headers: more lower-case header names whose values count, in the
        order given (the ``X-Forwarded-*`` headers the app's ``ProxyFix``
        reads, see :class:`~._proxy.ProxyHeaders`); absent ones count as empty.
    """
    host = b""
    extra: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = bytes(value)
            if not headers:
                break
        elif name in headers:
            extra.setdefault(bytes(name), bytes(value))
    return (
        scope["method"],
        scope.get("scheme") or "http",
        host,
        scope.get("root_path", ""),
        scope["path"],
        tuple(extra.get(name, b"") for name in headers) if headers else (),
    )


class RouteTable:
    """The async endpoints of one Flask app, refreshed when views are added.

    :param app: the Flask app whose ``view_functions`` and ``url_map`` are read.
    """

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._seen = -1
        self._async: frozenset[str] = frozenset()
        # Request targets that matched a sync view (or nothing): they go
        # straight to the bridge next time. Only negative answers are kept, so
        # an async request always gets Flask's full checks (TRUSTED_HOSTS...).
        self._sync: OrderedDict[RouteKey, None] = OrderedDict()
        # Endpoints already reported by _warn_about_sync_wrappers.
        self._reported: set[str] = set()

    def _refresh(self) -> None:
        # Endpoints are classified by their view function; a new view means a
        # new endpoint, so the count tells when to look again.
        views = self._app.view_functions
        if len(views) == self._seen:
            return
        self._async = frozenset(
            name for name, view in views.items() if inspect.iscoroutinefunction(view)
        )
        self._sync.clear()
        self._seen = len(views)
        self._warn_about_sync_wrappers(views)

    def _warn_about_sync_wrappers(self, views: Mapping[str, Any]) -> None:
        """Log the endpoints whose ``async def`` view hides behind a plain ``def`` function.

        That is a decorator, or the view function of a class-based view
        (:meth:`flask.views.View.as_view`) with ``async def`` methods.

        Flask-Login's ``login_required`` and other decorators written for
        Flask's ``ensure_sync`` return a ``def`` function (``functools.wraps``
        keeps the view as ``__wrapped__``): the request then runs on a bridge
        worker thread, held until the coroutine it hands to the loop finishes,
        and queues or gets ``503`` when the pool is busy.
        """
        # WebSocket views behind such decorators run on the loop (_websocket._run_view).
        websocket = {rule.endpoint for rule in self._app.url_map.iter_rules() if rule.websocket}
        hidden = sorted(
            name
            for name, view in views.items()
            if name not in self._reported
            and name not in websocket
            and not inspect.iscoroutinefunction(view)
            and (wrapped_coroutine_function(view) is not None or _has_async_handlers(view))
        )
        if not hidden:
            return
        self._reported.update(hidden)
        logger.warning(
            "Flask app %r: the async def views of %s are called through plain def functions "
            "(a decorator such as flask_login.login_required, Flask-Limiter's limit or "
            "Flask-Caching's cached, or View.as_view), so they run "
            "as sync views: each request "
            "holds a worker thread of the ASGISHIFT_MAX_WORKERS pool while its coroutine runs "
            "on the event loop; make the decorator async def to run them on the loop "
            "(docs/flask.md, 'Decorated async views')",
            self._app.name,
            ", ".join(hidden),
        )

    @property
    def any_async(self) -> bool:
        """Return whether any endpoint is ``async def``, which makes matching worthwhile."""
        self._refresh()
        return bool(self._async)

    def is_async(self, endpoint: str) -> bool:
        """Return whether ``endpoint``'s view is ``async def``."""
        return endpoint in self._async

    def known_sync(self, key: RouteKey) -> bool:
        """Return whether ``key`` (from :func:`route_key`) matched no async view before."""
        return key in self._sync

    def async_request(self, environ: dict[str, Any], key: RouteKey | None = None) -> Request | None:
        """Return the request object when ``environ`` matches an ``async def`` endpoint.

        :param environ: a PEP 3333 environ (without ``wsgi.input`` needed).
        :param key: the request's :func:`route_key`; a sync answer is remembered under it.
        :return: a :attr:`flask.Flask.request_class` instance, or ``None`` for a
            sync endpoint or a request that does not match (404, 405, a
            redirect: Flask answers those on the bridge as usual).
        """
        app = self._app
        req = app.request_class(environ)
        try:
            adapter = app.create_url_adapter(req)
            if adapter is None:
                return None
            rule, _ = adapter.match(return_rule=True)
        except (HTTPException, RequestRedirect):
            rule = None
        if rule is not None and rule.endpoint is not None and rule.endpoint in self._async:
            return req
        if key is not None:
            self._sync[key] = None
            if len(self._sync) > SYNC_CACHE_SIZE:
                self._sync.popitem(last=False)
        return None


def wrapped_coroutine_function(view: Callable[..., Any]) -> Callable[..., Any] | None:
    """Return the ``async def`` function at the end of ``view``'s ``__wrapped__`` chain.

    :param view: a view function, usually a plain ``def`` decorator's wrapper
        (``functools.wraps`` sets ``__wrapped__``).
    :return: that function, or ``None`` when the chain ends at a plain
        function or loops.
    """
    try:
        inner = inspect.unwrap(view)
    except ValueError:  # a __wrapped__ cycle
        return None
    return inner if inspect.iscoroutinefunction(inner) else None


def _has_async_handlers(view: Any) -> bool:
    """Return whether ``view`` comes from :meth:`flask.views.View.as_view` on a class
    whose ``dispatch_request`` or HTTP method handlers (``MethodView``) are ``async def``."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return False
    names = ["dispatch_request", *(m.lower() for m in getattr(view_class, "methods", None) or ())]
    return any(inspect.iscoroutinefunction(getattr(view_class, name, None)) for name in names)
