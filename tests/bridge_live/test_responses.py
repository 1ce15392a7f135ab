"""Response framing and error handling through the bridge on real servers.

PEP 3333 "Error Handling" (a 500 when the app fails before the headers are
sent; ``start_response`` with ``exc_info``), "The start_response() Callable"
(no control characters in header values), RFC 9110 sections 9.3.2, 15.3.5 and
15.4.5 (HEAD, 204 and 304 carry no content) and keep-alive reuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from bridge_helpers import DEADLINE, RawHTTP, new_test_id, release, state_json, wait_for_state

from live import ASGI_SERVER_PARAMS, LiveServer, live_server


def test_exception_before_body_is_500_with_traceback_logged(
    server: LiveServer, test_id: str
) -> None:
    response = httpx.get(f"{server.url}/error", headers={"X-Test-Id": test_id})
    assert response.status_code == 500
    assert test_id not in response.text  # the traceback stays in the log
    match = server.wait_for_log(rf"Traceback[\s\S]*RuntimeError: boom {test_id}")
    assert "bridge_apps.py" in match.group(0)


def test_exception_before_first_block_is_500(server: LiveServer, test_id: str) -> None:
    # start_response was called, but no block was yielded: the headers are
    # not sent yet, so PEP 3333 still allows a clean 500.
    response = httpx.get(f"{server.url}/error-in-iter", headers={"X-Test-Id": test_id})
    assert response.status_code == 500
    server.wait_for_log(rf"RuntimeError: boom in iteration {test_id}")
    state = wait_for_state(server, lambda s: test_id in s["closes"], "close() called")
    assert state["closes"][test_id] == 1


def test_wsgi_errors_reach_server_log(server: LiveServer, test_id: str) -> None:
    response = httpx.get(f"{server.url}/errors-stream", headers={"X-Test-Id": test_id})
    assert response.content == b"logged"
    server.wait_for_log(f"wsgi-errors {test_id}")


def test_crlf_in_header_is_500(raw_server: LiveServer, test_id: str) -> None:
    response = httpx.get(f"{raw_server.url}/bad-header", headers={"X-Test-Id": test_id})
    assert response.status_code == 500
    assert "x-injected" not in response.headers
    assert "x-bad" not in response.headers
    assert b"should not be sent" not in response.content
    raw_server.wait_for_log(r"X-Bad")  # the log names the bad header


def test_exc_info_before_body_replaces_response(server: LiveServer, test_id: str) -> None:
    response = httpx.get(f"{server.url}/exc-info", headers={"X-Test-Id": test_id})
    assert response.status_code == 500
    assert response.headers["x-replaced"] == "1"
    assert response.content == b"replaced"
    state = wait_for_state(server, lambda s: test_id in s["closes"], "close() called")
    assert state["closes"][test_id] == 1


def _read_all(url: str, test_id: str) -> bytes:
    with httpx.stream("GET", url, headers={"X-Test-Id": test_id}, timeout=DEADLINE) as response:
        assert response.status_code == 200
        return b"".join(response.iter_raw())


def test_exc_info_after_body_aborts_response(server: LiveServer, test_id: str) -> None:
    url = f"{server.url}/exc-info-late"
    if server.server == "daphne":
        # daphne 4.2 cannot abort a started response: its handle_exception()
        # starts a second one, fails, and leaves the connection open. Check
        # the app side only, keeping the connection open until the app is
        # done (a disconnect first would stop the generator before exc_info).
        conn = RawHTTP(server)
        try:
            conn.request("GET", "/exc-info-late", {"X-Test-Id": test_id})
            status, _ = conn.read_head()
            assert status == 200
            wait_for_state(server, lambda s: test_id in s["closes"], "close() called")
        finally:
            conn.close()
    else:
        # The client must see a broken response, never a clean short body.
        with pytest.raises(httpx.RemoteProtocolError):
            _read_all(url, test_id)
    state = wait_for_state(server, lambda s: test_id in s["closes"], "close() called")
    assert state["reraised"][test_id] is True
    assert state["closes"][test_id] == 1


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        pytest.param("HEAD", "/download?size=1000&length=1", 200, id="head-length"),
        pytest.param("HEAD", "/download?size=1000&length=0", 200, id="head-streamed"),
        pytest.param("GET", "/status?code=204", 204, id="204"),
        pytest.param("GET", "/status?code=304", 304, id="304"),
        pytest.param("HEAD", "/status?code=204", 204, id="head-204"),
        pytest.param("GET", "/status?code=304&length=1", 304, id="304-content-length"),
    ],
)
def test_no_body_responses_keep_connection_usable(
    server: LiveServer, method: str, target: str, status: int
) -> None:
    conn = RawHTTP(server)
    try:
        conn.request(method, target)
        got_status, headers = conn.read_head()
        assert got_status == status
        if status == 200:
            assert headers.get("content-length", "1000") == "1000"
        else:
            assert headers.get("content-length", "0") in ("0", "16")
        assert "transfer-encoding" not in headers or method == "HEAD"
        # Any stray body byte would sit in front of the next status line.
        conn.request("GET", "/ping")
        next_status, next_headers = conn.read_head()
        assert next_status == 200
        assert conn.read_body(next_headers) == b"pong"
    finally:
        conn.close()


def test_head_of_file_wrapper_has_no_body(raw_server: LiveServer) -> None:
    # The bridge may send a file by path (granian's pathsend); not for HEAD.
    conn = RawHTTP(raw_server)
    try:
        conn.request("HEAD", "/file?size=5000")
        status, headers = conn.read_head()
        assert status == 200
        assert headers.get("content-length", "5000") == "5000"
        conn.request("GET", "/ping")
        next_status, next_headers = conn.read_head()
        assert next_status == 200
        assert conn.read_body(next_headers) == b"pong"
    finally:
        conn.close()


def test_head_of_file_wrapper_reads_nothing(raw_server: LiveServer, test_id: str) -> None:
    # A HEAD (a crawler, a download manager) to a large file: the bridge read the whole
    # file to drop it, and uvicorn answered the next request on the connection only
    # after that (11 s for 2 GiB). gunicorn reads none of it.
    with httpx.Client(base_url=raw_server.url, timeout=DEADLINE) as client:
        response = client.head("/file", params={"size": 5_000_000}, headers={"X-Test-Id": test_id})
        assert response.status_code == 200
        assert client.get("/ping").content == b"pong"
    state = wait_for_state(
        raw_server, lambda s: s["open_payload_files"] == 0, "the payload file closed"
    )
    assert state["file_reads"][test_id] == 0


def test_pipelined_requests_answered_in_order(server: LiveServer) -> None:
    conn = RawHTTP(server)
    try:
        ids = [new_test_id() for _ in range(3)]
        conn.send(
            b"".join(
                f"GET /environ/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test-Id: {i}\r\n\r\n".encode()
                for i in ids
            )
        )
        seen = []
        for _ in ids:
            status, headers = conn.read_head()
            assert status == 200
            seen.append(state_json(httpx.Response(200, content=conn.read_body(headers))))
    finally:
        conn.close()
    assert [environ["HTTP_X_TEST_ID"] for environ in seen] == ids
    assert [environ["PATH_INFO"] for environ in seen] == [f"/environ/{i}" for i in ids]


def test_http10_request(server: LiveServer) -> None:
    conn = RawHTTP(server)
    try:
        conn.send(b"GET /ping HTTP/1.0\r\n\r\n")
        status, headers = conn.read_head(version="HTTP/1.")
        assert status == 200
        assert conn.read_body(headers) == b"pong"
    finally:
        conn.close()


def test_response_headers_pass_through(server: LiveServer) -> None:
    conn = RawHTTP(server)
    try:
        conn.request("GET", "/headers")
        status, _ = conn.read_head()
    finally:
        conn.close()
    response = httpx.get(f"{server.url}/headers")
    assert status == 299
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    raw = {name.lower(): value for name, value in response.headers.raw}  # bytes as sent
    assert raw[b"x-latin"] == "caf\u00e9".encode("latin-1")
    assert response.content == b"headers"


def test_thousand_keep_alive_requests(server: LiveServer) -> None:
    # Every 10th request has a body, every 100th reports its client port; /ctx
    # reports a context variable leaked from an earlier request (asgiref's
    # adapter answered 500 to a third of such requests under uvicorn).
    statuses: dict[int, int] = {}
    ports = set()
    leaks = []
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as client:
        for i in range(1000):
            test_id = new_test_id()
            headers = {"X-Test-Id": test_id}
            if i % 100 == 0:
                response = client.get("/environ", headers=headers)
                ports.add(response.json()["REMOTE_PORT"])
            elif i % 10 == 0:
                response = client.post("/upload", content=b"x" * i, headers=headers)
                assert response.json()["size"] == i
            else:
                response = client.get("/ctx", headers=headers)
                if response.json()["leaked"] is not None:
                    leaks.append(i)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert statuses == {200: 1000}
    assert leaks == []
    assert len(ports) == 1, f"connection not kept alive: client ports {ports}"


def test_concurrent_requests_run_in_parallel(server: LiveServer) -> None:
    # Twenty views block at once: all must be running before any is released
    # (a bridge with one thread, like asgiref's, would run them one by one).
    names = [new_test_id() for _ in range(20)]
    with ThreadPoolExecutor(len(names)) as executor:
        futures = [
            executor.submit(
                httpx.get, f"{server.url}/block", params={"name": name}, timeout=DEADLINE
            )
            for name in names
        ]
        try:
            for name in names:
                server.wait_for_log(f"blocking {name}", timeout=DEADLINE)
        finally:
            for name in names:
                release(server, name)
        bodies = [future.result().content for future in futures]
    assert bodies == [b"released"] * len(names)


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def foreign_file_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``foreign_file_app:app`` (file wrappers other than the bridge's)."""
    here = Path(__file__).parent
    with live_server(request.param, "foreign_file_app:app", app_dir=here) as srv:
        yield srv


@pytest.mark.parametrize("wrapper", ["wsgiref", "werkzeug"])
@pytest.mark.parametrize(("method", "status"), [("HEAD", "200 OK"), ("GET", "304 Not Modified")])
def test_bodiless_response_of_a_foreign_file_wrapper_reads_nothing(
    foreign_file_server: LiveServer, test_id: str, wrapper: str, method: str, status: str
) -> None:
    # Only the bridge's own wsgi.file_wrapper used to be closed unread; the stdlib's
    # and Werkzeug's were read to their end (612 reads for 5 MB) only to be dropped.
    with httpx.Client(base_url=foreign_file_server.url, timeout=DEADLINE) as client:
        params = {"wrapper": wrapper, "size": "5000000", "status": status, "id": test_id}
        response = client.request(method, "/file", params=params)
        assert response.status_code == int(status[:3])
        assert response.content == b""
        counts = client.get("/_state", params={"id": test_id}).json()
    assert counts == {"reads": 0, "closes": 1}
