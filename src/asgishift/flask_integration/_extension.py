"""The Flask extension: ``ASGI(app)`` or ``ext = ASGI(); ext.init_app(app)``.

Follows Flask's "Flask Extension Development" guide: no app is stored on the
extension in the factory form, per-app state lives in
``app.extensions["asgishift"]`` (an :class:`ASGIState`), and configuration
comes from ``ASGISHIFT_*`` keys (:mod:`._config`), so one extension object can
serve several apps in one process.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app, has_app_context

from asgishift._types import Receive, Scope, Send
from asgishift.bridge import BridgeOptions
from asgishift.flask_integration._app import FlaskASGIApp
from asgishift.flask_integration._config import config_keys, merge_options, options_from_config
from asgishift.flask_integration._lifespan import ServingHooks
from asgishift.flask_integration._loop import LoopBinding
from asgishift.flask_integration._pipeline import AsyncPipeline
from asgishift.flask_integration._routes import RouteTable
from asgishift.flask_integration._websocket import refuse_websocket_rule_over_http

if TYPE_CHECKING:
    from asgishift.flask_integration._testing import AsyncTestClient

logger = logging.getLogger("asgishift.flask")

__all__ = ["ASGI", "EXTENSION_KEY", "ASGIState"]

#: The key of this extension's state in ``app.extensions``.
EXTENSION_KEY = "asgishift"

F = TypeVar("F", bound=Callable[..., Any])


class ASGIState:
    """The extension's state for one Flask app: ``app.extensions["asgishift"]``.

    :param app: the Flask app.

    ``asgishift serve`` looks for this object and calls :meth:`asgi_app_for`
    with the options of its command line.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        # The class's own hook, so a subclass that overrides it keeps its behaviour
        # whenever no server loop runs.
        stock = type(app).async_to_sync.__get__(app)
        self.binding = LoopBinding(stock)
        self.hooks = ServingHooks(app, self.binding)
        self.routes = RouteTable(app)
        self.pipeline = AsyncPipeline(app)
        self._default_app: FlaskASGIApp | None = None

    def asgi_app_for(self, options: BridgeOptions) -> FlaskASGIApp:
        """Return a new ASGI application serving the app with ``options``.

        Fields of ``options`` left at their defaults take the app's
        ``ASGISHIFT_*`` config values; changed fields win.

        :param options: the bridge options (e.g. from ``asgishift serve --max-workers``).
        :raise ValueError: for an out-of-range ``ASGISHIFT_*`` config value.
        """
        return FlaskASGIApp(
            self.app,
            merge_options(options, self.app.config),
            binding=self.binding,
            hooks=self.hooks,
            routes=self.routes,
            pipeline=self.pipeline,
        )

    @property
    def asgi_app(self) -> FlaskASGIApp:
        """Return the ASGI application built from the app's config (made once)."""
        if self._default_app is None:
            self._default_app = self.asgi_app_for(options_from_config(self.app.config))
        return self._default_app


