"""The Flask benchmark's contenders serve the same answer (benchmarks/flask_bench.py).

Built in process through the module ``__getattr__`` the servers use; the
ASGI ones are called through httpx's ASGI transport (with the lifespan where
the extension needs it), the WSGI one through Flask's test client.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import httpx
import pytest

from live import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
flask_bench: Any = importlib.import_module("flask_bench")


async def _get(app: Any, path: str) -> tuple[int, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.get(path)
        return response.status_code, response.json()


@pytest.mark.parametrize("attr", ["a2wsgi_flask", "bridge_flask", "quart_app", "extension_flask"])
def test_asgi_contenders_answer_like_stock_flask(attr: str) -> None:
    pytest.importorskip("quart")
    stock = flask_bench.stock_flask.test_client()
    expected = [(r.status_code, r.json) for r in (stock.get("/"), stock.get("/sleep"))]
    app = getattr(flask_bench, attr)
    got = [asyncio.run(_get(app, "/")), asyncio.run(_get(app, "/sleep"))]
    assert got == expected
    assert expected[0] == (200, {"hello": "world"})


def test_unknown_contender_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        flask_bench.no_such_app  # noqa: B018
