"""App configuration of the benchmark app."""

from django.apps import AppConfig


class DjviewsConfig(AppConfig):
    """The benchmark's one model and three views (label ``djviews``)."""

    name = "djviews"
    default_auto_field = "django.db.models.BigAutoField"
