"""What a team adopting the extension in a large Flask app runs into.

An application factory with blueprints, Flask-Login and WebSocket routes,
served through the extension's async test client, Flask's own test client and
the WSGI path; ``test_flaskext_live.py`` covers the same features on real
servers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flask import Blueprint, Flask, jsonify
from werkzeug.exceptions import BadRequest

from asgishift.flask_integration import ASGI, WebSocket

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
