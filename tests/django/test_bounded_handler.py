"""The bounded ASGI handler, in process: hops, threads, connections, lifespan, state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import threading
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import pytest
from django.core.asgi import get_asgi_application as stock_asgi_application
from django.db import connections
from django.db.backends.signals import connection_created

from asgishift.django_integration import get_asgi_application
from asgishift.django_integration.handler import BoundedASGIHandler
from asgishift.django_integration.hops import count_hops
from asgishift.django_integration.lifespan import register
from asgishift.django_integration.signals import asgi_shutdown, asgi_startup
from django_support.asgi_call import LeavingClient, LifespanDriver, call

pytestmark = pytest.mark.filterwarnings(
    # Django warns when a sync iterator is consumed under ASGI; that is the point here.
    "ignore:StreamingHttpResponse must consume synchronous iterators:Warning"
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def handler() -> Iterator[BoundedASGIHandler]:
    app = get_asgi_application(max_threads=4)
    yield app
    app.pool.run_on_every_thread(connections.close_all)
    app.pool.shutdown()


@pytest.mark.django_db(transaction=True)
def test_sync_view_with_query_takes_one_hop(handler: BoundedASGIHandler) -> None:
    stock = stock_asgi_application()
    run(call(handler, "GET", "/items/"))  # warm-up: first-use imports
    with count_hops() as ours:
        reply = run(call(handler, "GET", "/items/"))
    with count_hops() as theirs:
        stock_reply = run(call(stock, "GET", "/items/"))
    assert reply.status == 200
    assert json.loads(reply.body)["items"] == 0
    assert stock_reply.status == 200
    assert ours.total == 1
    assert theirs.total >= 8, theirs  # startproject MIDDLEWARE under Django's handler


def test_async_view_takes_two_hops(handler: BoundedASGIHandler) -> None:
    run(call(handler, "GET", "/async/"))
    with count_hops() as hops:
        reply = run(call(handler, "GET", "/async/"))
    assert (reply.status, json.loads(reply.body)) == (200, {"hello": "async"})
    assert hops.total <= 2
    assert hops.to_loop == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_use_at_most_max_threads() -> None:
    app = get_asgi_application(max_threads=2)

    async def many() -> list[Any]:
        return await asyncio.gather(*(call(app, "GET", "/items/") for _ in range(12)))

    try:
        replies = run(many())
        assert {r.status for r in replies} == {200}
        threads = {json.loads(r.body)["thread"] for r in replies}
        assert 1 <= len(threads) <= 2
        assert app.pool.threads_started <= 2
    finally:
        app.pool.run_on_every_thread(connections.close_all)
        app.pool.shutdown()


@contextlib.contextmanager
def conn_max_age(alias: str, seconds: int | None) -> Iterator[None]:
    settings_dict = connections[alias].settings_dict
    before = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = seconds
    try:
        yield
    finally:
        settings_dict["CONN_MAX_AGE"] = before


@contextlib.contextmanager
def count_connections(alias: str) -> Iterator[list[int]]:
    opened: list[int] = []

    def on_created(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.alias == alias:
            opened.append(1)

    connection_created.connect(on_created, weak=False)
    try:
        yield opened
    finally:
        connection_created.disconnect(on_created)


@pytest.mark.parametrize("alias", ["default", "postgres"])
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_connections_persist_per_thread_with_conn_max_age(
    alias: str, handler: BoundedASGIHandler, settings: Any
) -> None:
    settings.DATABASE_ROUTERS = ["django_support.routers.EverythingTo"]
    settings.ASGISHIFT_TEST_DB_ALIAS = alias
    with conn_max_age(alias, 60), count_connections(alias) as opened:
        for _ in range(20):
            reply = run(call(handler, "GET", "/items/"))
            assert reply.status == 200, reply.body
    assert connections[alias].vendor in ("sqlite", "postgresql")
    assert 1 <= len(opened) <= 4  # one per pool thread at most, not one per request


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_conn_max_age_zero_still_closes_per_request(
    handler: BoundedASGIHandler, settings: Any
) -> None:
    settings.DATABASE_ROUTERS = ["django_support.routers.EverythingTo"]
    settings.ASGISHIFT_TEST_DB_ALIAS = "postgres"
    with conn_max_age("postgres", 0), count_connections("postgres") as opened:
        for _ in range(5):
            assert run(call(handler, "GET", "/items/")).status == 200
    assert len(opened) == 5


def test_streaming_responses(handler: BoundedASGIHandler) -> None:
    sync_reply = run(call(handler, "GET", "/stream/sync/"))
    async_reply = run(call(handler, "GET", "/stream/async/"))
    assert sync_reply.body == b"".join(f"chunk-{n}\n".encode() for n in range(5))
    assert async_reply.body == b"part-0\npart-1\npart-2\n"
    bodies = [m for m in async_reply.messages if m["type"] == "http.response.body"]
    assert len(bodies) >= 3  # streamed, not collected


def test_failing_view_answers_500_and_logs(
    handler: BoundedASGIHandler, caplog: pytest.LogCaptureFixture
) -> None:
    reply = run(call(handler, "GET", "/fail/"))
    assert reply.status == 500
    assert "view failed on purpose" in caplog.text


def test_post_body_reaches_view(handler: BoundedASGIHandler) -> None:
    reply = run(call(handler, "POST", "/echo/", body=b"x" * 70000))
    assert (reply.status, reply.body) == (200, b"POST 70000")


def test_websocket_scope_is_refused_clearly(handler: BoundedASGIHandler) -> None:
    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: Any) -> None:
        return None

    with pytest.raises(ValueError, match="ProtocolTypeRouter"):
        run(handler({"type": "websocket"}, nothing, ignore))


events: list[str] = []


@contextlib.asynccontextmanager
async def greeting_hook(state: MutableMapping[str, Any]) -> AsyncIterator[None]:
    events.append("hook enter")
    state["greeting"] = "hello from lifespan"
    yield
    events.append("hook exit")


@contextlib.asynccontextmanager
async def failing_hook(state: MutableMapping[str, Any]) -> AsyncIterator[None]:
    raise RuntimeError("database unreachable")
    yield  # pragma: no cover


def test_lifespan_hooks_signals_and_request_state(
    handler: BoundedASGIHandler, settings: Any
) -> None:
    settings.ASGISHIFT_LIFESPAN = [f"{__name__}.greeting_hook"]
    events.clear()

    def on_startup(sender: Any, state: Any, **kwargs: Any) -> None:
        events.append(f"startup signal {state['greeting']}")

    def on_shutdown(sender: Any, state: Any, **kwargs: Any) -> None:
        events.append("shutdown signal")

    asgi_startup.connect(on_startup, weak=False)
    asgi_shutdown.connect(on_shutdown, weak=False)

    async def scenario() -> tuple[Any, Any, Any]:
        lifespan = LifespanDriver(handler)
        started = await lifespan.startup()
        reply = await call(handler, "GET", "/state/", state=lifespan.state)
        stopped = await lifespan.shutdown()
        return started, reply, stopped

    try:
        started, reply, stopped = run(scenario())
    finally:
        asgi_startup.disconnect(on_startup)
        asgi_shutdown.disconnect(on_shutdown)
    assert started == {"type": "lifespan.startup.complete"}
    assert (reply.status, reply.body) == (200, b"hello from lifespan")
    assert stopped == {"type": "lifespan.shutdown.complete"}
    assert events == [
        "hook enter",
        "startup signal hello from lifespan",
        "hook exit",
        "shutdown signal",
    ]


def test_failing_startup_hook_fails_startup(handler: BoundedASGIHandler, settings: Any) -> None:
    settings.ASGISHIFT_LIFESPAN = [f"{__name__}.failing_hook"]

    async def scenario() -> Any:
        return await LifespanDriver(handler).startup()

    answer = run(scenario())
    assert answer["type"] == "lifespan.startup.failed"
    assert "database unreachable" in answer["message"]


def test_registered_hook_runs_after_setting_hooks(settings: Any) -> None:
    from asgishift.django_integration import lifespan

    settings.ASGISHIFT_LIFESPAN = [f"{__name__}.greeting_hook"]
    register(failing_hook)
    try:
        assert lifespan.hooks() == [greeting_hook, failing_hook]
    finally:
        lifespan._registered.remove(failing_hook)


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_shutdown_closes_connections_of_pool_threads(
    handler: BoundedASGIHandler, settings: Any, postgresql_server: Any
) -> None:
    settings.DATABASE_ROUTERS = ["django_support.routers.EverythingTo"]
    settings.ASGISHIFT_TEST_DB_ALIAS = "postgres"
    database = connections["postgres"].settings_dict["NAME"]

    async def scenario() -> tuple[int, int]:
        lifespan = LifespanDriver(handler)
        await lifespan.startup()
        for _ in range(3):
            await call(handler, "GET", "/items/")
        during = await asyncio.to_thread(postgresql_server.count_connections, database)
        await lifespan.shutdown()
        after = await asyncio.to_thread(postgresql_server.count_connections, database)
        return during, after

    with conn_max_age("postgres", 60):
        connections["postgres"].close()
        during, after = run(scenario())
    assert during >= 1
    assert after == 0


def test_body_in_several_messages_reaches_view(handler: BoundedASGIHandler) -> None:
    from django_support.asgi_call import http_scope

    parts = [b"a" * 1000, b"b" * 2000, b"c" * 3]
    messages = [
        {"type": "http.request", "body": part, "more_body": n < len(parts) - 1}
        for n, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        return {}  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run(handler(http_scope("POST", "/echo/"), receive, send))
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"POST 3003"


async def eventually(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` on the loop until true; fail naming ``what`` after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.urls("django_support.endless_urls")
@pytest.mark.parametrize(
    ("kind", "send_blocks"),
    [("async", False), ("async", True), ("sync", False), ("sync", True)],
    ids=["async", "async-send-blocked", "sync", "sync-send-blocked"],
)
def test_endless_stream_stops_when_the_client_leaves(kind: str, send_blocks: bool) -> None:
    """The client leaves after 3 parts: the generator is closed, nothing more is sent,
    and the handler's one thread serves the next request. With ``send_blocks`` the
    disconnect comes while ``send`` waits (a server whose socket buffer is full), so
    the generator is suspended at a ``yield``, not awaiting, when it is stopped."""
    from django_support.asgi_call import http_scope
    from django_support.endless_urls import events

    app = get_asgi_application(max_threads=1)
    closed_before = events[f"{kind} closed"]
    threads_before = threading.active_count()
    parts: list[bytes] = []
    after_leaving: list[dict[str, Any]] = []

    async def scenario() -> Any:
        client = LeavingClient()

        async def send(message: dict[str, Any]) -> None:
            if client.left:
                after_leaving.append(message)
                return
            if message["type"] == "http.response.body":
                parts.append(message["body"])
                if len(parts) == 3:
                    client.leave()
                    if send_blocks:
                        await asyncio.Event().wait()

        scope = http_scope("GET", f"/ticks/{kind}/")
        await asyncio.wait_for(app(scope, client.receive, send), 10)

        def closed() -> bool:
            if kind == "async" and send_blocks:
                # Stopped at a yield, the view's async generator is closed when the
                # response is collected, as under Django's own handler; on Python
                # 3.10 a reference cycle holds it until the collector runs.
                gc.collect()
            return events[f"{kind} closed"] == closed_before + 1

        await eventually(closed, 10, "the generator to close")
        return await asyncio.wait_for(call(app, "GET", "/ping/"), 10)

    try:
        ping = run(scenario())
        threads_after = threading.active_count()
    finally:
        app.pool.shutdown()
    assert parts == [b"tick 0\n", b"tick 1\n", b"tick 2\n"]
    assert after_leaving == []
    assert (ping.status, ping.body) == (200, b"pong")
    assert threads_after <= threads_before + 1  # the handler's one thread