class ASGI:
    """Serve a Flask app on an ASGI server, with async views on the server's loop,
    WebSocket routes and lifespan hooks.

    ``asgi_app = ASGI(app)`` makes ``asgi_app`` the ASGI 3 application
    (``uvicorn module:asgi_app``); in the factory form, ``ext = ASGI()`` then
    ``ext.init_app(app)`` inside ``create_app``, and serve
    ``app.extensions["asgishift"].asgi_app`` or let ``asgishift serve`` find it.

    On an extension without an app, a hook or WebSocket route registered before
    any :meth:`init_app` (at module level) applies to every app it is later
    initialised with; one registered after an :meth:`init_app` (inside
    ``create_app``) applies to the app initialised last only.

    :param app: the Flask app, or ``None`` for the factory form.

    Follows Flask's "Flask Extension Development" guide and its "Using async
    and await" page (:meth:`flask.Flask.async_to_sync` is the hook replaced).
    """

    def __init__(self, app: Flask | None = None) -> None:
        self.app = app
        self._latest: ASGIState | None = None
        self._deferred: list[Callable[[ASGIState], None]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> ASGIState:
        """Install the extension on ``app``.

        Sets default ``ASGISHIFT_*`` config values, stores an
        :class:`ASGIState` in ``app.extensions["asgishift"]``, replaces the
        app's ``async_to_sync`` hook (see :class:`~._loop.LoopBinding`) and
        adds a first ``before_request`` function answering ``400`` to an HTTP
        request matched to a WebSocket rule
        (:func:`~._websocket.refuse_websocket_rule_over_http`).

        :return: the app's state.
        :raise RuntimeError: when the extension is already installed on ``app``.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"asgishift's ASGI extension is already installed on Flask app {app.name!r}; "
                "call init_app once per app"
            )
        defaults = BridgeOptions()
        for key, name in config_keys().items():
            app.config.setdefault(key, getattr(defaults, name))
        options_from_config(app.config)  # fail early on a bad value
        state = ASGIState(app)
        app.extensions[EXTENSION_KEY] = state
        # Flask documents async_to_sync as the hook to override; the instance
        # attribute replaces it for this app only.
        app.async_to_sync = state.binding.async_to_sync  # type: ignore[method-assign]
        # First, so no user hook runs for a WebSocket view that cannot be served.
        app.before_request_funcs.setdefault(None, []).insert(0, refuse_websocket_rule_over_http)
        for apply in self._deferred:
            apply(state)
        self._latest = state
        return state

    # -- per-app state ---------------------------------------------------
    def state(self, app: Flask | None = None) -> ASGIState:
        """Return the state of ``app``, of the bound app, or of ``current_app``.

        :raise RuntimeError: when the extension is not installed on that app, or
            when no app is given, bound or current (factory form, outside an
            application context).
        """
        target = app or self.app or _current_app_or_none()
        if target is None:
            raise RuntimeError(
                "asgishift's ASGI extension has no app here: in the factory form "
                "(ext = ASGI(); ext.init_app(app)) pass the app, as in "
                "ext.test_client(app) or ext.state(app), or call it inside app.app_context()"
            )
        state = target.extensions.get(EXTENSION_KEY)
        if state is None:
            raise RuntimeError(
                f"asgishift's ASGI extension is not installed on Flask app {target.name!r}; "
                "call ASGI(app) or ext.init_app(app) first"
            )
        return state  # type: ignore[no-any-return]

    @property
    def asgi_app(self) -> FlaskASGIApp:
        """Return the bound app's ASGI application (see :attr:`ASGIState.asgi_app`)."""
        return self.state().asgi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the bound app as an ASGI 3 application (see :attr:`asgi_app`)."""
        await self.state().asgi_app(scope, receive, send)

    def _register(self, apply: Callable[[ASGIState], None]) -> None:
        """Apply a registration to the bound app (``ASGI(app)``); else to the app
        initialised last (inside its factory); else, before any app, to every app
        initialised later."""
        if self.app is not None:
            apply(self.state())
        elif self._latest is not None:
            apply(self._latest)
        else:
            self._deferred.append(apply)

    # -- lifespan ----------------------------------------------------------
    def before_serving(self, func: F) -> F:
        """Register ``func`` (sync or ``async def``) to run when the server starts.

        An exception from it fails the server's startup (ASGI
        ``lifespan.startup.failed``) with the error.
        """
        self._register(lambda state: _discard(state.hooks.before_serving(func)))
        return func

    def after_serving(self, func: F) -> F:
        """Register ``func`` (sync or ``async def``) to run when the server stops."""
        self._register(lambda state: _discard(state.hooks.after_serving(func)))
        return func

    def while_serving(self, func: F) -> F:
        """Register an async generator function wrapping the time the server runs.

        :raise TypeError: when ``func`` is not an async generator function.
        """
        if not inspect.isasyncgenfunction(func):
            raise TypeError(
                f"while_serving needs an async generator function (async def with one yield), "
                f"got {func!r}"
            )
        self._register(lambda state: _discard(state.hooks.while_serving(func)))
        return func

    def add_background_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` in the background for the current (or bound) app.

        See :meth:`ServingHooks.add_background_task`.
        """
        self.state().hooks.add_background_task(func, *args, **kwargs)

    # -- routes ------------------------------------------------------------
    def websocket(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Register an ``async def view(ws, **view_args)`` WebSocket route.

        The same as ``@app.route(rule, websocket=True, **options)``: a
        Werkzeug rule with ``websocket=True``, so converters and ``url_for``
        work; blueprints use ``@bp.route(rule, websocket=True)``.

        :param rule: the URL rule, e.g. ``"/ws/<room>"``.
        :param options: ``endpoint`` and other :meth:`flask.Flask.add_url_rule` options.
        """

        def decorator(func: F) -> F:
            def apply(state: ASGIState) -> None:
                extra = dict(options)
                endpoint = extra.pop("endpoint", None)
                state.app.add_url_rule(rule, endpoint, func, websocket=True, **extra)

            self._register(apply)
            return func

        return decorator

    # -- testing -----------------------------------------------------------
    def test_client(self, app: Flask | None = None) -> AsyncTestClient:
        """Return an async test client for the app (httpx over ASGI, lifespan, WebSockets).

        Use it as ``async with ext.test_client() as client:``, or
        ``ext.test_client(app)`` in the factory form.

        :param app: the Flask app; default the bound app, else ``current_app``.
        :raise RuntimeError: when there is no such app (see :meth:`state`).
        """
        from asgishift.flask_integration._testing import AsyncTestClient

        return AsyncTestClient(self.state(app).asgi_app)


def _current_app_or_none() -> Flask | None:
    """Return the app of the current application context, ``None`` outside one."""
    if not has_app_context():
        return None
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _discard(value: object) -> None:
    """Drop a decorator's return value (registration callbacks return nothing)."""
