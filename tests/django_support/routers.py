"""A database router for tests that send the shared views' queries to another alias."""

from __future__ import annotations

from typing import Any

from django.conf import settings


class EverythingTo:
    """Route every read and write to ``settings.ASGISHIFT_TEST_DB_ALIAS`` (default ``default``)."""

    def _alias(self) -> str:
        return str(getattr(settings, "ASGISHIFT_TEST_DB_ALIAS", "default"))

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self._alias()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self._alias()
