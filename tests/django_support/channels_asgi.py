"""A Channels ``asgi.py`` as the Channels docs write it: Django's stock handler for HTTP."""

from __future__ import annotations

from channels.routing import ProtocolTypeRouter, URLRouter

from django_support.asgi_apps import ours, stock

application = ProtocolTypeRouter({"http": stock, "websocket": URLRouter([])})
ours_application = ProtocolTypeRouter({"http": ours, "websocket": URLRouter([])})
