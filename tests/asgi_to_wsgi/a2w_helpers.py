"""Helpers for the ASGIToWSGI tests: start real WSGI servers serving ``apps/a2w_apps.py``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from live import LiveServer, live_server

APPS_DIR = Path(__file__).resolve().parent / "apps"

#: (server, extra argv) per WSGI server configuration ASGIToWSGI is tested under.
WSGI_CONFIGS: dict[str, tuple[str, list[str]]] = {
    "gunicorn-gthread": ("gunicorn", []),
    # --threads 1: with the --threads 8 of live.py's command line, gunicorn quietly
    # runs the gthread worker when asked for sync.
    "gunicorn-sync": ("gunicorn", ["-k", "sync", "--threads", "1"]),
    "wsgiref": ("wsgiref", []),
    # waitress's defaults, as a new user starts it: 4 threads, no request lookahead.
    "waitress": ("waitress", []),
}
WSGI_PARAMS = [pytest.param(name, id=name, marks=pytest.mark.live) for name in WSGI_CONFIGS]


def serve(
    config: str,
    app: str = "a2w_apps:application",
    *,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> AbstractContextManager[LiveServer]:
    """Start ``app`` under the WSGI configuration ``config`` (see :data:`WSGI_CONFIGS`).

    :param extra: more argv for the server (e.g. ``["--preload", "-w", "2"]``).
    :param env: environment variables for the server (see ``a2w_apps``).
    """
    server, args = WSGI_CONFIGS[config]
    return live_server(server, app, extra_args=[*args, *(extra or [])], env=env, app_dir=APPS_DIR)


def assert_streamed_past_a_gate(url: str, tmp_path: Path, timeout: float) -> None:
    """GET ``url?gate=<tmp_path>/gate``; assert the line ``first`` arrives while the app
    still waits for the file ``gate.0``, and the line ``last`` once the file exists.

    For apps that stream ``first``, wait for the gate, then stream ``last``: an app
    whose stream the bridge held back until its end fails the first assertion.
    """
    gate = tmp_path / "gate"
    try:
        with httpx.stream("GET", url, params={"gate": str(gate)}, timeout=timeout) as response:
            lines = response.iter_lines()
            assert next(lines) == "first"
            assert not (tmp_path / "gate.0").exists()  # the view is still parked
            (tmp_path / "gate.0").touch()
            assert list(lines) == ["last"]
    finally:
        (tmp_path / "gate.0").touch()  # a sync worker serves one request: release it


def assert_sse_events_arrive_one_by_one(url: str, tmp_path: Path, timeout: float) -> None:
    """GET ``url/sse`` (3 events); assert each event arrives while the app waits at the
    gate file ``gate.<n>`` before its next one: a stream held back until its end fails.

    The gates are opened whatever happens, so a failure leaves no app parked.
    """
    gate = tmp_path / "gate"
    try:
        with httpx.stream(
            "GET", f"{url}/sse", params={"n": 3, "gate": str(gate)}, timeout=timeout
        ) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.iter_lines()
            for number in range(3):
                # The app is parked until this gate opens: the event came while it ran.
                assert next(lines) == f"data: {number}"
                assert next(lines) == ""
                (tmp_path / f"gate.{number}").touch()
            assert list(lines) == []
    finally:
        for number in range(3):
            (tmp_path / f"gate.{number}").touch()


def assert_sse_head_before_the_first_event(url: str, tmp_path: Path) -> None:
    """GET ``url/sse`` whose app holds its first event at the gate file ``gate.first``;
    assert the response head arrives while the app still waits, then the one event.

    The gates are opened whatever happens (a sync worker serves one request at a time).
    """
    gate = tmp_path / "gate"
    params = {"n": 1, "gate": str(gate), "hold_first": 1}
    try:
        with httpx.stream("GET", f"{url}/sse", params=params, timeout=5.0) as resp:
            # The app still waits for its first event: only the head can have come.
            assert not (tmp_path / "gate.first").exists()
            assert resp.headers["content-type"].startswith("text/event-stream")
            (tmp_path / "gate.first").touch()
            (tmp_path / "gate.0").touch()
            assert list(resp.iter_lines()) == ["data: 0", ""]
    finally:
        (tmp_path / "gate.first").touch()
        (tmp_path / "gate.0").touch()
