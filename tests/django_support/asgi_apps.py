"""ASGI applications for ``ASGI_APPLICATION`` in tests: Django's stock handler and ours."""

from __future__ import annotations

from django.core.asgi import get_asgi_application as stock_asgi_application

from asgishift.django_integration import get_asgi_application

stock = stock_asgi_application()
ours = get_asgi_application(max_threads=2)
