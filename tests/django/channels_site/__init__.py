"""A Channels project: the sample project's settings with ``ASGI_APPLICATION`` set to a
``ProtocolTypeRouter`` (Django for HTTP, an echo consumer for WebSocket).

The live tests copy this package next to the sample project's ``manage.py`` and run
``manage.py runasgi --settings channels_site.settings``.
"""
