"""``asgishift serve --detect-blocking`` end to end: ASGI blockers reported, bridged WSGI not."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

from live import ASGI_SERVER_PARAMS, live_server

APPS_DIR = Path(__file__).resolve().parent / "apps"
# The app's hold is a 0.4 s sleep. The monitor sends a heartbeat every threshold / 4 after the
# last one was answered, so a hold is caught whatever its phase once it lasts longer than
# 1.25 x the threshold (150 ms here): 250 ms to spare for a loaded CI machine that wakes
# the watchdog late (a 0.2 s hold missed twice in full CI runs).
LAG_MS = "120"


def serve(app: str, server: str, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "asgishift",
        "serve",
        app,
        "--server",
        server,
        "--port",
        "{port}",
        "--app-dir",
        str(APPS_DIR),
        "--detect-blocking",
        *flags,
    ]


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_asgi_blocker_is_reported_with_rule_and_stack(server: str) -> None:
    argv = serve("runtime_blocking_app:inner", server, "--loop-lag-ms", LAG_MS)
    with live_server(server, "", command=argv, app_dir=APPS_DIR) as live:
        assert httpx.get(f"{live.url}/block", timeout=10).text == "block"
        warning = live.wait_for_log(
            r"ASH101 blocking call time\.sleep\(\)[^\n]*\nStack[^\n]*\n(?:  .*\n)+"
        )
        lag = live.wait_for_log(
            rf"event loop held for at least [\d.]+ ms \(threshold {LAG_MS} ms\)"
        )
    assert "in blocking_endpoint" in warning.group(0)
    # By default the stack is trimmed to the app's frames (--full-stack shows all).
    assert "library frames …" in warning.group(0)
    assert "asyncio/base_events.py" not in warning.group(0)
    assert lag.group(0)


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_wsgi_views_through_the_bridge_are_not_reported(server: str) -> None:
    argv = serve("runtime_blocking_app:mixed_app", server)
    with live_server(server, "", command=argv, app_dir=APPS_DIR) as live:
        bridged = [httpx.get(f"{live.url}/wsgi/{n}", timeout=10) for n in range(3)]
        assert httpx.get(f"{live.url}/block", timeout=10).text == "block"
        # The /block warning proves the detector is on; anything the bridged
        # requests triggered would have been logged before it.
        live.wait_for_log(r"ASH101 blocking call time\.sleep\(\)[^\n]*\nStack[^\n]*\n(?:  .*\n)+")
        log = live.log()
    assert [r.status_code for r in bridged] == [200, 200, 200]
    assert bridged[0].content.startswith(b'"""Apps for the live runtime tests')
    assert len(re.findall(r"ASH\d{3} blocking call", log)) == 1, log
    assert "_wsgi_view" not in log, log


def test_full_stack_prints_every_frame() -> None:
    argv = serve("runtime_blocking_app:inner", "uvicorn", "--full-stack")
    with live_server("uvicorn", "", command=argv, app_dir=APPS_DIR) as live:
        assert httpx.get(f"{live.url}/block", timeout=10).text == "block"
        warning = live.wait_for_log(
            r"ASH101 blocking call time\.sleep\(\)[^\n]*\nStack[^\n]*\n(?:  .*\n)+"
        )
    assert "in blocking_endpoint" in warning.group(0)
    assert "library frames" not in warning.group(0)
    assert "uvicorn/" in warning.group(0)


def test_an_app_already_wrapped_by_hand_is_reported_once() -> None:
    # `app` is wrapped in BlockingDetectorMiddleware (100 ms) by the module itself;
    # --detect-blocking wraps it again (LAG_MS): the outer one reports, once.
    argv = serve("runtime_blocking_app:app", "uvicorn", "--loop-lag-ms", LAG_MS)
    with live_server("uvicorn", "", command=argv, app_dir=APPS_DIR) as live:
        assert httpx.get(f"{live.url}/block", timeout=10).text == "block"
        live.wait_for_log(rf"event loop held for at least [\d.]+ ms \(threshold {LAG_MS} ms\)")
        # A later request through the same loop: both watchdogs have long answered.
        assert httpx.get(f"{live.url}/offload", timeout=10).text == "offload"
        log = live.log()
    assert len(re.findall(r"ASH101 blocking call time\.sleep\(\)", log)) == 1, log
    assert len(re.findall(r"event loop held for at least", log)) == 1, log
