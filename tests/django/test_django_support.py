"""The shared Django test infrastructure works: SQLite by default, a real PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connections

from django_support.plugin import PostgresServer
from django_support.testapp.models import Author, Item


@pytest.mark.django_db
def test_sqlite_default_database() -> None:
    Item.objects.create(name="a", count=2)
    assert connections["default"].vendor == "sqlite"
    assert list(Item.objects.values_list("name", "count")) == [("a", 2)]


@pytest.mark.django_db(databases=["default", "postgres"])
def test_postgres_alias_reaches_a_real_server() -> None:
    Author.objects.using("postgres").create(name="Ada")
    assert connections["postgres"].vendor == "postgresql"
    with connections["postgres"].cursor() as cursor:
        cursor.execute("SELECT inet_server_addr()::text, current_setting('port')")
        host, port = cursor.fetchone()
    assert host.startswith("127.0.0.1")
    assert int(port) == int(connections["postgres"].settings_dict["PORT"])
    assert Author.objects.using("postgres").count() == 1
    assert Author.objects.count() == 0


def test_postgres_server_fixture_creates_databases(postgresql_server: PostgresServer) -> None:
    postgresql_server.create_database("asgishift_fixture_check")
    assert postgresql_server.count_connections("asgishift_fixture_check") == 0
