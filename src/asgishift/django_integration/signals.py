"""Lifespan signals, sent by asgishift's Django handler (``get_asgi_application()``).

Connect receivers the Django way (Django docs, "Signals"), for example in
``AppConfig.ready()``::

    from asgishift.django_integration.signals import asgi_startup

    @receiver(asgi_startup)
    def warm_cache(sender, state, **kwargs): ...

Both are sent with ``sender`` = the handler class and ``state`` = the
lifespan ``scope["state"]`` dict (ASGI lifespan spec, "Lifespan State"),
which each request sees as ``request.state``. Receivers may be sync or (on
Django ≥ 5.0) ``async def``. An exception raised by an ``asgi_startup``
receiver fails server startup.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent once when the server starts, after the lifespan hooks have entered.
asgi_startup = Signal()
#: Sent once when the server stops, after the lifespan hooks have exited.
asgi_shutdown = Signal()

__all__ = ["asgi_shutdown", "asgi_startup"]
