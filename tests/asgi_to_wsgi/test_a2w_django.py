"""Django's own ASGI handler (``get_asgi_application()``) through ASGIToWSGI under gunicorn.

When the client leaves, the view is cancelled, as under uvicorn: Django 5.0+'s
handler listens for ``http.disconnect`` while the view runs and cancels it; on
Django 4.2 the bridge cancels the task after ``disconnect_grace``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from a2w_helpers import WSGI_PARAMS, assert_streamed_past_a_gate, serve

from live import LiveServer

DEADLINE = 20.0

#: The client that leaves is seen on its socket (``gunicorn.socket``), which wsgiref and
#: waitress do not hand over.
GUNICORN_PARAMS = [p for p in WSGI_PARAMS if str(p.values[0]).startswith("gunicorn")]


@pytest.fixture(scope="module", params=GUNICORN_PARAMS)
def django_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Path]]:
    events = tmp_path_factory.mktemp("events") / "events"
    with serve(request.param, "a2w_django:application", env={"A2W_EVENTS": str(events)}) as srv:
        yield srv, events


def test_a_slow_view_is_served_whole(django_server: tuple[LiveServer, Path]) -> None:
    """A view that outlasts the wait before the client's socket is watched still answers."""
    server, _ = django_server
    response = httpx.get(f"{server.url}/slow/", params={"s": "0.8"}, timeout=DEADLINE)
    assert (response.status_code, response.text) == (200, "slow done")


def _count(events: Path, kind: str) -> int:
    return events.read_text().split().count(kind) if events.exists() else 0


def _wait_for_count(events: Path, kind: str, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while _count(events, kind) < count:
        assert time.monotonic() < deadline, f"no {kind!r} event: {events.read_text()!r}"
        time.sleep(0.02)


def test_a_client_that_leaves_cancels_the_view(django_server: tuple[LiveServer, Path]) -> None:
    """Before, Django never heard of the departed client and its view ran to its end."""
    server, events = django_server
    started, cancelled = _count(events, "started"), _count(events, "cancelled")
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(b"GET /slow/?s=600 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        _wait_for_count(events, "started", started + 1)
    _wait_for_count(events, "cancelled", cancelled + 1)
    # The server's thread is free again (a sync worker serves one request at a time).
    reply = httpx.get(f"{server.url}/slow/", params={"s": "0"}, timeout=DEADLINE)
    assert reply.text == "slow done"


def test_a_streaming_response_arrives_as_it_is_sent(
    django_server: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    """Django 5.0+'s handler sends from a task of its own; before, the stream came whole."""
    server, _ = django_server
    assert_streamed_past_a_gate(f"{server.url}/stream/", tmp_path, DEADLINE)
