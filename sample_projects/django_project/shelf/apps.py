from django.apps import AppConfig


class ShelfConfig(AppConfig):
    """A small book shelf."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "shelf"
