"""Flask's request pipeline, awaited on the event loop.

The steps and their order are Flask's own ``full_dispatch_request``,
``preprocess_request``, ``dispatch_request``, ``handle_user_exception``,
``handle_http_exception``, ``handle_exception``, ``finalize_request`` and
``process_response`` (Flask's "Application Structure and Lifecycle" page), with
one difference: every hook, view and error handler that is ``async def`` is
awaited here instead of being passed to ``Flask.ensure_sync``. Plain ``def``
hooks are called directly, on the loop (keep them short, as Flask's docs ask
of hooks; blocking work belongs in the view).

Used only for requests whose endpoint is ``async def`` (see
:mod:`asgishift.flask_integration._http`); every other request runs through
Flask's own, unchanged pipeline on the bridge's worker threads.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any

from flask import request
from flask.ctx import RequestContext
from flask.globals import request_ctx
from flask.signals import got_request_exception, request_finished, request_started
from werkzeug.exceptions import BadRequestKeyError, HTTPException, InternalServerError
from werkzeug.routing import RoutingException

if TYPE_CHECKING:
    from blinker import NamedSignal
    from flask import Flask
    from flask.wrappers import Response

__all__ = ["AsyncPipeline"]

#: Where a request context keeps its session. Flask 3.1 made ``session`` a
#: property that marks the session accessed (``Vary: Cookie``) over a private
#: ``_session``, which Flask's own ``process_response`` reads, and so does
#: this module; Flask 3.0 has the plain attribute ``session``.
_SESSION_ATTRIBUTE = (
    "_session" if isinstance(RequestContext.__dict__.get("session"), property) else "session"
)


async def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Return ``func(*args, **kwargs)``, awaited when it is a coroutine."""
    result = func(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _as_async(func: Callable[..., Any]) -> Callable[..., Any]:
    async def receiver(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return receiver


async def send_signal(signal: NamedSignal, sender: Flask, **kwargs: Any) -> None:
    """Send a Flask signal so that async receivers are awaited and sync ones called."""
    if signal.receivers:
        await signal.send_async(sender, _sync_wrapper=_as_async, **kwargs)


class AsyncPipeline:
    """Flask's request pipeline for one app, with async steps awaited.

    Call the methods with the request context pushed, as Flask calls its own.

    :param app: the Flask app.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    async def full_dispatch_request(self) -> Response:
        """Run before-request hooks, the view and error handlers; return the response."""
        app = self.app
        # As Flask's own full_dispatch_request does: setup methods (app.route...)
        # called after this raise Flask's "already handled its first request".
        app._got_first_request = True
        try:
            await send_signal(request_started, app)
            rv = await self.preprocess_request()
            if rv is None:
                rv = await self.dispatch_request()
        except Exception as e:
            rv = await self.handle_user_exception(e)
        return await self.finalize_request(rv)

    async def preprocess_request(self) -> Any:
        """Call URL value preprocessors and ``before_request`` functions (app, then blueprints).

        :return: the first non-``None`` value a ``before_request`` function returns.
        """
        app = self.app
        names = (None, *reversed(request.blueprints))
        for name in names:
            for url_func in app.url_value_preprocessors.get(name, ()):
                url_func(request.endpoint, request.view_args)
        for name in names:
            for before_func in app.before_request_funcs.get(name, ()):
                rv = await call(before_func)
                if rv is not None:
                    return rv
        return None

    async def dispatch_request(self) -> Any:
        """Call the matched view (automatic ``OPTIONS`` answered as Flask does)."""
        app = self.app
        req = request_ctx.request
        if req.routing_exception is not None:
            app.raise_routing_exception(req)
        rule = req.url_rule
        assert rule is not None
        assert rule.endpoint is not None
        if getattr(rule, "provide_automatic_options", False) and req.method == "OPTIONS":
            return app.make_default_options_response()
        return await call(app.view_functions[rule.endpoint], **(req.view_args or {}))

    async def handle_http_exception(self, e: HTTPException) -> Any:
        """Find and await the error handler of an HTTP exception, or return the exception."""
        if e.code is None or isinstance(e, RoutingException):
            return e
        handler = self.app._find_error_handler(e, request.blueprints)
        if handler is None:
            return e
        return await call(handler, e)

    async def handle_user_exception(self, e: Exception) -> Any:
        """Handle an exception from a hook or view with the registered error handlers.

        :raise Exception: ``e`` again when no handler is registered for it.
        """
        app = self.app
        if isinstance(e, BadRequestKeyError) and (
            app.debug or app.config["TRAP_BAD_REQUEST_ERRORS"]
        ):
            e.show_exception = True
        if isinstance(e, HTTPException) and not app.trap_http_exception(e):
            return await self.handle_http_exception(e)
        handler = app._find_error_handler(e, request.blueprints)
        if handler is None:
            raise e
        return await call(handler, e)

    async def handle_exception(self, e: Exception) -> Response:
        """Turn an unhandled exception into a 500 response (logged with its traceback).

        :raise Exception: ``e`` when ``PROPAGATE_EXCEPTIONS`` (or testing/debug) is on.
        """
        app = self.app
        exc_info: Any = sys.exc_info()
        await send_signal(got_request_exception, app, exception=e)
        propagate = app.config["PROPAGATE_EXCEPTIONS"]
        if propagate is None:
            propagate = app.testing or app.debug
        if propagate:
            raise e
        if exc_info[1] is not e:
            exc_info = (type(e), e, e.__traceback__)
        app.log_exception(exc_info)
        server_error = await self.handle_server_error(e)
        return await self.finalize_request(server_error, from_error_handler=True)

    async def handle_server_error(self, e: Exception) -> Any:
        """Return the app's ``errorhandler(500)`` answer to the unhandled ``e``.

        :return: the handler's return value, or the
            :class:`~werkzeug.exceptions.InternalServerError` (wrapping ``e``)
            itself when no handler is registered.
        :raise Exception: whatever the handler raises.
        """
        server_error: Any = InternalServerError(original_exception=e)
        handler = self.app._find_error_handler(server_error, request.blueprints)
        if handler is not None:
            server_error = await call(handler, server_error)
        return server_error

    async def finalize_request(self, rv: Any, from_error_handler: bool = False) -> Response:
        """Make the response and run after-request processing (Flask's ``finalize_request``)."""
        app = self.app
        response = app.make_response(rv)
        try:
            response = await self.process_response(response)
            await send_signal(request_finished, app, response=response)
        except Exception:
            if not from_error_handler:
                raise
            app.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    async def process_response(self, response: Response) -> Response:
        """Await ``after_this_request`` and ``after_request`` functions; save the session."""
        app = self.app
        ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
        for func in ctx._after_request_functions:
            response = await call(func, response)
        for name in chain(request.blueprints, (None,)):
            for func in reversed(app.after_request_funcs.get(name, ())):
                response = await call(func, response)
        session = getattr(ctx, _SESSION_ATTRIBUTE)
        if session is not None and not app.session_interface.is_null_session(session):
            app.session_interface.save_session(app, session, response)
        return response
