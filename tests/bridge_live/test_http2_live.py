"""The bridge over HTTP/2 on real servers: h2c with prior knowledge (RFC 9113 section 3.3).

hypercorn speaks it on its plain port without a flag; granian needs
``--http 2``, and then refuses HTTP/1.1 altogether, so every request here,
the ``/_state`` polls included, goes over HTTP/2. uvicorn and daphne have no
HTTP/2. Every response is checked to be ``HTTP/2``, so a client or server
that fell back to HTTP/1.1 fails the test instead of passing it unnoticed.

Bodies without a length (HTTP/2 has no chunked encoding, RFC 9113 section
8.1): ``wsgi.input_terminated`` is true (docs/bridge.md, "What the app sees"), and
``CONTENT_LENGTH`` is absent unless the whole body came in the first
``http.request`` message, when the bridge sets it to that body's length
(``WSGIToASGI._http``). Which of the two happens depends on how the server
splits the body, so the tests accept either, but only the exact length.

Not tested: an unread body longer than ``drain_body_size``; docs/bridge.md
records that hypercorn 0.18 then drops the whole connection (``KeyError`` in
``hypercorn/protocol/h2.py``) and granian 2.8 resets the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
from bridge_data import iter_payload, payload_sha256
from bridge_helpers import DEADLINE, state_json

from live import LIVE_APPS_DIR, SRC_DIR, LiveServer, live_server, wait_for

HERE = Path(__file__).resolve().parent
#: What each server needs on its command line to speak h2c with prior knowledge.
H2_ARGS: dict[str, tuple[str, ...]] = {"hypercorn": (), "granian": ("--http", "2")}
H2_SERVER_PARAMS = [pytest.param(name, id=name, marks=pytest.mark.live) for name in H2_ARGS]
#: Request body sizes: under ``buffer_size`` (64 KiB: the bridge collects the
#: body on the loop) and over 1 MiB (``wsgi.input`` streams it to the worker).
BODY_SIZES = [pytest.param(40_000, id="40kB"), pytest.param(1024 * 1024 + 1, id="1MiB")]
DOWNLOAD = 8 * 1024 * 1024  # bytes
MAX_BODY = 4096  # bytes; max_body_size of the limited server
#: One connection: requests that cannot share it wait for it instead of opening another.
ONE_CONNECTION = httpx.Limits(max_connections=1)


def _serve(request: pytest.FixtureRequest, app: str, **kwargs: Any) -> Iterator[LiveServer]:
    server = str(request.param)
    with live_server(server, app, extra_args=H2_ARGS[server], **kwargs) as srv:
        yield srv


@pytest.fixture(scope="module", params=H2_SERVER_PARAMS)
def h2_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``bridge_apps:app`` (validated) over h2c."""
    yield from _serve(request, "bridge_apps:app")


@pytest.fixture(scope="module", params=H2_SERVER_PARAMS)
def recording_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``http2_apps:app``: ``bridge_apps:app`` filing each ``/upload``'s environ."""
    paths = [str(HERE), str(LIVE_APPS_DIR), str(SRC_DIR)]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    yield from _serve(request, "http2_apps:app", env=env, app_dir=HERE)


@pytest.fixture(scope="module", params=H2_SERVER_PARAMS)
def limited_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``bridge_apps:app`` with a body limit of :data:`MAX_BODY` bytes."""
    env = {
        "BRIDGE_APP_MAX_BODY_SIZE": str(MAX_BODY),
        # Far beyond DEADLINE: a refusal that waited for a body nobody sends would show.
        "BRIDGE_APP_DRAIN_TIMEOUT": "600",
    }
    yield from _serve(request, "bridge_apps:app", env=env)


def h2_client() -> httpx.Client:
    """Return an HTTP/2-only client (prior knowledge) on at most one connection."""
    return httpx.Client(http1=False, http2=True, timeout=DEADLINE, limits=ONE_CONNECTION)


def h2_state(server: LiveServer) -> dict[str, Any]:
    """Return the app's ``/_state``, asked over HTTP/2 on a connection of its own."""
    with h2_client() as client:
        response = client.get(f"{server.url}/_state")
    assert response.http_version == "HTTP/2", response.http_version
    assert response.status_code == 200, response.text
    return state_json(response)


