"""aatomic defers to django-async-backend's async_atomic where that is the alias's engine.

Runs where django-async-backend is installed (the Python 3.13 + Django 6.1 corner); the
``postgres`` alias is switched to its engine for the test, and rows are written through
its async cursor, then read back through Django's sync connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("django_async_backend")

from asgishift.django_integration import db
from django_support.testapp.models import Item


class Boom(Exception):
    """Raised inside a block to make it roll back."""


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_aatomic_uses_the_native_async_transaction() -> None:
    from django.conf import settings
    from django_async_backend.db import async_connections
    from django_async_backend.db.transaction import async_atomic

    entry: dict[str, Any] = settings.DATABASES["postgres"]
    old_engine = entry["ENGINE"]
    entry["ENGINE"] = "django_async_backend.db.backends.postgresql"
    insert = "INSERT INTO testapp_item (name, count) VALUES (%s, 1)"

    async def add(name: str) -> None:
        async with await async_connections["postgres"].cursor() as cursor:
            await cursor.execute(insert, [name])

    async def failing() -> None:
        async with db.aatomic("postgres"):
            await add("lost")
            raise Boom

    async def main() -> None:
        try:
            with pytest.raises(Boom):
                await failing()
            async with db.aatomic("postgres"):
                await add("kept")
        finally:
            await async_connections["postgres"].close()

    try:
        assert db._native_async_atomic("postgres") is async_atomic
        asyncio.run(main())
    finally:
        entry["ENGINE"] = old_engine
    assert db._native_async_atomic("postgres") is None
    assert list(Item.objects.using("postgres").values_list("name", flat=True)) == ["kept"]
