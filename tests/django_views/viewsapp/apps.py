"""App configuration of the async-views test app."""

from __future__ import annotations

from django.apps import AppConfig


class ViewsAppConfig(AppConfig):
    """Posts, tags and the sync/async view twins (label ``viewsapp``)."""

    name = "django_views.viewsapp"
    label = "viewsapp"
