"""``startproject``'s ``asgi.py``: Django's stock handler."""

from __future__ import annotations

from django_support.asgi_apps import stock as application

__all__ = ["application"]
