"""ASGIToWSGI answers a misbehaving ASGI app with a 500 (or 504) and a log line naming the rule."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import httpx
import pytest
import websockets
from a2w_helpers import WSGI_PARAMS, serve
from websockets.exceptions import InvalidMessage, InvalidStatus

from live import LiveServer

DEADLINE = 20.0


@pytest.fixture(scope="module", params=WSGI_PARAMS)
def breaker(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve the raw rule-breaking app (it has no lifespan support either)."""
    with serve(request.param, "a2w_apps:rule_breaker_application") as srv:
        yield srv


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/body-first", "http.response.start must be the first message"),
        ("/no-start", "an app must send http.response.start before it returns"),
        ("/twice", "http.response.start must be sent exactly once"),
        ("/bad-status", "status must be an int from 100 to 999"),
    ],
)
def test_broken_rule_is_a_500_with_the_rule_logged(
    breaker: LiveServer, path: str, rule: str
) -> None:
    response = httpx.get(f"{breaker.url}{path}", timeout=DEADLINE)
    assert response.status_code == 500
    assert b"Traceback" not in response.content
    breaker.wait_for_log(rf"serving GET {path}.*Rule: {rule}|{path}.*{rule}")


def test_message_after_the_last_body_is_a_500(breaker: LiveServer) -> None:
    # The extra message comes before the bridge handed the response to the server,
    # so the client gets a 500 rather than a response from an app known to be broken.
    response = httpx.get(f"{breaker.url}/after-done", timeout=DEADLINE)
    assert response.status_code == 500
    breaker.wait_for_log(r"GET /after-done.*no message may follow the last body message")


def test_failure_after_the_response_started_drops_the_connection(breaker: LiveServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{breaker.url}/fail-midway", timeout=DEADLINE)
    breaker.wait_for_log(r"raised RuntimeError while serving GET /fail-midway")


def test_an_app_that_raises_after_its_response_keeps_that_response(breaker: LiveServer) -> None:
    response = httpx.get(f"{breaker.url}/complete-then-raise", timeout=DEADLINE)
    assert (response.status_code, response.text) == (500, "the app's own error page")
    breaker.wait_for_log(r"GET /complete-then-raise \(after the response was complete")


def test_hop_by_hop_headers_are_left_out(breaker: LiveServer) -> None:
    # wsgiref refuses a WSGI app's hop-by-hop headers with a 500 of its own.
    response = httpx.get(f"{breaker.url}/hop-by-hop", timeout=DEADLINE)
    assert (response.status_code, response.text) == (200, "fine")
    assert "keep-alive" not in response.headers


def test_app_without_lifespan_support_serves(breaker: LiveServer) -> None:
    response = httpx.get(f"{breaker.url}/", timeout=DEADLINE)
    assert (response.status_code, response.text) == (200, "fine")
    breaker.wait_for_log(r"does not support the lifespan protocol")


def test_exception_is_a_500_with_the_traceback_logged(wsgi_server: LiveServer) -> None:
    response = httpx.get(f"{wsgi_server.url}/raise", timeout=DEADLINE)
    assert response.status_code == 500
    assert "the view broke on purpose" not in response.text
    wsgi_server.wait_for_log(r"(?s)Traceback.*RuntimeError: the view broke on purpose")


@pytest.mark.live
def test_stuck_app_gets_a_504_and_its_task_is_cancelled() -> None:
    test_id = os.urandom(8).hex()
    with serve("gunicorn-gthread", env={"A2W_TIMEOUT": "0.5"}) as srv:
        response = httpx.get(f"{srv.url}/stuck", headers={"X-Test-Id": test_id}, timeout=DEADLINE)
        assert response.status_code == 504
        srv.wait_for_log(r"did not send http.response.start within 0.5 s for GET /stuck")
        record = httpx.get(f"{srv.url}/record", params={"id": test_id}, timeout=DEADLINE).json()
        assert record == {"cancelled": True}


@pytest.mark.parametrize("config", WSGI_PARAMS)
def test_any_awaitable_app_is_served(config: str) -> None:
    """An app whose call returns an awaitable that is not a coroutine (ASGI allows any)."""
    with serve(config, "a2w_apps:awaitable_application") as srv:
        # Answers at once; then waits on the loop before each message.
        for path, body in (("/", "part"), ("/suspend-first", "partpartpart")):
            response = httpx.get(f"{srv.url}{path}", timeout=DEADLINE)
            assert (response.status_code, response.text) == (200, body), path


def test_a_websocket_handshake_is_refused_at_once_and_logged(wsgi_server: LiveServer) -> None:
    """A WebSocket client gets a refusal, not a hang, and the log says why.

    WSGI has no WebSocket: the handshake reaches the app as a plain GET, which
    Starlette answers 404 (as under uvicorn without a WebSocket library, which logs
    "Unsupported upgrade request"). Before, nothing in the log told the operator
    that the route exists but cannot be served through a WSGI server.
    """
    url = wsgi_server.url.replace("http://", "ws://") + "/ws"

    async def connect() -> None:
        async with websockets.connect(url, open_timeout=DEADLINE):
            pass

    with pytest.raises((InvalidStatus, InvalidMessage)):
        asyncio.run(connect())
    wsgi_server.wait_for_log(r"WebSocket handshake for GET /ws .* WSGI server")
