"""notesapp's ASGI-extension features on real servers.

``notesapp.asgi:application`` (the extension's ASGI app) runs under each
server's own command line: the async view shares one ``httpx.AsyncClient``
opened by ``before_serving``, and the WebSocket chat relays messages between
two clients, signed with the session's sign-in name. The README's
``asgishift serve --factory notesapp:create_app`` finds the extension and
serves the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from notes_helpers import SAMPLE_DIR
from websockets.sync.client import ClientConnection, connect

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def asgi_notes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server: str = request.param
    instance: Path = tmp_path_factory.mktemp(f"notesapp-asgi-{server}")
    env = {"NOTESAPP_INSTANCE_PATH": str(instance)}
    with live_server(server, "notesapp.asgi:application", env=env, app_dir=SAMPLE_DIR) as srv:
        yield srv


def test_async_view_shares_the_startup_client(asgi_notes: LiveServer) -> None:
    with httpx.Client(base_url=asgi_notes.url, timeout=10) as client:
        client.post("/api/notes", json={"title": "one"})
        first = client.get("/live/status").json()
        second = client.get("/live/status").json()
    assert first["shared_client"] is True
    assert first["notes"] >= 1
    assert first["client_id"] == second["client_id"]


def test_chat_page_and_websocket_broadcast(asgi_notes: LiveServer) -> None:
    with httpx.Client(base_url=asgi_notes.url, timeout=10) as client:
        page = client.get("/live/chat", params={"room": "tea"})
        assert page.status_code == 200
        assert "/live/ws/tea" in page.text
        client.post("/login", data={"name": "ada"})
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    ws_url = asgi_notes.url.replace("http://", "ws://") + "/live/ws/tea"
    with connect(ws_url, additional_headers={"Cookie": cookie}) as ada:
        ada.send("ping")
        assert ada.recv(timeout=10) == "ada: ping"
        with connect(ws_url) as guest:
            _chat_round(ada, guest)


def _chat_round(ada: ClientConnection, guest: ClientConnection) -> None:
    # The guest is a member before its first message is relayed.
    guest.send("hi")
    assert guest.recv(timeout=10) == "guest: hi"
    assert ada.recv(timeout=10) == "guest: hi"
    ada.send("hello guest")
    assert guest.recv(timeout=10) == "ada: hello guest"


def test_readme_command_serves_the_async_view(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "asgishift", "serve", "--port", "{port}"]
    argv += ["--app-dir", str(SAMPLE_DIR), "--factory", "notesapp:create_app"]
    env = {"NOTESAPP_INSTANCE_PATH": str(tmp_path)}
    with live_server("uvicorn", "", command=argv, env=env, app_dir=SAMPLE_DIR) as srv:
        reply = httpx.get(srv.url + "/live/status", timeout=10)
    assert reply.status_code == 200
    # asgishift serve found the extension: before_serving opened the shared client.
    assert reply.json()["shared_client"] is True
