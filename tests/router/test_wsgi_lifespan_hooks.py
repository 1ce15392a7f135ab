"""WSGIToASGI's own lifespan hooks: on_startup, on_shutdown and lifespan= (Starlette's shape)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from router_apps import EVENTS, wsgi_app

from asgishift.bridge import WSGIToASGI
from live import REPO_ROOT, free_port, live_server

ROUTER_DIR = Path(__file__).resolve().parent


async def _drive(app: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send startup then shutdown as a server does; return the replies and the state."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)
        if message["type"] == "lifespan.startup.complete":
            EVENTS.append(f"draining={app.draining}")
            await inbox.put({"type": "lifespan.shutdown"})

    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    return replies, state


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


def test_hooks_run_around_the_worker_pool() -> None:
    bridge: WSGIToASGI

    def start() -> None:
        EVENTS.append("sync startup")

    async def start_async() -> None:
        EVENTS.append("async startup")

    def stop() -> None:
        EVENTS.append(f"shutdown, pool drained={bridge.draining}")

    @contextlib.asynccontextmanager
    async def lifespan(app: WSGIToASGI) -> AsyncIterator[dict[str, str]]:
        EVENTS.append(f"enter with {type(app).__name__}")
        yield {"client": "connected"}
        EVENTS.append("exit")

    bridge = WSGIToASGI(
        wsgi_app, on_startup=[start, start_async], on_shutdown=[stop], lifespan=lifespan
    )
    replies, state = asyncio.run(_drive(bridge))
    assert [m["type"] for m in replies] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert EVENTS == [
        "sync startup",
        "async startup",
        "enter with WSGIToASGI",
        "draining=False",
        "exit",
        "shutdown, pool drained=True",
    ]
    assert state == {"client": "connected"}


def test_lifespan_factory_without_arguments_is_called_bare() -> None:
    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        EVENTS.append("bare enter")
        yield

    replies, _ = asyncio.run(_drive(WSGIToASGI(wsgi_app, lifespan=lifespan)))
    assert replies[0]["type"] == "lifespan.startup.complete"
    assert EVENTS == ["bare enter", "draining=False"]


def test_failing_startup_hook_fails_startup_with_its_message() -> None:
    def connect() -> None:
        raise OSError("redis at 127.0.0.1:6379 refused")

    replies, _ = asyncio.run(_drive(WSGIToASGI(wsgi_app, on_startup=[connect])))
    assert len(replies) == 1
    assert replies[0]["type"] == "lifespan.startup.failed"
    assert "connect failed: OSError: redis at 127.0.0.1:6379 refused" in replies[0]["message"]


def test_options_and_hooks_together() -> None:
    bridge = WSGIToASGI(wsgi_app, max_workers=3, on_startup=[lambda: None])
    assert bridge.options.max_workers == 3
    assert len(bridge.on_startup) == 1


@pytest.mark.live
def test_hooks_under_uvicorn(tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    with live_server(
        "uvicorn",
        "router_live_apps:bridge_with_hooks",
        app_dir=ROUTER_DIR,
        env={"ROUTER_EVENTS_FILE": str(events)},
    ) as srv:
        assert httpx.get(f"{srv.url}/x").json()["PATH_INFO"] == "/x"
        assert events.read_text(encoding="utf-8").splitlines() == ["hook startup"]


@pytest.mark.live
def test_failing_hook_stops_uvicorn() -> None:
    argv = [sys.executable, "-m", "uvicorn", "router_live_apps:bridge_failing"]
    argv += ["--port", str(free_port()), "--lifespan", "on"]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROUTER_DIR,
        env={"PYTHONPATH": f"{ROUTER_DIR}:{REPO_ROOT / 'src'}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "startup hook router_live_apps:fail_start failed: ConnectionError" in result.stderr
