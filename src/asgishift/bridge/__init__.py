"""The WSGI→ASGI bridge: serve a PEP 3333 app from an ASGI 3 server.

>>> from asgishift.bridge import WSGIToASGI
>>> application = WSGIToASGI(wsgi_app, max_workers=40)  # doctest: +SKIP
"""

from __future__ import annotations

from asgishift.bridge._errors import ClientDisconnected
from asgishift.bridge._options import BridgeOptions
from asgishift.bridge._router import HybridRouter
from asgishift.bridge._wsgi_to_asgi import WSGIToASGI

__all__ = ["BridgeOptions", "ClientDisconnected", "HybridRouter", "WSGIToASGI"]

for _obj in (BridgeOptions, ClientDisconnected, HybridRouter, WSGIToASGI):
    _obj.__module__ = "asgishift.bridge"
del _obj
