"""Fixtures of the async-views tests: the database each test runs on, and data.

``alias`` runs a test on SQLite (``default``) and on the real PostgreSQL
server (``postgres``) of ``django_support.plugin``: a router sends every query
there, so the views need no change. The data is committed
(``transaction=True``) because the ORM pool's threads have their own
connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

SQLITE = pytest.param("default", id="sqlite", marks=pytest.mark.django_db(transaction=True))
POSTGRES = pytest.param(
    "postgres",
    id="postgres",
    marks=pytest.mark.django_db(transaction=True, databases=["default", "postgres"]),
)


class OneDatabase:
    """A database router sending every read, write and migration to one alias."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self.alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self.alias


@pytest.fixture(params=[SQLITE, POSTGRES])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The alias every query of the test goes to (``default`` or ``postgres``)."""
    name: str = request.param
    router = OneDatabase(name)
    with override_settings(DATABASE_ROUTERS=[router]):
        yield name


@pytest.fixture
def posts(alias: str) -> list[Any]:
    """Seven posts by two authors with tags, on the test's database."""
    from django_support.testapp.models import Author
    from django_views.viewsapp.models import Post, Tag

    ada = Author.objects.create(name="Ada")
    bob = Author.objects.create(name="Bob")
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
    made = []
    for number in range(7):
        post = Post.objects.create(
            title=f"Post {number}", body=f"Body {number}", author=ada if number % 2 else bob
        )
        post.tags.set([red] if number % 3 else [red, blue])
        made.append(post)
    return made


@pytest.fixture(autouse=True)
def close_thread_connections() -> Iterator[None]:
    """Close the connections worker threads opened, so test databases can be dropped.

    Django's test clients keep ``close_old_connections`` off ``request_finished``;
    connections of the ORM pool's threads and of asgiref's one global thread
    (where ``AsyncClient`` runs Django's sync middleware) would stay open.
    """
    yield
    from asgiref.sync import SyncToAsync

    from asgishift.django_integration.db import close_thread_connections, shutdown_orm_lanes

    shutdown_orm_lanes()
    SyncToAsync.single_thread_executor.submit(close_thread_connections).result()
