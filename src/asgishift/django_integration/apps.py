"""The Django application configuration of asgishift (label ``asgishift``).

Follows Django's "Applications" documentation: Django finds
:class:`AsgishiftConfig` by itself when ``"asgishift.django_integration"`` is
listed in ``INSTALLED_APPS``.
"""

from __future__ import annotations

from django.apps import AppConfig


class AsgishiftConfig(AppConfig):
    """Registers asgishift's system checks and lifespan hooks when Django starts.

    The label is ``asgishift``, so settings are prefixed ``ASGISHIFT_`` and
    check ids are ``asgishift.W001`` and so on.
    """

    name = "asgishift.django_integration"
    label = "asgishift"
    verbose_name = "asgishift"

    def ready(self) -> None:
        """Register the system checks (importing the module registers them)."""
        from asgishift.django_integration import checks  # noqa: F401
