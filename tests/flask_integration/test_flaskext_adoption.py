"""What a team adopting the extension in a large Flask app runs into.

An application factory with blueprints, Flask-Login and WebSocket routes,
served through the extension's async test client, Flask's own test client and
the WSGI path; ``test_flaskext_live.py`` covers the same features on real
servers.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, g, jsonify, make_response, request
from flask.views import MethodView
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flaskext_helpers import FLASK_APPS_DIR
from werkzeug.exceptions import BadRequest

from asgishift.flask_integration import ASGI, WebSocket, WebSocketRejected
from live import ASGI_SERVER_PARAMS, live_server, wait_for

UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket"}


def create_app() -> tuple[Flask, ASGI]:
    ext = ASGI()
    app = Flask("flaskext_adoption")
    app.secret_key = "adoption"
    ext.init_app(app)
    live = Blueprint("live", __name__, url_prefix="/live")

    @live.route("/echo", websocket=True)
    async def echo(ws: WebSocket) -> None:
        await ws.send(await ws.receive())

    @app.errorhandler(400)
    def bad_request(e: BadRequest) -> Any:
        return jsonify(error=e.description), 400

    app.register_blueprint(live)
    return app, ext


# -- a WebSocket rule reached by a plain HTTP upgrade request ------------------
def test_upgrade_request_over_http_to_a_websocket_rule_is_a_clear_400() -> None:
    """A server that cannot do WebSocket (``flask run``, gunicorn, uvicorn
    ``--ws none``) hands the upgrade request over as HTTP, and Werkzeug then
    matches the WebSocket rule: the view must not be called without its
    connection (a ``TypeError`` and a 500 before)."""
    app, ext = create_app()

    async def over_asgi_http() -> tuple[int, Any]:
        async with ext.test_client(app) as client:
            response = await client.get("/live/echo", headers=UPGRADE)
            return response.status_code, response.json()

    status, body = run(over_asgi_http())
    assert status == 400
    assert "needs an ASGI server" in body["error"]
    # The same app under a WSGI server (Flask's test client stands for flask run).
    response = app.test_client().get("/live/echo", headers=UPGRADE)
    assert response.status_code == 400
    assert "needs an ASGI server" in response.get_json()["error"]


def test_websocket_rule_still_serves_websockets() -> None:
    app, ext = create_app()

    async def scenario() -> str | bytes:
        async with ext.test_client(app) as client, client.websocket("/live/echo") as ws:
            await ws.send("hi")
            return await ws.receive()

    assert run(scenario()) == "hi"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the async test client's WebSocket handshake carries the right cookies ----
def test_websocket_handshake_sends_the_cookies_a_browser_would() -> None:
    """Cookies of one name on two paths crashed the handshake (httpx's
    ``CookieConflict``), and cookies of other paths were sent along."""
    app, ext = create_app()

    @app.get("/api/prefs")
    async def prefs() -> Any:
        response = make_response("set")
        response.set_cookie("theme", "dark", path="/")
        response.set_cookie("theme", "light", path="/api")
        response.set_cookie("api_only", "1", path="/api")
        return response

    @app.route("/ws/cookies", websocket=True)
    async def cookies(ws: WebSocket) -> None:
        await ws.send(request.headers.get("Cookie", ""))

    async def scenario() -> str | bytes:
        async with ext.test_client(app) as client:
            await client.get("/api/prefs")
            async with client.websocket("/ws/cookies") as ws:
                return await ws.receive()

    assert run(scenario()) == "theme=dark"


# -- one app per test (a function-scoped factory fixture) ---------------------
def body_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("asgishift-flask-body")]


def test_threads_reading_sync_bodies_stop_at_shutdown_and_start_again() -> None:
    """A test suite building an app per test leaked the threads that read
    generator responses of async views: one pool per app, never shut down."""

    def create_streaming_app() -> tuple[Flask, ASGI]:
        app, ext = create_app()

        @app.get("/report")
        async def report() -> Response:
            def rows() -> Any:
                yield b"a,"
                yield b"b"

            return Response(rows())

        return app, ext

    async def one_test(app: Flask, ext: ASGI) -> bytes:
        async with ext.test_client(app) as client:
            return (await client.get("/report")).content

    before = set(body_threads())
    app, ext = create_streaming_app()
    for _ in range(2):  # the same app served twice: the pool starts again
        assert run(one_test(app, ext)) == b"a,b"
        wait_for(lambda: set(body_threads()) <= before, 10, "body threads to stop at shutdown")
    assert run(one_test(*create_streaming_app())) == b"a,b"
    wait_for(lambda: set(body_threads()) <= before, 10, "body threads to stop at shutdown")


# -- Flask-Login's login_required around async views --------------------------
AsyncView = Callable[..., Coroutine[Any, Any, Any]]


def async_login_required(view: AsyncView) -> AsyncView:
    """The recipe of docs/flask.md, "Decorated async views"."""
    check = login_required(lambda: None)  # Flask-Login's own check, without a view

    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        refusal = check()
        if refusal is not None:
            return refusal
        return await view(*args, **kwargs)

    return wrapper


class Member(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def create_login_app() -> tuple[Flask, ASGI]:
    app, ext = create_app()
    manager = LoginManager(app)
    manager.user_loader(Member)
    account = Blueprint("account", __name__, url_prefix="/account")

    @account.get("/login")
    async def login() -> str:
        login_user(Member("ada"))
        return "in"

    @account.get("/wrapped")
    @login_required
    async def wrapped() -> Any:
        await asyncio.sleep(0)
        return jsonify(user=current_user.id, thread=threading.get_ident())

    class Settings(MethodView):
        async def get(self) -> str:
            return "settings"

    account.add_url_rule("/settings", view_func=Settings.as_view("settings"))

    @account.get("/recipe")
    @async_login_required
    async def recipe() -> Any:
        await asyncio.sleep(0)
        return jsonify(user=current_user.id, thread=threading.get_ident())

    app.register_blueprint(account)
    return app, ext


def test_async_views_behind_a_sync_decorator_are_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``@login_required`` returns a ``def`` function: the view runs as a sync
    view and holds a worker thread, which the team must be told about once."""
    app, ext = create_login_app()

    async def scenario() -> list[int]:
        async with ext.test_client(app) as client:
            return [(await client.get(path)).status_code for path in ("/account/wrapped",) * 2]

    with caplog.at_level(logging.WARNING, logger="asgishift.flask"):
        assert run(scenario()) == [401, 401]
    warnings = [r.getMessage() for r in caplog.records if "plain def functions" in r.getMessage()]
    assert len(warnings) == 1
    assert "account.wrapped" in warnings[0]
    assert "account.settings" in warnings[0]  # MethodView.as_view returns a def function
    assert "account.recipe" not in warnings[0]


