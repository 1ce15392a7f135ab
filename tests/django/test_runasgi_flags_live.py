"""``manage.py runasgi`` with runserver's flags and a Channels project, run as a user runs it.

Covers a real Channels ``ProtocolTypeRouter`` served through ``ASGI_APPLICATION``
(an HTTP page and a WebSocket echo), ``--nostatic`` and ``--insecure`` (the
staticfiles ``runserver`` rules), and ``--ipv6`` (the IPv6 loopback). The Channels
and IPv6 tests run on all four servers: each server handles an app that refuses the
``lifespan`` scope, and formats an IPv6 listen address, its own way. The last test
pins the granian stop fix the Channels test found.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from django_sample_project import child_env, make_template, runasgi_command, stop_gracefully
from websockets.asyncio.client import connect

from asgishift.serve import ServeConfig
from asgishift.serve._embedded import EmbeddedServer
from live import ASGI_SERVERS, free_port, live_server

pytestmark = pytest.mark.live

CHANNELS_SITE = Path(__file__).resolve().parent / "channels_site"
STYLESHEET = "/static/shelf/style.css"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated sample project with the ``channels_site`` package beside ``manage.py``
    (the tests here edit nothing, so they share it)."""
    project = make_template(tmp_path_factory.mktemp("flags"))
    shutil.copytree(CHANNELS_SITE, project / "channels_site")
    return project


def has_ipv6_loopback() -> bool:
    """Whether a socket can listen on ``::1`` here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def echo(url: str, texts: list[str]) -> list[str]:
    """Send each text over one WebSocket connection and collect the answers."""
    answers = []
    async with connect(url, open_timeout=10) as websocket:
        for text in texts:
            await websocket.send(text)
            answers.append(str(await asyncio.wait_for(websocket.recv(), 10)))
    return answers


@pytest.mark.parametrize("server", ASGI_SERVERS)
def test_channels_router_serves_http_and_websocket(server: str, project: Path) -> None:
    command = runasgi_command(server, "--noreload", "--settings", "channels_site.settings")
    with live_server(server, "", command=command, app_dir=project, env=child_env()) as live:
        live.wait_for_log(r"ASGI_APPLICATION channels_site\.asgi\.application", 10)
        page = httpx.get(live.url + "/", timeout=10)
        assert page.status_code == 200
        assert "Welcome to the shelf" in page.text
        assert httpx.get(live.url + "/count/", timeout=10).json() == {"books": 0}

        ws_url = live.url.replace("http://", "ws://") + "/ws/echo/"
        assert asyncio.run(echo(ws_url, ["hello", "again"])) == ["echo: hello", "echo: again"]
        missing = httpx.get(live.url + "/no-such-page/", timeout=10)
        assert missing.status_code == 404

        assert stop_gracefully(live) == 0
        log = live.log()
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("server", "flags", "debug", "served"),
    [
        pytest.param("uvicorn", ["--nostatic"], "1", False, id="nostatic-debug-uvicorn"),
        pytest.param("uvicorn", [], "0", False, id="no-debug-uvicorn"),
        pytest.param("hypercorn", ["--insecure"], "0", True, id="insecure-no-debug-hypercorn"),
    ],
)
def test_nostatic_and_insecure_follow_runserver(
    server: str, flags: list[str], debug: str, served: bool, project: Path
) -> None:
    css = (project / "shelf" / "static" / "shelf" / "style.css").read_bytes()
    command = runasgi_command(server, "--noreload", *flags)
    env = child_env({"SAMPLE_DEBUG": debug})
    with live_server(server, "", command=command, app_dir=project, env=env) as live:
        banner = live.wait_for_log(r"Starting ASGI development server \(.*\)", 10).group(0)
        page = httpx.get(live.url + "/", timeout=10)
        assert page.status_code == 200
        assert "Welcome to the shelf" in page.text
        static = httpx.get(live.url + STYLESHEET, timeout=10)
        if served:
            assert (static.status_code, static.content) == (200, css)
            assert "static files" in banner
        else:
            assert static.status_code == 404
            assert static.content != css
            assert "static files" not in banner
        assert stop_gracefully(live) == 0


@pytest.mark.parametrize("server", ASGI_SERVERS)
def test_ipv6_listens_on_the_ipv6_loopback(server: str, project: Path) -> None:
    if not has_ipv6_loopback():
        pytest.skip("this machine cannot listen on the IPv6 loopback ::1")
    command = [sys.executable, "manage.py", "runasgi", "--ipv6", "{port}"]
    command += ["--server", server, "--noreload"]
    with live_server(
        server, "", command=command, app_dir=project, env=child_env(), host="::1"
    ) as live:
        assert live.url.startswith("http://[::1]:")
        live.wait_for_log(rf"at http://\[::1\]:{live.port}/", 10)
        page = httpx.get(live.url + "/", timeout=10)
        assert page.status_code == 200
        assert "Welcome to the shelf" in page.text
        assert httpx.get(live.url + STYLESHEET, timeout=10).status_code == 200
        assert stop_gracefully(live) == 0


def test_granian_stop_lets_request_tasks_finish() -> None:
    """A request coroutine still running after its response was sent (as Django's stock
    handler is, leaving its ``ThreadSensitiveContext``) finishes when runasgi's granian
    stops; it used to be cancelled, and granian logged the ``CancelledError``."""
    finished: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"sent"})
        await asyncio.sleep(0.3)  # work after the response, e.g. cleanup
        finished.append(scope["path"])

    config = ServeConfig(app=app, server="granian", host="127.0.0.1", port=free_port())
    server = EmbeddedServer(config, app)
    server.start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{config.port}/after", timeout=10)
    finally:
        server.stop()
    assert answer.text == "sent"
    assert finished == ["/after"]
