"""db_sync_to_async: where ORM work runs, how many threads and connections it uses."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.db import connections
from django.test import override_settings

from asgishift.django_integration.db import (
    close_thread_connections,
    db_sync_to_async,
    orm_lanes,
    shutdown_orm_lanes,
)
from asgishift.django_integration.handler import TAKES_EXECUTOR
from django_support.testapp.models import Item

NEEDS_EXECUTOR_CONTEXT = pytest.mark.skipif(
    not TAKES_EXECUTOR, reason="ThreadSensitiveContext(executor=...) needs asgiref >= 3.13"
)


@pytest.fixture
def three_threads() -> Iterator[int]:
    """A fresh ORM pool of three threads for the test."""
    shutdown_orm_lanes()
    with override_settings(ASGISHIFT_ORM_THREADS=3):
        yield 3
        shutdown_orm_lanes()


def settled_connections(server: Any, database: str, expected: int) -> int:
    """Poll the server's connection count until it equals ``expected`` (5 s at most).

    A closed client's backend leaves ``pg_stat_activity`` a moment after the close.
    """
    deadline = time.monotonic() + 5.0
    while True:
        count = int(server.count_connections(database))
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def asgiref_global_thread() -> int:
    return SyncToAsync.single_thread_executor.submit(threading.get_ident).result()


@db_sync_to_async
def count_items(alias: str) -> tuple[int, int]:
    """Decorator form: (thread id, number of items)."""
    return threading.get_ident(), Item.objects.using(alias).count()


@pytest.mark.django_db(transaction=True)
def test_outside_a_request_work_runs_on_the_bounded_pool(three_threads: int) -> None:
    Item.objects.create(name="one")

    async def main() -> list[tuple[int, int]]:
        return await asyncio.gather(*(count_items("default") for _ in range(40)))

    results = asyncio.run(main())
    threads = {thread for thread, _ in results}
    assert [count for _, count in results] == [1] * 40
    assert 1 <= len(threads) <= three_threads
    assert threading.get_ident() not in threads
    assert asgiref_global_thread() not in threads
    assert orm_lanes().threads_started == len(threads)


@pytest.mark.django_db(transaction=True)
def test_call_form_and_methods(three_threads: int) -> None:
    class Counter:
        @db_sync_to_async
        def names(self, prefix: str) -> list[str]:
            return [prefix + item.name for item in Item.objects.all()]

    Item.objects.create(name="x")

    async def main() -> tuple[Any, Any]:
        made = await db_sync_to_async(Item.objects.create)(name="y", count=3)
        return made, await Counter().names(">")

    made, names = asyncio.run(main())
    assert made.count == 3
    assert names == [">x", ">y"]


@pytest.mark.django_db(transaction=True)
def test_inside_djangos_request_context_work_shares_the_requests_thread(
    three_threads: int,
) -> None:
    from asgiref.sync import sync_to_async

    async def request() -> tuple[int, int]:
        async with ThreadSensitiveContext():  # what Django's ASGIHandler enters per request
            ours, _ = await count_items("default")
            djangos = await sync_to_async(threading.get_ident)()
            await sync_to_async(close_thread_connections)()  # the thread ends with the block
            return ours, djangos

    ours, djangos = asyncio.run(request())
    assert ours == djangos
    assert orm_lanes().threads_started == 0


@NEEDS_EXECUTOR_CONTEXT
@pytest.mark.django_db(transaction=True)
def test_inside_a_request_context_work_runs_on_the_requests_thread(three_threads: int) -> None:
    request_thread = ThreadPoolExecutor(1)
    request_ident = request_thread.submit(threading.get_ident).result()

    async def request() -> list[tuple[int, int]]:
        async with ThreadSensitiveContext(executor=request_thread):
            first = await count_items("default")
            second = await Item.objects.acount()  # Django's own a-method: same thread
            return [first, (request_ident, second)]

    try:
        (thread, _), _ = asyncio.run(request())
        assert thread == request_ident
        assert orm_lanes().threads_started == 0
    finally:
        request_thread.submit(close_thread_connections).result()
        request_thread.shutdown()


@NEEDS_EXECUTOR_CONTEXT
@pytest.mark.django_db(transaction=True)
def test_task_outliving_its_request_falls_back_to_the_pool(three_threads: int) -> None:
    request_thread = ThreadPoolExecutor(1)
    request_ident = request_thread.submit(threading.get_ident).result()

    async def main() -> tuple[int, int]:
        gate = asyncio.Event()

        async def background() -> tuple[int, int]:
            await gate.wait()
            return await count_items("default")

        async with ThreadSensitiveContext(executor=request_thread):
            task = asyncio.ensure_future(background())
        gate.set()  # the request is over; its task goes on
        return await task

    try:
        thread, count = asyncio.run(main())
    finally:
        request_thread.shutdown()
    assert count == 0
    assert thread != request_ident
    assert orm_lanes().threads_started == 1


@db_sync_to_async
def busy_count() -> int:
    """Hold a connection a moment; return how many connections the database has."""
    with connections["postgres"].cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.02)")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


async def thirty_calls() -> list[int]:
    return await asyncio.gather(*(busy_count() for _ in range(30)))


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_pool_never_holds_more_connections_than_threads(
    three_threads: int, postgresql_server: Any
) -> None:
    """Persistent connections (no churn to blur the count): one per pool thread at most."""
    database = connections["postgres"].settings_dict["NAME"]
    connections["postgres"].ensure_connection()
    own = postgresql_server.count_connections(database)
    settings_dict = connections["postgres"].settings_dict
    old_age, settings_dict["CONN_MAX_AGE"] = settings_dict["CONN_MAX_AGE"], None
    try:
        seen = asyncio.run(thirty_calls())
    finally:
        settings_dict["CONN_MAX_AGE"] = old_age
    assert max(seen) - own <= three_threads
    assert max(seen) - own >= 2  # the calls did overlap
    assert settled_connections(postgresql_server, database, own + 3) <= own + three_threads


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_default_settings_keep_no_connection_between_calls(
    three_threads: int, postgresql_server: Any
) -> None:
    """CONN_MAX_AGE = 0 (the default): a pool thread closes its connection after each call."""
    database = connections["postgres"].settings_dict["NAME"]
    connections["postgres"].ensure_connection()
    own = postgresql_server.count_connections(database)
    seen = asyncio.run(thirty_calls())
    assert max(seen) > own
    assert settled_connections(postgresql_server, database, own) == own


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_broken_pool_connection_is_closed_and_replaced(postgresql_server: Any) -> None:
    """With persistent connections (CONN_MAX_AGE=None) only a broken one is replaced."""

    @db_sync_to_async
    def backend_pid() -> int | None:
        from django.db import Error

        try:
            with connections["postgres"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                return int(cursor.fetchone()[0])
        except Error:
            return None

    settings_dict = connections["postgres"].settings_dict
    old_age = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = None
    shutdown_orm_lanes()
    try:
        with override_settings(ASGISHIFT_ORM_THREADS=1):

            async def main() -> list[int | None]:
                first = await backend_pid()
                reused = await backend_pid()
                postgresql_server.psql(f"SELECT pg_terminate_backend({first})")
                broken = await backend_pid()  # fails; the connection is closed after it
                return [first, reused, broken, await backend_pid()]

            first, reused, broken, replaced = asyncio.run(main())
    finally:
        settings_dict["CONN_MAX_AGE"] = old_age
        shutdown_orm_lanes()
    assert first is not None
    assert reused == first
    assert broken is None
    assert replaced not in (None, first)


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_lifespan_shutdown_closes_the_pools_connections(
    three_threads: int, postgresql_server: Any
) -> None:
    from asgishift.django_integration.signals import asgi_shutdown

    database = connections["postgres"].settings_dict["NAME"]
    own = postgresql_server.count_connections(database)
    settings_dict = connections["postgres"].settings_dict
    old_age, settings_dict["CONN_MAX_AGE"] = settings_dict["CONN_MAX_AGE"], None
    try:
        asyncio.run(db_sync_to_async(lambda: Item.objects.using("postgres").count())())
        assert postgresql_server.count_connections(database) == own + 1  # kept (persistent)
        asgi_shutdown.send(sender=object, state={})
        assert settled_connections(postgresql_server, database, own) == own
    finally:
        settings_dict["CONN_MAX_AGE"] = old_age
