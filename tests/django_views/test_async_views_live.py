"""A real server: 200 concurrent requests to an async list view on PostgreSQL.

uvicorn serves the twins' URLconf through asgishift's bounded handler with 4
threads; the database connections to the test database never exceed the
threads while 200 clients wait at once, and every page is the sync twin's page.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections
from django.test import Client, override_settings

from live import live_server

TESTS_DIR = Path(__file__).resolve().parent.parent
THREADS = 4


@pytest.mark.live
@pytest.mark.parametrize("alias", ["postgres"], indirect=True)
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_200_concurrent_requests_use_at_most_one_connection_per_thread(
    alias: str, posts: list[Any], postgresql_server: Any
) -> None:
    database = connections["postgres"].settings_dict["NAME"]
    own = postgresql_server.count_connections(database)
    with override_settings(ROOT_URLCONF="django_views.viewsapp.urls"):
        expected = Client().get("/sync/?page=2").content
    env = {
        "VIEWS_DB_NAME": database,
        "VIEWS_DB_PORT": str(postgresql_server.port),
        "VIEWS_MAX_THREADS": str(THREADS),
    }
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(postgresql_server.count_connections(database) - own)

    with live_server(
        "uvicorn", "django_views.viewsapp.asgi_live:application", env=env, app_dir=TESTS_DIR
    ) as server:

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
                return await asyncio.gather(*(client.get("/async/?page=2") for _ in range(200)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            responses = asyncio.run(burst())
        finally:
            done.set()
            sampler.join()
        busy = postgresql_server.count_connections(database) - own
    assert [r.status_code for r in responses] == [200] * 200
    assert {r.content for r in responses} == {expected}
    assert max([*seen, busy]) <= THREADS, seen
    assert busy >= 1  # the threads keep their connections (CONN_MAX_AGE=60)


@pytest.mark.live
@pytest.mark.parametrize("alias", ["postgres"], indirect=True)
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_conn_health_checks_replace_a_connection_the_server_closed(
    alias: str, posts: list[Any], postgresql_server: Any
) -> None:
    """CONN_MAX_AGE=60 with CONN_HEALTH_CHECKS: the handler's thread keeps its connection
    between requests; when PostgreSQL ends it (a restart, a failover, an idle timeout)
    the next request, sync view or async, gets a new connection instead of a 500, as
    under a WSGI server (``request_started`` runs the check on the request's thread)."""
    database = connections["postgres"].settings_dict["NAME"]
    env = {
        "VIEWS_DB_NAME": database,
        "VIEWS_DB_PORT": str(postgresql_server.port),
        "VIEWS_MAX_THREADS": "1",
        "VIEWS_CONN_HEALTH_CHECKS": "1",
    }
    others = (
        f"SELECT {{}} FROM pg_stat_activity WHERE datname = '{database}' "
        "AND pid <> pg_backend_pid()"
    )
    with live_server(
        "uvicorn", "django_views.viewsapp.asgi_live:application", env=env, app_dir=TESTS_DIR
    ) as server:
        connections["postgres"].close()  # the test's own connection is not to be ended
        for path in ("/sync/?page=2", "/async/?page=2"):
            assert httpx.get(server.url + path, timeout=30).status_code == 200
            before = postgresql_server.psql(others.format("pid"), database="postgres")
            assert before  # the thread kept its connection
            postgresql_server.psql(others.format("pg_terminate_backend(pid)"), database="postgres")
            again = httpx.get(server.url + path, timeout=30)
            assert again.status_code == 200, again.text[:300]
            after = postgresql_server.psql(others.format("pid"), database="postgres")
            assert after
            assert after != before
