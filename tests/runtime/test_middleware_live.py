"""BlockingDetectorMiddleware under real ASGI servers: the server log names the blocker."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from live import ASGI_SERVER_PARAMS, live_server

APPS_DIR = Path(__file__).resolve().parent / "apps"
APP = "runtime_blocking_app:app"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_server_log_names_the_blocking_call_and_the_lag(server: str) -> None:
    with live_server(server, APP, app_dir=APPS_DIR) as live:
        offloaded = httpx.get(f"{live.url}/offload", timeout=10)
        blocked = httpx.get(f"{live.url}/block", timeout=10)
        assert (offloaded.status_code, offloaded.text) == (200, "offload")
        assert (blocked.status_code, blocked.text) == (200, "block")

        warning = live.wait_for_log(
            r"ASH101 blocking call time\.sleep\(\) on the event-loop thread[^\n]*\n"
            r"Stack \(most recent call last; library frames folded\):\n(?:  .*\n)+"
        )
        assert "in blocking_endpoint" in warning.group(0)
        assert "time.sleep(0.4)" in warning.group(0)
        # The server's and asgishift's frames are folded: only the app's are shown.
        assert "library frames …" in warning.group(0)
        assert f"{server}/" not in warning.group(0)

        lag = live.wait_for_log(
            r"event loop held for at least (?P<ms>[\d.]+) ms \(threshold 100 ms\)[^\n]*\n"
            r"Loop thread stack when the threshold was crossed[^\n]*\n(?:  .*\n)+"
        )
        assert float(lag.group("ms")) >= 100.0
        assert "in blocking_endpoint" in lag.group(0)

        log = live.log()
        # The sleep in asyncio.to_thread ran on a worker thread: not reported.
        assert len(re.findall(r"ASH\d{3} blocking call", log)) == 1, log
        assert "offloading_endpoint" not in log, log
