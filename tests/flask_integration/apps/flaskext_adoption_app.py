"""An app whose views show which request's ``g`` they see.

Served by ``test_flaskext_adoption.py`` as ``flaskext_adoption_app:asgi_app``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify

from asgishift.flask_integration import ASGI

app = Flask(__name__)
ext = ASGI(app)


@app.get("/sign-in")
async def sign_in() -> str:
    g.user = "ada"
    return "signed in"


@app.get("/whoami")
async def whoami() -> Any:
    return jsonify(user=g.get("user"))


@app.get("/whoami-sync")
def whoami_sync() -> Any:
    return jsonify(user=g.get("user"))


asgi_app = ext.asgi_app
