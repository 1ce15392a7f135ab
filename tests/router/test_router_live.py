"""HybridRouter under real uvicorn, hypercorn and granian, with Flask, FastAPI and Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from live import REPO_ROOT, LiveServer, free_port, live_server, wait_for

ROUTER_DIR = Path(__file__).resolve().parent

#: server -> (its root-path flag, the prefix the client sends): uvicorn adds
#: root_path to path, hypercorn does not, granian expects it in the request.
ROOT_PATH = {
    "uvicorn": (["--root-path", "/app"], ""),
    "hypercorn": (["--root-path", "/app"], ""),
    "granian": (["--url-path-prefix", "/app"], "/app"),
}
ROUTER_SERVERS = [pytest.param(name, id=name, marks=pytest.mark.live) for name in ROOT_PATH]


def _stop_gracefully(srv: LiveServer, shut_down: Callable[[], bool] | None = None) -> None:
    """Stop the server with SIGINT (hypercorn's CLI skips lifespan shutdown on SIGTERM).

    Waits (at most 30 s) for the process to exit. With ``shut_down``, it is
    enough that the app's lifespan shutdown has finished: granian's worker
    can hang in its own runtime teardown after that, now and then under
    load (granian issue 875); ``live_server`` then kills it.
    """
    os.killpg(srv.process.pid, signal.SIGINT)
    if shut_down is None:
        srv.process.wait(timeout=30)
        return
    wait_for(
        lambda: srv.process.poll() is not None or shut_down(),
        30,
        f"{srv.server} to exit or finish lifespan shutdown; log:\n{srv.log()}",
    )
    with contextlib.suppress(subprocess.TimeoutExpired):
        srv.process.wait(timeout=10)


def _ws(url: str, text: str) -> str:
    async def talk() -> str:
        async with websockets.connect(url, open_timeout=10) as socket:
            await socket.send(text)
            reply = await socket.recv()
        return str(reply)

    return asyncio.run(talk())


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_paths_and_websockets_reach_the_right_app(server: str) -> None:
    with live_server(server, "router_live_apps:hybrid", app_dir=ROUTER_DIR) as srv:
        flask = httpx.get(f"{srv.url}/notes/1").json()
        flask_apix = httpx.get(f"{srv.url}/apix").json()
        fastapi = httpx.get(f"{srv.url}/api/whoami").json()
        starlette = httpx.get(f"{srv.url}/star/").json()
        ws_url = srv.url.replace("http://", "ws://")
        api_reply = _ws(f"{ws_url}/api/ws", "hi")
        star_reply = _ws(f"{ws_url}/star/ws", "hello")
        with pytest.raises(InvalidStatus) as refused:
            _ws(f"{ws_url}/notes/ws", "nobody")
    assert flask == {"app": "flask", "SCRIPT_NAME": "", "PATH_INFO": "/notes/1", "url_for": "/x"}
    assert flask_apix["app"] == "flask", "a prefix matches whole segments only"
    assert fastapi == {
        "app": "fastapi",
        "root_path": "/api",
        "path": "/api/whoami",
        "url_for": "/api/whoami",
    }
    assert starlette == {"app": "starlette", "root_path": "/star"}
    assert api_reply == "fastapi:hi:/api"
    assert star_reply == "starlette:hello"
    # The WSGI fallback cannot speak WebSocket: the handshake is refused.
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_both_sides_see_the_servers_root_path(server: str) -> None:
    flags, sent_prefix = ROOT_PATH[server]
    with live_server(
        server, "router_live_apps:hybrid", app_dir=ROUTER_DIR, extra_args=flags
    ) as srv:
        flask = httpx.get(f"{srv.url}{sent_prefix}/notes/1").json()
        fastapi = httpx.get(f"{srv.url}{sent_prefix}/api/whoami").json()
        ws_url = srv.url.replace("http://", "ws://")
        api_reply = _ws(f"{ws_url}{sent_prefix}/api/ws", "x")
    assert flask == {
        "app": "flask",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/notes/1",
        "url_for": "/app/x",
    }
    assert fastapi == {
        "app": "fastapi",
        "root_path": "/app/api",
        "path": "/app/api/whoami",
        "url_for": "/app/api/whoami",
    }
    assert api_reply == "fastapi:x:/app/api"


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_lifespan_fans_out_in_order_to_three_apps(server: str, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    env = {"ROUTER_EVENTS_FILE": str(events)}
    app = "router_live_apps:hybrid_recorded"
    with live_server(server, app, app_dir=ROUTER_DIR, env=env) as srv:
        assert httpx.get(f"{srv.url}/api/whoami").status_code == 200
        started = events.read_text(encoding="utf-8").splitlines()
        try:
            _stop_gracefully(srv, lambda: "hook shutdown" in events.read_text(encoding="utf-8"))
        except AssertionError:
            if server == "granian" and "server shutdown" not in events.read_text("utf-8"):
                # Its worker can hang in its own runtime before it calls the app
                # (seen in CI under load; granian issues 875 and 900 describe such
                # hangs): then there is no shutdown of ours to check.
                pytest.xfail("granian never sent lifespan.shutdown after SIGINT")
            raise
    assert started == [
        "server startup",
        "hook startup",
        "bridge startup",
        "api startup",
        "star startup",
    ]
    assert events.read_text(encoding="utf-8").splitlines()[5:] == [
        "server shutdown",
        "star shutdown",
        "api shutdown",
        "bridge shutdown",
        "hook shutdown",
    ]


def _serve_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "asgishift", "serve", "--app-dir", str(ROUTER_DIR), *args]


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_serve_mount_flags_build_the_router(server: str, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    argv = _serve_argv(
        "router_live_apps:legacy",
        "--server",
        server,
        "--port",
        "{port}",
        "--mount",
        "/api=router_live_apps:api",
        "--mount",
        "/star/=router_live_apps:star",
        "--on-startup",
        "router_live_apps:hook_start",
        "--on-shutdown",
        "router_live_apps:hook_stop",
        "--root-path",
        "/app",
    )
    env = {"ROUTER_EVENTS_FILE": str(events)}
    with live_server(server, "", command=argv, app_dir=ROUTER_DIR, env=env) as srv:
        flask = httpx.get(f"{srv.url}/notes").json()
        fastapi = httpx.get(f"{srv.url}/api/whoami").json()
        starlette = httpx.get(f"{srv.url}/star/").json()
        banner = srv.wait_for_log(r"mount /api=router_live_apps:api, mount ([^,]+), (\d) lifespan")
        srv.process.terminate()  # SIGTERM to asgishift serve: a graceful stop
        srv.process.wait(timeout=30)
    assert (flask["app"], flask["SCRIPT_NAME"], flask["PATH_INFO"]) == ("flask", "/app", "/notes")
    assert (fastapi["root_path"], fastapi["url_for"]) == ("/app/api", "/app/api/whoami")
    assert starlette == {"app": "starlette", "root_path": "/app/star"}
    assert banner.groups() == ("/star=router_live_apps:star", "2")
    assert events.read_text(encoding="utf-8").splitlines() == [
        "hook startup",
        "api startup",
        "star startup",
        "star shutdown",
        "api shutdown",
        "hook shutdown",
    ]


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_failing_startup_hook_stops_the_server(server: str) -> None:
    argv = _serve_argv(
        "router_live_apps:legacy",
        "--server",
        server,
        "--port",
        str(free_port()),
        "--on-startup",
        "router_live_apps:fail_start",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROUTER_DIR), str(REPO_ROOT / "src")])
    result = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=60, check=False, cwd=ROUTER_DIR
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert (
        "startup hook router_live_apps:fail_start failed: ConnectionError: cannot reach the "
        "database at 127.0.0.1:1" in output
    )


@pytest.mark.parametrize("root", [False, True], ids=["no-root-path", "root-path"])
@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_encoded_paths_pick_the_app_their_raw_segments_name(server: str, root: bool) -> None:
    # /api%2Fwhoami is one segment, "api/whoami" (RFC 3986 §2.2): the router used
    # to match the decoded path and hand it to FastAPI as /api/whoami.
    flags, sent_prefix = ROOT_PATH[server] if root else ([], "")
    base = "/app" if root else ""
    with live_server(
        server, "router_live_apps:hybrid_encoded", app_dir=ROUTER_DIR, extra_args=flags
    ) as srv:
        url = f"{srv.url}{sent_prefix}"
        slash = httpx.get(f"{url}/api%2Fwhoami").json()
        plain = httpx.get(f"{url}/api/whoami").json()
        space = httpx.get(f"{url}/my%20docs/x").json()
        cafe = httpx.get(f"{url}/caf%C3%A9/x").json()
        space_slash = httpx.get(f"{url}/my%20docs%2Fx").json()
    assert slash["app"] == "flask"
    assert slash["SCRIPT_NAME"] == base
    assert plain["app"] == "fastapi"
    assert plain["root_path"] == f"{base}/api"
    assert (space["app"], space["root_path"], space["path"]) == (
        "probe",
        f"{base}/my docs",
        f"{base}/my docs/x",
    )
    assert (cafe["app"], cafe["root_path"], cafe["path"]) == (
        "probe",
        f"{base}/caf\u00e9",
        f"{base}/caf\u00e9/x",
    )
    assert space_slash["app"] == "flask"
