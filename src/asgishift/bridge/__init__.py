"""The WSGI→ASGI bridge: serve a PEP 3333 app from an ASGI 3 server.

>>> from asgishift.bridge import WSGIToASGI
>>> application = WSGIToASGI(wsgi_app, max_workers=40)  # doctest: +SKIP
"""

from __future__ import annotations

from asgishift.bridge._asgi_to_wsgi import ASGIToWSGI, ASGIToWSGIOptions
from asgishift.bridge._errors import ClientDisconnected
from asgishift.bridge._options import BridgeOptions
from asgishift.bridge._wsgi_to_asgi import WSGIToASGI

__all__ = ["ASGIToWSGI", "ASGIToWSGIOptions", "BridgeOptions", "ClientDisconnected", "WSGIToASGI"]

for _obj in (ASGIToWSGI, ASGIToWSGIOptions, BridgeOptions, ClientDisconnected, WSGIToASGI):
    _obj.__module__ = "asgishift.bridge"
del _obj