def test_login_required_websocket_views_are_left_out_of_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, ext = create_login_websocket_app()

    async def scenario() -> int:
        async with ext.test_client(app) as client:
            return (await client.get("/account/wrapped")).status_code

    with caplog.at_level(logging.WARNING, logger="asgishift.flask"):
        assert run(scenario()) == 401
    warnings = [r.getMessage() for r in caplog.records if "plain def functions" in r.getMessage()]
    assert len(warnings) == 1
    assert "account.wrapped" in warnings[0]
    assert "inbox" not in warnings[0]


def test_async_login_recipe_runs_on_the_loop_and_refuses_anonymous_users() -> None:
    app, ext = create_login_app()

    async def scenario() -> tuple[int, Any, Any, int]:
        loop_thread = threading.get_ident()
        async with ext.test_client(app) as client:
            anonymous = (await client.get("/account/recipe")).status_code
            await client.get("/account/login")
            recipe = (await client.get("/account/recipe")).json()
            wrapped = (await client.get("/account/wrapped")).json()
        return anonymous, recipe, wrapped, loop_thread

    anonymous, recipe, wrapped, loop_thread = run(scenario())
    assert anonymous == 401
    assert recipe == {"user": "ada", "thread": loop_thread}
    assert wrapped["user"] == "ada"


def create_login_websocket_app() -> tuple[Flask, ASGI]:
    app, ext = create_login_app()

    @app.errorhandler(401)
    def unauthorized(e: Exception) -> Any:
        return jsonify(error="sign in first"), 401

    @app.route("/ws/inbox", websocket=True)
    @login_required
    async def inbox(ws: WebSocket) -> None:
        message = await ws.receive()
        await ws.send(f"{current_user.id}:{message}:{threading.get_ident()}")

    return app, ext


