from django.apps import AppConfig


class ReadingConfig(AppConfig):
    """Reading notes (async views)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "reading"

    def ready(self) -> None:
        """Register the lifespan hook that opens the shared HTTP client."""
        from asgishift.django_integration.lifespan import register
        from reading.lifespan import http_client

        register(http_client)
