"""Flask-Login, Flask-WTF with CSRF and Flask-SQLAlchemy through the extension on uvicorn.

The async views read ``current_user`` (loaded by Flask-Login from SQLAlchemy)
and write a row; the CSRF check runs as a before-request hook on the loop. A
WebSocket view behind ``login_required`` is tried on every ASGI server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flaskext_helpers import FLASK_APPS_DIR
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def stack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db: Path = tmp_path_factory.mktemp("flaskext-stack") / "stack.sqlite"
    env = {"FLASKEXT_STACK_DB": str(db)}
    with live_server(
        "uvicorn", "flaskext_stack_app:asgi_app", app_dir=FLASK_APPS_DIR, env=env
    ) as srv:
        yield srv


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def stack_server_on_each(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    db: Path = tmp_path_factory.mktemp("flaskext-stack-ws") / "stack.sqlite"
    env = {"FLASKEXT_STACK_DB": str(db)}
    server: str = request.param
    with live_server(server, "flaskext_stack_app:asgi_app", app_dir=FLASK_APPS_DIR, env=env) as srv:
        yield srv


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_login_csrf_and_async_views_reading_current_user(stack_server: LiveServer) -> None:
    with httpx.Client(base_url=stack_server.url, timeout=10) as client:
        assert client.get("/me").status_code == 401
        page = client.get("/login")
        token = _csrf_token(page.text)
        # Without the token Flask-WTF's CSRF hook refuses the form.
        assert client.post("/login", data={"name": "ada"}).status_code == 400
        logged_in = client.post("/login", data={"name": "ada", "csrf_token": token})
        assert logged_in.status_code == 302
        me = client.get("/me")
        assert me.status_code == 200
        assert me.json() == {"name": "ada", "authenticated": True}
        # The async view's POST goes through CSRF too.
        assert client.post("/notes", data={"text": "no token"}).status_code == 400
        created = client.post("/notes", data={"text": "hello", "csrf_token": token})
        assert created.status_code == 201, created.text
        assert client.get("/notes").json() == [{"owner": "ada", "text": "hello"}]


def test_login_required_websocket_view(stack_server_on_each: LiveServer) -> None:
    """Refused with Flask-Login's 401 when anonymous (daphne, without the
    ``websocket.http.response`` extension, closes: 403); served on the loop once
    signed in (the handshake hung before)."""
    server = stack_server_on_each
    ws_url = server.url.replace("http://", "ws://") + "/ws/whoami"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, open_timeout=10)
    assert refused.value.response.status_code == (403 if server.server == "daphne" else 401)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        token = _csrf_token(client.get("/login").text)
        assert client.post("/login", data={"name": "ada", "csrf_token": token}).status_code == 302
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    with connect(ws_url, additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "ada:hi"
