"""Lifespan fan-out through HybridRouter, driven in process as a server drives it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from router_apps import EVENTS, make_asgi, wsgi_app

from asgishift.bridge import HybridRouter, WSGIToASGI


async def _drive(app: Any, *, shutdown: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send startup (and shutdown) as a server does; return the replies and the state."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)
        if message["type"] == "lifespan.startup.complete" and shutdown:
            await inbox.put({"type": "lifespan.shutdown"})

    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    return replies, state


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


def _hook(name: str) -> Any:
    def hook() -> None:
        EVENTS.append(name)

    return hook


def _async_hook(name: str) -> Any:
    async def hook() -> None:
        await asyncio.sleep(0)
        EVENTS.append(name)

    return hook


def test_three_apps_start_in_order_and_stop_in_reverse() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        EVENTS.append("context enter")
        yield {"pool": "ready"}
        EVENTS.append("context exit")

    router = HybridRouter(
        make_asgi("legacy"),
        {"/api": make_asgi("api"), "/admin": make_asgi("admin")},
        on_startup=[_hook("hook 1"), _async_hook("hook 2")],
        on_shutdown=[_hook("hook 3"), _async_hook("hook 4")],
        lifespan=lifespan,
    )
    replies, state = asyncio.run(_drive(router))
    assert [m["type"] for m in replies] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert EVENTS == [
        "hook 1",
        "hook 2",
        "context enter",
        "legacy startup",
        "api startup",
        "admin startup",
        "admin shutdown",
        "api shutdown",
        "legacy shutdown",
        "context exit",
        "hook 3",
        "hook 4",
    ]
    # One shared state: what the context yielded and what each child put there.
    assert state == {"pool": "ready", "legacy": "started", "api": "started", "admin": "started"}


def test_a_failing_child_fails_startup_and_stops_the_started_ones() -> None:
    router = HybridRouter(
        make_asgi("legacy"),
        {"/api": make_asgi("api", fail_startup="database unreachable"), "/x": make_asgi("x")},
        on_shutdown=[_hook("hook shutdown")],
    )
    replies, _ = asyncio.run(_drive(router))
    assert replies == [
        {
            "type": "lifespan.startup.failed",
            "message": "mount /api failed to start: database unreachable",
        }
    ]
    assert EVENTS == ["legacy startup", "api startup", "legacy shutdown", "hook shutdown"]


def test_a_failing_startup_hook_fails_startup_with_its_error() -> None:
    def connect() -> None:
        raise ConnectionError("no database at 127.0.0.1:5432")

    router = HybridRouter(make_asgi("legacy"), {"/api": make_asgi("api")}, on_startup=[connect])
    replies, _ = asyncio.run(_drive(router))
    assert len(replies) == 1
    assert replies[0]["type"] == "lifespan.startup.failed"
    assert "connect failed: ConnectionError: no database at 127.0.0.1:5432" in replies[0]["message"]
    assert EVENTS == [], "no child starts after a failed hook"


def test_children_without_lifespan_are_skipped() -> None:
    router = HybridRouter(
        WSGIToASGI(wsgi_app), {"/api": make_asgi("api", lifespan=False)}, on_startup=[_hook("h")]
    )
    replies, _ = asyncio.run(_drive(router))
    assert [m["type"] for m in replies] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert EVENTS == ["h"]


def test_the_bridge_child_drains_its_pool_at_shutdown() -> None:
    bridge = WSGIToASGI(wsgi_app)
    router = HybridRouter(bridge, {"/api": make_asgi("api")})
    asyncio.run(_drive(router))
    assert bridge.draining


def test_a_shutdown_failure_is_reported_after_every_stage_ran() -> None:
    def broken() -> None:
        raise RuntimeError("flush failed")

    router = HybridRouter(make_asgi("legacy"), on_shutdown=[broken, _hook("after broken")])
    replies, _ = asyncio.run(_drive(router))
    assert replies[-1]["type"] == "lifespan.shutdown.failed"
    assert "broken failed: RuntimeError: flush failed" in replies[-1]["message"]
    assert EVENTS == ["legacy startup", "legacy shutdown", "after broken"]


def test_same_app_mounted_twice_gets_one_lifespan() -> None:
    shared = make_asgi("shared")
    router = HybridRouter(make_asgi("legacy"), {"/a": shared, "/b": shared})
    asyncio.run(_drive(router))
    assert EVENTS == ["legacy startup", "shared startup", "shared shutdown", "legacy shutdown"]


def test_unknown_scope_type_raises() -> None:
    router = HybridRouter(make_asgi("legacy"))

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: Any) -> None:
        return None

    with pytest.raises(ValueError, match="scope type 'custom'"):
        asyncio.run(router({"type": "custom"}, nothing, ignore))


def test_repeated_prefix_is_rejected() -> None:
    with pytest.raises(ValueError, match="given twice"):
        HybridRouter(make_asgi("legacy"), [("/api", make_asgi("a")), ("/api/", make_asgi("b"))])


def test_a_cancelled_startup_cancels_the_child_still_starting() -> None:
    """A server that gives up on startup (it was stopped before it listened)
    cancels the router's lifespan call: a child app still starting is cancelled
    with it, not left running with nobody to answer."""
    began = asyncio.Event()
    outcome: list[str] = []

    async def hanging(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        began.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def main() -> None:
        router = HybridRouter(WSGIToASGI(wsgi_app), {"/api": hanging})
        lifespan = asyncio.ensure_future(_drive(router))
        await asyncio.wait_for(began.wait(), 10)
        lifespan.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lifespan
        for _ in range(3):  # the child's own task runs its cancellation
            await asyncio.sleep(0)
        # Checked here: asyncio.run() cancels every task left once main() returns.
        assert outcome == ["cancelled"]

    asyncio.run(main())