def wait_for_h2_state(
    server: LiveServer, predicate: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Poll :func:`h2_state` until ``predicate`` holds and return that state.

    :raise AssertionError: after :data:`DEADLINE` seconds, with the last state and the log.
    """
    last: dict[str, Any] = {}

    def reached() -> bool:
        last.clear()
        last.update(h2_state(server))
        return predicate(last)

    try:
        wait_for(reached, DEADLINE, f"{server.server}: {what}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last state {last}\n{server.log()}") from None
    return last


def _closed_once(server: LiveServer, test_id: str) -> None:
    state = wait_for_h2_state(
        server,
        lambda s: test_id in s["closes"] and test_id not in s["inflight"],
        f"close() of request {test_id}'s iterable",
    )
    assert state["closes"][test_id] == 1, state["closes"][test_id]


def _upload_and_environ(
    server: LiveServer, test_id: str, content: bytes | Iterator[bytes]
) -> tuple[httpx.Response, dict[str, Any]]:
    """POST ``content`` to ``/upload``; return the response and the environ the app saw."""
    with h2_client() as client:
        response = client.post(
            f"{server.url}/upload",
            params={"mode": "read", "chunk": "8191"},
            content=content,
            headers={"X-Test-Id": test_id, "Content-Type": "application/octet-stream"},
        )
    return response, h2_state(server)["environ"][test_id]


def test_environ_over_http2(h2_server: LiveServer, test_id: str) -> None:
    server = h2_server
    headers = [
        ("X-Test-Id", test_id),
        ("X-Mixed-Case-Name", "Value  with  spaces"),
        ("X-Multi", "1"),
        ("x-multi", "2"),
        # Two cookie fields, as HTTP/2 clients may split them (RFC 9113 section 8.2.3).
        ("Cookie", "a=1"),
        ("cookie", "b=2"),
    ]
    with h2_client() as client:
        response = client.get(f"{server.url}/environ/a%20b", params={"q": "é v"}, headers=headers)
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200, response.text
    environ = state_json(response)
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.url_scheme"] == "http"
    # httpx sends no Host field over HTTP/2: the server passes :authority on as host.
    assert environ["HTTP_HOST"] == f"127.0.0.1:{server.port}"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", str(server.port))
    assert environ["REQUEST_METHOD"] == "GET"
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("", "/environ/a b")
    assert environ["QUERY_STRING"] == "q=%C3%A9+v"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_X_TEST_ID"] == test_id
    assert environ["HTTP_X_MIXED_CASE_NAME"] == "Value  with  spaces"
    assert environ["HTTP_X_MULTI"] == "1,2"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_USER_AGENT"].startswith("python-httpx/")
    # No pseudo-header, connection-specific field or body length leaks into the environ.
    assert [key for key in environ if ":" in key] == []
    assert "HTTP_CONNECTION" not in environ
    assert "HTTP_TRANSFER_ENCODING" not in environ
    assert "CONTENT_LENGTH" not in environ
    assert environ["wsgi.input_terminated"] is True
    assert h2_state(server)["environ"][test_id] == environ


@pytest.mark.parametrize("size", BODY_SIZES)
def test_upload_with_content_length(recording_server: LiveServer, test_id: str, size: int) -> None:
    body = b"".join(iter_payload(size))
    response, environ = _upload_and_environ(recording_server, test_id, body)
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200, response.text
    assert state_json(response) == {"sha256": payload_sha256(size), "size": size}
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["CONTENT_LENGTH"] == str(size)
    assert environ["CONTENT_TYPE"] == "application/octet-stream"


@pytest.mark.parametrize("size", BODY_SIZES)
def test_upload_without_length(recording_server: LiveServer, test_id: str, size: int) -> None:
    # A generator body: httpx sends DATA frames and no content-length.
    response, environ = _upload_and_environ(recording_server, test_id, iter_payload(size))
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200, response.text
    assert state_json(response) == {"sha256": payload_sha256(size), "size": size}
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.input_terminated"] is True
    # Absent, or the body's exact length when it came whole in the first message.
    assert environ.get("CONTENT_LENGTH") in (None, str(size)), environ.get("CONTENT_LENGTH")
    assert "HTTP_TRANSFER_ENCODING" not in environ


@pytest.mark.parametrize(
    "length", [pytest.param(False, id="streamed"), pytest.param(True, id="length")]
)
def test_large_download(h2_server: LiveServer, test_id: str, length: bool) -> None:
    server = h2_server
    params = {"size": str(DOWNLOAD), "length": "1" if length else "0"}
    digest = hashlib.sha256()
    received = 0
    with (
        h2_client() as client,
        client.stream(
            "GET", f"{server.url}/download", params=params, headers={"X-Test-Id": test_id}
        ) as response,
    ):
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == DOWNLOAD
    assert digest.hexdigest() == payload_sha256(DOWNLOAD)
    assert response.headers.get("content-length") == (str(DOWNLOAD) if length else None)
    assert "transfer-encoding" not in response.headers
    _closed_once(server, test_id)


async def _agen(size: int) -> AsyncIterator[bytes]:
    for chunk in iter_payload(size):
        yield chunk


def test_multiplexing_on_one_connection(h2_server: LiveServer, test_id: str) -> None:
    server = h2_server
    # Request bodies in bytes (even indexes with a length, odd ones streamed). Together
    # under HTTP/2's initial 65,535-byte connection window (hypercorn keeps it), so no
    # stream waits for a WINDOW_UPDATE: httpcore 1.0.9 loses such a wake-up when two
    # streams wait at once, and one upload hangs until its read timeout (seen without
    # the bridge too, with a bare ASGI app on either server; the same bug as
    # pydantic/httpx2#1133). Large bodies go one at a time in the upload tests.
    uploads = [1, 5_000, 12_000, 20_001, 27_000]
    assert sum(uploads) < 65_535
    downloads = [0, 10, 65_536, 200_003, 2 * 1024 * 1024, 3 * 1024 * 1024]  # bytes
    environs = 20 - len(uploads) - len(downloads)
    # No request here waits on the server (a /block): one that does holds httpcore's
    # read lock in a socket read, and a stream whose response another read already
    # took queues behind it until the read timeout (seen with a bare ASGI app too).
    # test_a_held_stream_does_not_hold_up_the_others checks that with a plain h2 client.

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            http1=False, http2=True, timeout=DEADLINE, limits=ONE_CONNECTION
        ) as client:
            requests = [
                client.get(f"{server.url}/environ", headers={"X-Test-Id": f"{test_id}-{i}"})
                for i in range(environs)
            ]
            requests += [
                client.post(
                    f"{server.url}/upload",
                    content=_agen(size) if i % 2 else b"".join(iter_payload(size)),
                )
                for i, size in enumerate(uploads)
            ]
            requests += [
                client.get(f"{server.url}/download", params={"size": str(size)})
                for size in downloads
            ]
            return list(await asyncio.gather(*requests))

    responses = asyncio.run(main())
    assert len(responses) == 20
    for response in responses:
        assert response.http_version == "HTTP/2", response.request.url
        assert response.status_code == 200, (response.request.url, response.text)
    environ_responses = responses[:environs]
    upload_responses = responses[environs : environs + len(uploads)]
    download_responses = responses[environs + len(uploads) :]
    seen = [state_json(response) for response in environ_responses]
    assert [environ["HTTP_X_TEST_ID"] for environ in seen] == [
        f"{test_id}-{i}" for i in range(environs)
    ]
    # All from one client port: one TCP connection.
    assert len({environ["REMOTE_PORT"] for environ in seen}) == 1, seen
    assert [environ["SERVER_PROTOCOL"] for environ in seen] == ["HTTP/2"] * environs
    assert [state_json(response) for response in upload_responses] == [
        {"sha256": payload_sha256(size), "size": size} for size in uploads
    ]
    assert [hashlib.sha256(response.content).hexdigest() for response in download_responses] == [
        payload_sha256(size) for size in downloads
    ]


@pytest.mark.parametrize(
    "streamed", [pytest.param(False, id="content-length"), pytest.param(True, id="streamed")]
)
def test_413_keeps_the_connection(limited_server: LiveServer, test_id: str, streamed: bool) -> None:
    server = limited_server
    # content-length: refused before the app runs, the small rest drained.
    # streamed: no length, so the bridge asks to close the connection (an ASGI
    # "connection: close" header that must not reach an HTTP/2 client, RFC 9113
    # section 8.2.2) and drains the body, far under drain_body_size.
    size = MAX_BODY * 64 if streamed else MAX_BODY * 4
    content = iter_payload(size) if streamed else b"".join(iter_payload(size))
    with h2_client() as client:
        before = client.get(f"{server.url}/environ")
        refused = client.post(
            f"{server.url}/upload", content=content, headers={"X-Test-Id": test_id}
        )
        after = client.get(f"{server.url}/environ")
    assert [before.http_version, refused.http_version, after.http_version] == ["HTTP/2"] * 3
    assert refused.status_code == 413, refused.text
    for field in ("connection", "keep-alive", "transfer-encoding", "upgrade"):
        assert field not in refused.headers, refused.headers
    assert before.status_code == after.status_code == 200, after.text
    # The same TCP connection served the request after the 413.
    assert state_json(after)["REMOTE_PORT"] == state_json(before)["REMOTE_PORT"]


def test_client_leaving_an_endless_download(h2_server: LiveServer, test_id: str) -> None:
    # hypercorn 0.18 leaves the send() of a stream parked on backpressure waiting
    # for ever once the client closes the connection (it reports http.disconnect
    # all the same): the bridge must cut that wait (Request._cut_send), or the
    # worker thread and the iterable's close() would wait with it.
    server = h2_server
    client = h2_client()
    try:
        received = 0
        with client.stream(
            "GET", f"{server.url}/endless", headers={"X-Test-Id": test_id}
        ) as response:
            assert response.http_version == "HTTP/2"
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += len(chunk)
                if received >= 3 * 4096:
                    break
        assert received >= 3 * 4096
        # The stream is left but the connection is open: the app still runs.
        state = h2_state(server)
        assert test_id in state["inflight"], state["inflight"]
        assert test_id not in state["closes"]
    finally:
        client.close()
    _closed_once(server, test_id)


class RawH2:
    """A bare h2c client connection, for what httpx will not do (reset one stream).

    Requests carry no body. Flow control is given back as data arrives.
    """

    def __init__(self, server: LiveServer) -> None:
        self.authority = f"127.0.0.1:{server.port}"
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        config = h2.config.H2Configuration(client_side=True)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.status: dict[int, int] = {}
        self.data: dict[int, bytearray] = {}
        self.ended: set[int] = set()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def request(self, path: str, headers: dict[str, str]) -> int:
        """Send a GET for ``path``; return its stream id."""
        stream_id: int = self.conn.get_next_available_stream_id()
        fields = [(":method", "GET"), (":scheme", "http"), (":authority", self.authority)]
        fields += [(":path", path), *headers.items()]
        self.conn.send_headers(stream_id, fields, end_stream=True)
        self.data[stream_id] = bytearray()
        self.sock.sendall(self.conn.data_to_send())
        return stream_id

    def reset(self, stream_id: int) -> None:
        """Cancel ``stream_id`` (RST_STREAM with CANCEL); the connection stays open."""
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self.sock.sendall(self.conn.data_to_send())

    def read_until(self, done: Callable[[], bool]) -> None:
        """Process frames until ``done()``.

        :raise ConnectionError: when the server ends the connection first.
        """
        while not done():
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers or [])
                    self.status[event.stream_id] = int(headers[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                    if event.stream_id in self.data:
                        self.data[event.stream_id] += event.data or b""
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.add(event.stream_id)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"the server ended the connection: {event}")
            self.sock.sendall(self.conn.data_to_send())


def test_stream_reset_with_the_connection_kept(h2_server: LiveServer, test_id: str) -> None:
    server = h2_server
    # What a browser does to a download it cancels: RST_STREAM on that stream
    # alone (RFC 9113 section 8.7); the connection carries on.
    conn = RawH2(server)
    try:
        endless = conn.request("/endless", {"x-test-id": test_id})
        conn.read_until(lambda: len(conn.data[endless]) >= 3 * 4096)
        assert conn.status[endless] == 200
        assert test_id in h2_state(server)["inflight"]
        conn.reset(endless)
        _closed_once(server, test_id)
        ping = conn.request("/ping", {})
        conn.read_until(lambda: ping in conn.ended)
        assert (conn.status[ping], bytes(conn.data[ping])) == (200, b"pong")
    finally:
        conn.close()


def test_a_held_stream_does_not_hold_up_the_others(h2_server: LiveServer, test_id: str) -> None:
    server = h2_server
    # /block keeps its stream open, its worker waiting, until released; the other
    # streams of the connection must be served meanwhile. A plain h2 client: httpx
    # stalls the connection itself behind such a stream (see
    # test_multiplexing_on_one_connection).
    sizes = [0, 10, 65_536, 200_003, 2 * 1024 * 1024]  # bytes
    conn = RawH2(server)
    name = f"{test_id}-block"
    try:
        blocked = conn.request(f"/block?name={name}", {"x-test-id": test_id})
        server.wait_for_log(f"blocking {name}", timeout=DEADLINE)
        environ = conn.request("/environ", {"x-test-id": f"{test_id}-environ"})
        downloads = [conn.request(f"/download?size={size}", {}) for size in sizes]
        conn.read_until(lambda: conn.ended.issuperset([environ, *downloads]))
        assert blocked not in conn.status, "the /block response came before its release"
        assert conn.status[environ] == 200
        assert json.loads(conn.data[environ])["SERVER_PROTOCOL"] == "HTTP/2"
        for stream_id, size in zip(downloads, sizes, strict=True):
            assert conn.status[stream_id] == 200
            assert hashlib.sha256(conn.data[stream_id]).hexdigest() == payload_sha256(size)
        release = conn.request(f"/_release?name={name}", {})
        conn.read_until(lambda: conn.ended.issuperset([release, blocked]))
        assert (conn.status[blocked], bytes(conn.data[blocked])) == (200, b"released")
    finally:
        conn.close()
    _closed_once(server, test_id)
