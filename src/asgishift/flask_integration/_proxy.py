"""Apply the app's ``ProxyFix`` to the requests served on the event loop.

An app behind a reverse proxy wraps its WSGI callable in Werkzeug's
:class:`~werkzeug.middleware.proxy_fix.ProxyFix` (Flask's "Tell Flask it is
Behind a Proxy": ``app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, ...)``).
Sync views are served through ``app.wsgi_app`` by the bridge, so the
middleware rewrites their environ. Requests to async views and WebSocket
handshakes never call ``app.wsgi_app``; :class:`ProxyHeaders` reads the chain
instead and applies each ``ProxyFix`` at its head to their environ, outermost
first, through a copy made with the same trust settings (the layer's public
``x_for``, ``x_proto``, ``x_host``, ``x_port`` and ``x_prefix``) around an
application that does nothing. ``url_for(_external=True)``,
``request.remote_addr`` (Flask-Limiter's key) and ``request.scheme`` then
agree between sync and async views.

Any other WSGI middleware is left out of the loop's requests, since what it
does is unknown; the app's name and the middleware's type are logged once as a
warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from asgishift._types import Environ

logger = logging.getLogger("asgishift.flask")

__all__ = ["ProxyHeaders"]

#: ``ProxyFix``'s trust settings and the request headers each one reads that can
#: change which rule a URL matches (``X-Forwarded-For`` cannot).
_MATCHING_HEADERS = {
    "x_proto": b"x-forwarded-proto",
    "x_host": b"x-forwarded-host",
    "x_port": b"x-forwarded-port",
    "x_prefix": b"x-forwarded-prefix",
}


def _nothing(environ: Environ, start_response: Any) -> Iterable[bytes]:
    """The application inside the copied layers: the rewritten environ is all that is wanted."""
    return []


def _no_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    """``start_response`` for the copied layers, which never call it."""
    raise RuntimeError("a copied ProxyFix layer called start_response")


class ProxyHeaders:
    """The ``ProxyFix`` layers at the head of one app's ``app.wsgi_app`` chain.

    Read once, when the ASGI application is built (at serve time, so
    middleware a factory adds after ``init_app`` is seen).

    :param app: the Flask app whose ``wsgi_app`` attribute is read.
    """

    def __init__(self, app: Flask) -> None:
        layers: list[ProxyFix] = []
        current: Any = app.wsgi_app
        # ProxyFix itself only: a subclass may rewrite the environ differently.
        while type(current) is ProxyFix:
            layers.append(current)
            current = current.app
        #: Copies of the layers, outermost first, around an app that does nothing.
        self._copies = tuple(
            ProxyFix(
                _nothing,
                x_for=layer.x_for,
                x_proto=layer.x_proto,
                x_host=layer.x_host,
                x_port=layer.x_port,
                x_prefix=layer.x_prefix,
            )
            for layer in layers
        )
        #: ASGI header names (lower-case bytes, sorted) the layers read that matter
        #: to URL matching.
        self.matching_headers = tuple(
            sorted(
                {
                    header
                    for layer in layers
                    for setting, header in _MATCHING_HEADERS.items()
                    if getattr(layer, setting)
                }
            )
        )
        # Flask's own wsgi_app bound to the app ends a chain of known layers; any
        # other object is middleware whose effect on the environ is unknown.
        known_end = getattr(current, "__func__", None) is Flask.wsgi_app
        if not known_end:
            logger.warning(
                "Flask app %r wraps wsgi_app in WSGI middleware (%s): sync views still "
                "run through it, but requests to async views and WebSockets run on the "
                "event loop without it (only werkzeug's ProxyFix is applied to them); use "
                "ASGI middleware or the server's own options instead",
                app.name,
                type(current).__name__,
            )

    def apply(self, environ: Environ) -> None:
        """Rewrite ``environ`` in place as the ``ProxyFix`` layers would.

        :param environ: a PEP 3333 environ built from the ASGI scope. For a
            WebSocket handshake ``X-Forwarded-Proto`` gives ``wsgi.url_scheme``
            its HTTP spelling, which
            :func:`~._websocket.prepare_handshake_environ` handles.
        """
        for layer in self._copies:
            layer(environ, _no_start_response)