def test_login_required_websocket_view_refuses_anonymous_users_with_401(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``abort(401)`` from ``login_required`` before the handshake was accepted
    was logged as an error and refused with 500."""
    app, ext = create_login_websocket_app()

    async def scenario() -> WebSocketRejected:
        async with ext.test_client(app) as client:
            with pytest.raises(WebSocketRejected) as refused:
                async with client.websocket("/ws/inbox"):
                    pass
            return refused.value

    with caplog.at_level(logging.ERROR):
        refused = run(scenario())
    assert (refused.status, refused.body) == (401, b'{"error":"sign in first"}\n')
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.timeout(30)
def test_login_required_websocket_view_runs_on_the_servers_loop() -> None:
    """The view inside ``login_required`` ran in a helper thread on a loop of
    its own while the server's loop waited for it, so the connection's
    ``receive()`` (served by that loop) never returned: a hang."""
    app, ext = create_login_websocket_app()

    async def scenario() -> tuple[str | bytes, int]:
        async with ext.test_client(app) as client:
            await client.get("/account/login")
            async with client.websocket("/ws/inbox") as ws:
                await ws.send("hi")
                return await asyncio.wait_for(ws.receive(), 10), threading.get_ident()

    reply, loop_thread = run(scenario())
    assert reply == f"ada:hi:{loop_thread}"


# -- async hooks of sync routes and a request body that streams in ------------
def create_upload_app() -> tuple[Flask, ASGI]:
    app, ext = create_app()

    @app.before_request
    async def audit() -> None:
        await asyncio.sleep(0)
        if request.args.get("peek"):
            g.peeked = len(request.get_data())

    @app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    return app, ext


async def chunks(count: int, size: int) -> Any:
    for _ in range(count):
        yield b"x" * size


@pytest.mark.timeout(30)
def test_async_hook_reading_a_streamed_body_of_a_sync_route_fails_clearly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hook runs on the loop while the worker thread waits, and a body in
    several messages is fetched through that same loop: reading it there hung
    the server for good."""
    app, ext = create_upload_app()

    async def scenario() -> tuple[int, int]:
        async with ext.test_client(app) as client:
            peek = await client.post("/upload?peek=1", content=chunks(8, 65536))
            plain = await client.post("/upload", content=chunks(8, 65536))
            return peek.status_code, int(plain.text)

    with caplog.at_level(logging.ERROR):
        assert run(scenario()) == (500, 8 * 65536)
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1]]
    assert [type(e).__name__ for e in errors] == ["BodyReadOnLoop"]
    assert "read by an async def function on the event loop" in str(errors[0])


# -- the next request on a keep-alive connection gets a Flask context of its own
def load_g_app() -> Any:
    """Return the ASGI app of a fresh copy of ``apps/flaskext_adoption_app.py``.

    The same app the live test below serves, loaded here in process.
    """
    spec = importlib.util.spec_from_file_location(
        "flaskext_adoption_app_in_process", FLASK_APPS_DIR / "flaskext_adoption_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.asgi_app


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }


@pytest.mark.parametrize("second", ["/whoami", "/whoami-sync"])
def test_a_request_started_from_the_previous_ones_send_does_not_inherit_its_g(
    second: str,
) -> None:
    """uvicorn starts the next pipelined request on a keep-alive connection from
    inside the previous request's last ``send()``, so its task copies that
    request's context: Flask's pushed app context came along, and the next
    request reused it, ``g`` (Flask-Login's user, a SQLAlchemy session) included."""
    asgi_app = load_g_app()

    async def scenario() -> bytes:
        answer: list[bytes] = []
        started: list[asyncio.Task[None]] = []

        async def request_body() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def collect(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                answer.append(message.get("body", b""))

        async def first_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # As uvicorn does for a request already waiting on the connection.
                started.append(
                    asyncio.ensure_future(asgi_app(http_scope(second), request_body, collect))
                )

        await asgi_app(http_scope("/sign-in"), request_body, first_send)
        await started[0]
        return b"".join(answer)

    assert json.loads(run(scenario())) == {"user": None}


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_pipelined_requests_each_get_their_own_g(server: str) -> None:
    """Two requests sent at once on one connection (HTTP/1.1 pipelining, RFC 9112
    §9.3.2); a proxy reusing its upstream connection has the same timing."""
    with live_server(server, "flaskext_adoption_app:asgi_app", app_dir=FLASK_APPS_DIR) as srv:
        for second in ("/whoami", "/whoami-sync"):
            with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
                sock.sendall(
                    b"GET /sign-in HTTP/1.1\r\nHost: x\r\n\r\n"
                    + f"GET {second} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            assert data.count(b"HTTP/1.1 200") == 2, data
            assert json.loads(data.rsplit(b"\r\n\r\n", 1)[1]) == {"user": None}, (second, data)
