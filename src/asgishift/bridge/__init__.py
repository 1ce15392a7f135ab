"""The bridges between WSGI (PEP 3333) and ASGI 3, in both directions.

- :class:`WSGIToASGI` serves a WSGI app from an ASGI server (options: :class:`BridgeOptions`).
- :class:`ASGIToWSGI` serves an ASGI app from a WSGI server (options: :class:`ASGIToWSGIOptions`).
- :class:`HybridRouter` sends chosen path prefixes to ASGI apps and the rest to a WSGI app.

>>> from asgishift.bridge import WSGIToASGI
>>> application = WSGIToASGI(wsgi_app, max_workers=40)  # doctest: +SKIP
"""

from __future__ import annotations

from asgishift.bridge._asgi_to_wsgi import ASGIToWSGI, ASGIToWSGIOptions
from asgishift.bridge._errors import ClientDisconnected
from asgishift.bridge._options import BridgeOptions
from asgishift.bridge._router import HybridRouter
from asgishift.bridge._wsgi_to_asgi import WSGIToASGI

__all__ = [
    "ASGIToWSGI",
    "ASGIToWSGIOptions",
    "BridgeOptions",
    "ClientDisconnected",
    "HybridRouter",
    "WSGIToASGI",
]

for _obj in (
    ASGIToWSGI,
    ASGIToWSGIOptions,
    BridgeOptions,
    ClientDisconnected,
    HybridRouter,
    WSGIToASGI,
):
    _obj.__module__ = "asgishift.bridge"
del _obj
