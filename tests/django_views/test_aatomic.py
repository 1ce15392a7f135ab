"""aatomic / run_in_transaction: one transaction on one thread; errors and
cancellation roll back (read back from the database), no connection is left behind."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction

import django
from asgishift.django_integration.db import (
    aatomic,
    close_thread_connections,
    db_sync_to_async,
    run_in_transaction,
    shutdown_orm_lanes,
)
from asgishift.django_integration.handler import TAKES_EXECUTOR
from django_support.testapp.models import Item

NEEDS_EXECUTOR_CONTEXT = pytest.mark.skipif(
    not TAKES_EXECUTOR, reason="ThreadSensitiveContext(executor=...) needs asgiref >= 3.13"
)


class Boom(Exception):
    """Raised inside a block to make it roll back."""


@db_sync_to_async
def add(name: str) -> int:
    """Insert an item; return the id of the thread that did it."""
    Item.objects.create(name=name)
    return threading.get_ident()


def names() -> list[str]:
    return sorted(Item.objects.values_list("name", flat=True))


def test_failing_block_rolls_back(alias: str) -> None:
    threads: list[int] = []

    async def main() -> None:
        async with aatomic(alias):
            threads.append(await add("a"))
            await Item.objects.acreate(name="b")  # Django's a-method joins the block
            threads.append(await db_sync_to_async(threading.get_ident)())
            raise Boom

    with pytest.raises(Boom):
        asyncio.run(main())
    assert names() == []
    assert len(set(threads)) == 1


@pytest.mark.django_db(transaction=True)
def test_bare_decorator_uses_the_default_database() -> None:
    @aatomic
    async def fails() -> None:
        await add("bare")
        raise Boom

    with pytest.raises(Boom):
        asyncio.run(fails())
    assert names() == []


def test_successful_block_commits_and_decorator_form(alias: str) -> None:
    @aatomic(alias)
    async def two() -> None:
        await add("a")
        await add("b")

    @aatomic(alias, durable=True)
    async def failing() -> None:
        await add("c")
        raise Boom

    async def main() -> None:
        await two()
        with pytest.raises(Boom):
            await failing()

    asyncio.run(main())
    assert names() == ["a", "b"]


def test_nested_block_is_a_savepoint(alias: str) -> None:
    async def inner() -> None:
        async with aatomic(alias):
            await add("inner")
            raise Boom

    async def main() -> None:
        async with aatomic(alias):
            await add("outer")
            with pytest.raises(Boom):
                await inner()
            await add("after")

    asyncio.run(main())
    assert names() == ["after", "outer"]


def test_run_in_transaction(alias: str) -> None:
    def create_two(first: str, second: str) -> int:
        Item.objects.create(name=first)
        Item.objects.create(name=second)
        return 2

    def create_then_fail() -> None:
        Item.objects.create(name="lost")
        raise Boom

    async def main() -> int:
        with pytest.raises(Boom):
            await run_in_transaction(create_then_fail, using=alias)
        return await run_in_transaction(create_two, "x", "y", using=alias)

    assert asyncio.run(main()) == 2
    assert names() == ["x", "y"]


@NEEDS_EXECUTOR_CONTEXT
def test_block_inside_a_request_uses_the_requests_thread(alias: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import ThreadSensitiveContext

    request_thread = ThreadPoolExecutor(1)
    ident = request_thread.submit(threading.get_ident).result()

    async def failing() -> None:
        async with aatomic(alias):
            await add("gone")
            raise Boom

    async def main() -> list[int]:
        async with ThreadSensitiveContext(executor=request_thread):
            with pytest.raises(Boom):
                await failing()
            async with aatomic(alias):
                return [await add("kept")]

    try:
        assert asyncio.run(main()) == [ident]
    finally:
        request_thread.submit(close_thread_connections).result()
        request_thread.shutdown()
    assert names() == ["kept"]


def other_connections(alias: str, database: str) -> int:
    """Connections to ``database`` besides this thread's, polled until 0 (5 s at most)."""
    deadline = time.monotonic() + 5.0
    while True:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()",
                [database],
            )
            count = int(cursor.fetchone()[0])
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _slow_query(alias: str) -> None:
    if connections[alias].vendor == "postgresql":
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.3)")
    else:
        time.sleep(0.3)


def test_cancelled_block_rolls_back_and_leaks_no_connection(alias: str) -> None:
    database = connections[alias].settings_dict["NAME"]
    shutdown_orm_lanes()

    async def main() -> None:
        inserted = asyncio.Event()

        async def work() -> None:
            async with aatomic(alias):
                await add("cancelled")
                inserted.set()
                await db_sync_to_async(_slow_query)(alias)
                await add("never")

        task = asyncio.ensure_future(work())
        await inserted.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert names() == []
    if connections[alias].vendor == "postgresql":
        assert other_connections(alias, database) == 0  # the pool thread closed its connection
    # The pool thread is not left inside an atomic block either.
    assert asyncio.run(db_sync_to_async(lambda: connections[alias].in_atomic_block)()) is False
    assert not transaction.get_connection(alias).in_atomic_block


def test_django_a_methods_join_a_block_outside_requests(alias: str) -> None:
    async def main() -> Any:
        async with aatomic(alias):
            item = await Item.objects.acreate(name="z")
            await Item.objects.filter(pk=item.pk).aupdate(count=5)
            return await Item.objects.aget(pk=item.pk)

    assert asyncio.run(main()).count == 5
    assert names() == ["z"]


@pytest.mark.skipif(django.VERSION < (5, 0), reason="Django < 5.0 does not cancel on disconnect")
@pytest.mark.parametrize(
    "alias",
    # PostgreSQL only: Django's stock handler ends each request's thread, and an in-memory
    # SQLite test database's connection (which Django never closes) would die unclosed.
    [
        pytest.param(
            "postgres",
            marks=pytest.mark.django_db(transaction=True, databases=["default", "postgres"]),
        )
    ],
    indirect=True,
)
def test_client_disconnect_mid_transaction_rolls_back(alias: str) -> None:
    """Django's ASGI handler cancels the view when the client goes away (Django >= 5.0):
    the aatomic block rolls back on the request's thread and no connection is left."""
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    from django_views.viewsapp import views

    database = connections[alias].settings_dict["NAME"]
    sent: list[dict[str, Any]] = []
    inserted: list[bool] = []

    async def main() -> None:
        views.INSERTED = event = asyncio.Event()
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is not None:
                return message
            await event.wait()  # the client leaves mid-transaction
            inserted.append(True)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/async/slow-report/",
            "raw_path": b"/async/slow-report/", "query_string": f"using={alias}".encode(),
            "root_path": "", "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        }  # fmt: skip
        with override_settings(ROOT_URLCONF="django_views.viewsapp.urls"):
            await asyncio.wait_for(ASGIHandler()(scope, receive, send), timeout=20)

    try:
        asyncio.run(main())
    finally:
        views.INSERTED = None
    assert inserted == [True]
    assert sent == []  # cancelled: no response
    assert names() == []
    if connections[alias].vendor == "postgresql":
        assert other_connections(alias, database) == 0
