"""The bridge's limits on real servers: 503 when full, 413 too large, 504 too slow.

The servers run ``bridge_apps:controlled_app`` with bridge options from the
environment. Its ``/_control/*`` endpoints answer on the event loop, so a
test can still release a blocked view while the pool is full.
RFC 9110 sections 15.6.4 (503 with Retry-After), 15.5.14 (413) and 15.6.5 (504).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import httpx
import pytest
from bridge_data import iter_payload, payload_sha256
from bridge_helpers import DEADLINE, release, state_json, wait_for_state

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

MAX_BODY = 4096  # bytes
RETRY_AFTER = 7  # seconds, an unusual value so the default cannot pass
TIMEOUT = 2.0  # seconds; long enough for /ping on a busy 2-core machine


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def limited(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve with one worker, one queue slot and a 4 KiB body limit."""
    env = {
        "BRIDGE_APP_MAX_WORKERS": "1",
        "BRIDGE_APP_MAX_QUEUE": "1",
        "BRIDGE_APP_MAX_BODY_SIZE": str(MAX_BODY),
        "BRIDGE_APP_RETRY_AFTER": str(RETRY_AFTER),
        # Far beyond DEADLINE: a refusal that waited for a body nobody sends would show.
        "BRIDGE_APP_DRAIN_TIMEOUT": "600",
    }
    with live_server(request.param, "bridge_apps:controlled_app", env=env) as srv:
        yield srv


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def timed(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve with a request timeout of :data:`TIMEOUT` seconds."""
    env = {"BRIDGE_APP_REQUEST_TIMEOUT": str(TIMEOUT)}
    with live_server(request.param, "bridge_apps:controlled_app", env=env) as srv:
        yield srv


def _get(url: str) -> httpx.Response:
    # A fresh connection per call, so the requests reach the server in parallel.
    return httpx.get(url, timeout=DEADLINE)


def test_503_when_pool_and_queue_are_full(limited: LiveServer, test_id: str) -> None:
    with ThreadPoolExecutor(3) as executor:
        holder = executor.submit(_get, f"{limited.url}/block?name={test_id}")
        try:
            limited.wait_for_log(f"blocking {test_id}", timeout=DEADLINE)
            # One of these two takes the only queue slot and the other must be
            # refused; which one depends on arrival order.
            first, second = (executor.submit(_get, f"{limited.url}/ping") for _ in range(2))
            done, _ = wait([first, second], timeout=DEADLINE, return_when=FIRST_COMPLETED)
            assert done, "neither request was answered while the pool was full"
        finally:
            release(limited, test_id, control=True)
        answered = done.pop()
        refused = answered.result()
        queued = second if answered is first else first
        assert holder.result().content == b"released"
        assert queued.result().content == b"pong"
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == str(RETRY_AFTER)
    # The pool is usable again afterwards.
    assert _get(f"{limited.url}/ping").content == b"pong"


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
)
def test_413_when_body_too_large(limited: LiveServer, test_id: str, chunked: bool) -> None:
    size = MAX_BODY * 2
    content = iter_payload(size) if chunked else b"".join(iter_payload(size))
    response = httpx.post(
        f"{limited.url}/upload", content=content, headers={"X-Test-Id": test_id}, timeout=DEADLINE
    )
    assert response.status_code == 413
    assert _get(f"{limited.url}/ping").content == b"pong"


def test_413_at_once_for_a_client_waiting_for_100_continue(
    limited: LiveServer, tmp_path: Path
) -> None:
    # curl waits for "100 Continue" before it sends the body (up to --expect100-timeout);
    # the refusal must neither wait for that body nor ask for it.
    body = tmp_path / "body"
    body.write_bytes(b"x" * (MAX_BODY * 4))
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--expect100-timeout", "600",
         "-H", "Expect: 100-continue", "--data-binary", f"@{body}", f"{limited.url}/upload"],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "413"), done.stderr
    assert _get(f"{limited.url}/ping").content == b"pong"


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
)
def test_body_at_limit_accepted(limited: LiveServer, chunked: bool) -> None:
    content = iter_payload(MAX_BODY) if chunked else b"".join(iter_payload(MAX_BODY))
    response = httpx.post(f"{limited.url}/upload", content=content, timeout=DEADLINE)
    assert response.status_code == 200, response.text
    assert state_json(response) == {"sha256": payload_sha256(MAX_BODY), "size": MAX_BODY}


def test_504_when_view_outlasts_request_timeout(timed: LiveServer, test_id: str) -> None:
    try:
        response = httpx.get(
            f"{timed.url}/block",
            params={"name": test_id},
            headers={"X-Test-Id": test_id},
            timeout=DEADLINE,
        )
    finally:
        # The view is still blocked; once released, its iterable is closed once.
        release(timed, test_id, control=True)
    assert response.status_code == 504
    state = wait_for_state(
        timed, lambda s: test_id in s["closes"], "close() after the timeout", control=True
    )
    assert state["closes"][test_id] == 1
    assert test_id not in state["inflight"]
    assert _get(f"{timed.url}/ping").content == b"pong"


def test_fast_request_within_timeout(timed: LiveServer) -> None:
    response = _get(f"{timed.url}/download?size=100000&length=1")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == payload_sha256(100000)
