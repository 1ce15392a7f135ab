"""App configuration of the shared Django test app."""

from __future__ import annotations

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """The models the in-process Django tests query (label ``testapp``)."""

    name = "django_support.testapp"
    label = "testapp"
