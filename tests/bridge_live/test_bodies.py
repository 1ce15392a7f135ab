"""Request and response bodies through the bridge on real servers.

PEP 3333 "Input and Error Streams" (``read(size)``, ``readline()``,
iteration), "Buffering and Streaming" (every yielded block goes out before
the next is asked for), "The write() Callable" and "Optional
Platform-Specific File Handling" (``wsgi.file_wrapper``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from bridge_data import iter_payload, payload_sha256
from bridge_helpers import DEADLINE, RawHTTP, get_state, release, state_json, wait_for_state

from live import ASGI_SERVER_PARAMS, LiveServer, live_server

CHUNKED = [pytest.param(False, id="length"), pytest.param(True, id="chunked")]
SMALL = 1_000_003  # bytes; odd so no block boundary lines up
BIG = 64 * 1024 * 1024  # bytes
ABANDONED = 8 * 1024 * 1024  # bytes; more than the socket buffers hold


def _upload(
    server: LiveServer, test_id: str, size: int, *, mode: str = "read", chunked: bool
) -> dict[str, object]:
    headers = {"X-Test-Id": test_id, "Content-Type": "application/octet-stream"}
    if not chunked:
        headers["Content-Length"] = str(size)
    # A generator body: httpx streams it (chunked unless Content-Length is given).
    response = httpx.post(
        f"{server.url}/upload",
        params={"mode": mode, "chunk": "8191"},
        content=iter_payload(size),
        headers=headers,
        timeout=DEADLINE * 3,
    )
    assert response.status_code == 200, response.text
    return state_json(response)


@pytest.mark.parametrize("mode", ["read", "readline", "iter"])
@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="length"), pytest.param(True, id="chunked")]
)
def test_upload_read_modes(server: LiveServer, test_id: str, mode: str, chunked: bool) -> None:
    result = _upload(server, test_id, SMALL, mode=mode, chunked=chunked)
    assert result == {"sha256": payload_sha256(SMALL), "size": SMALL}


def _expected_input_api(body: bytes) -> dict[str, object]:
    # The same calls as bridge_apps._input_api, on a BytesIO: the reference.
    stream = io.BytesIO(body)
    out: dict[str, object] = {"read0": stream.read(0).decode("latin-1")}
    out["readline5"] = stream.readline(5).decode("latin-1")
    out["readline"] = stream.readline().decode("latin-1")
    out["read7"] = stream.read(7).decode("latin-1")
    out["readlines"] = [line.decode("latin-1") for line in stream.readlines()]
    out["eof_read"] = stream.read(10).decode("latin-1")
    out["eof_readline"] = stream.readline().decode("latin-1")
    return out


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(3, id="small"),
        # Long enough that servers deliver it in several http.request messages.
        pytest.param(20_000, id="multi-message"),
    ],
)
@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="length"), pytest.param(True, id="chunked")]
)
def test_input_methods(server: LiveServer, lines: int, chunked: bool) -> None:
    body = b"".join(b"line %d \xe9\xff\r\n" % i for i in range(lines)) + b"tail without newline"
    content = iter([body[: len(body) // 2], body[len(body) // 2 :]]) if chunked else body
    response = httpx.post(f"{server.url}/input-api", content=content, timeout=DEADLINE)
    assert response.status_code == 200, response.text
    assert state_json(response) == _expected_input_api(body)


def test_empty_body(server: LiveServer, test_id: str) -> None:
    response = httpx.post(f"{server.url}/upload", content=b"", headers={"X-Test-Id": test_id})
    assert state_json(response) == {"sha256": hashlib.sha256().hexdigest(), "size": 0}


@pytest.mark.slow
@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="length"), pytest.param(True, id="chunked")]
)
def test_upload_64mib(server: LiveServer, test_id: str, chunked: bool) -> None:
    result = _upload(server, test_id, BIG, chunked=chunked)
    assert result == {"sha256": payload_sha256(BIG), "size": BIG}


@pytest.fixture(params=ASGI_SERVER_PARAMS)
def fresh_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Serve ``bridge_apps:app`` for this test alone (a clean peak-memory record)."""
    if request.param == "daphne":
        pytest.skip(
            "daphne holds whole request bodies and unsent responses in memory itself, "
            "so its peak memory says nothing about the bridge"
        )
    with live_server(request.param, "bridge_apps:app") as srv:
        yield srv


@pytest.mark.slow
def test_64mib_transfers_stream_in_bounded_memory(fresh_server: LiveServer, test_id: str) -> None:
    # A bridge that buffered either body would raise the peak by 64 MiB or more.
    limit_kib = 24 * 1024
    before = get_state(fresh_server)["maxrss_kib"]
    result = _upload(fresh_server, test_id, BIG, chunked=True)
    assert result == {"sha256": payload_sha256(BIG), "size": BIG}
    after_upload = get_state(fresh_server)["maxrss_kib"]
    assert after_upload - before < limit_kib, (before, after_upload)
    sha, size, _ = _download(fresh_server, BIG, length=True)
    assert (sha, size) == (payload_sha256(BIG), BIG)
    after_download = get_state(fresh_server)["maxrss_kib"]
    assert after_download - before < limit_kib, (before, after_download)


def _download(server: LiveServer, size: int, *, length: bool) -> tuple[str, int, httpx.Headers]:
    digest = hashlib.sha256()
    received = 0
    params = {"size": str(size), "length": "1" if length else "0"}
    with httpx.stream("GET", f"{server.url}/download", params=params, timeout=DEADLINE) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_raw():
            digest.update(chunk)
            received += len(chunk)
        return digest.hexdigest(), received, resp.headers


@pytest.mark.parametrize(
    "length", [pytest.param(True, id="length"), pytest.param(False, id="chunked")]
)
def test_download(server: LiveServer, length: bool) -> None:
    sha, size, headers = _download(server, SMALL, length=length)
    assert (sha, size) == (payload_sha256(SMALL), SMALL)
    if length:
        assert headers["content-length"] == str(SMALL)


@pytest.mark.slow
def test_download_64mib(server: LiveServer) -> None:
    sha, size, _ = _download(server, BIG, length=True)
    assert (sha, size) == (payload_sha256(BIG), BIG)


@pytest.mark.parametrize(
    "length", [pytest.param(False, id="streamed"), pytest.param(True, id="content-length")]
)
def test_server_sent_events_stream_before_generator_ends(
    server: LiveServer, test_id: str, length: bool
) -> None:
    # The generator blocks after the first event until the test releases it;
    # a bridge that held blocks back (PEP 3333 "Buffering and Streaming": it
    # "must not delay the transmission of any block") never delivers event 1.
    params = {"length": "1" if length else "0"}
    headers = {"X-Test-Id": test_id}
    with httpx.stream(
        "GET", f"{server.url}/sse", params=params, headers=headers, timeout=DEADLINE
    ) as resp:
        try:
            assert resp.headers["content-type"] == "text/event-stream"
            lines = resp.iter_lines()
            assert next(lines) == "data: 1"
        finally:
            # Unblock the generator even when the test fails, or its thread
            # stays busy and disturbs later tests on this server.
            release(server, test_id)
        rest = [line for line in lines if line]
    assert rest == ["data: 2", "data: end"]


def test_concurrent_async_transfers(server: LiveServer) -> None:
    # Eight uploads and eight downloads at once from one httpx.AsyncClient:
    # the bridge must keep each request's body and response apart.
    sizes = [SMALL + i * 4099 for i in range(8)]

    async def upload(client: httpx.AsyncClient, size: int) -> dict[str, object]:
        async def body() -> AsyncIterator[bytes]:
            for chunk in iter_payload(size):
                yield chunk

        response = await client.post("/upload", content=body())
        return state_json(response)

    async def download(client: httpx.AsyncClient, size: int) -> str:
        digest = hashlib.sha256()
        async with client.stream("GET", "/download", params={"size": size}) as response:
            async for chunk in response.aiter_raw():
                digest.update(chunk)
        return digest.hexdigest()

    async def main() -> tuple[list[dict[str, object]], list[str]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE) as client:
            uploads = asyncio.gather(*(upload(client, size) for size in sizes))
            downloads = asyncio.gather(*(download(client, size) for size in sizes))
            return await uploads, await downloads

    uploaded, downloaded = asyncio.run(main())
    assert uploaded == [{"sha256": payload_sha256(n), "size": n} for n in sizes]
    assert downloaded == [payload_sha256(n) for n in sizes]


def test_write_callable(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/write")
    assert response.status_code == 200
    assert response.content == b"written;returned"


@pytest.mark.parametrize("size", [pytest.param(0, id="empty"), pytest.param(SMALL, id="1MB")])
def test_file_wrapper_validated(server: LiveServer, size: int) -> None:
    response = httpx.get(f"{server.url}/file", params={"size": size})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == payload_sha256(size)


@pytest.mark.parametrize("size", [pytest.param(0, id="empty"), pytest.param(SMALL, id="1MB")])
def test_file_wrapper_unwrapped(raw_server: LiveServer, size: int) -> None:
    # Without the validator the bridge sees its own file wrapper and may send
    # the file by path (granian offers http.response.pathsend).
    response = httpx.get(f"{raw_server.url}/file", params={"size": size})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == payload_sha256(size)
    assert int(response.headers.get("content-length", size)) == size


def test_file_wrapper_sent_by_path_where_offered(raw_server: LiveServer, test_id: str) -> None:
    # Of the four servers only granian offers http.response.pathsend; there
    # the bridge must hand over the path and never read the file itself.
    response = httpx.get(
        f"{raw_server.url}/file", params={"size": SMALL}, headers={"X-Test-Id": test_id}
    )
    assert hashlib.sha256(response.content).hexdigest() == payload_sha256(SMALL)
    reads = get_state(raw_server)["file_reads"][test_id]
    if raw_server.server == "granian":
        assert reads == 0
    else:
        assert reads > 0


def test_file_wrapper_of_a_file_its_close_deletes(raw_server: LiveServer) -> None:
    # A NamedTemporaryFile is deleted by close(): the bridge closed it before granian
    # opened the path it was handed, and granian answered 404 "Not found". granian
    # opens it after send() returns, later still under load: ask eight at once.
    async def fetch_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=raw_server.url, timeout=DEADLINE) as client:
            fetches = [client.get("/tempfile", params={"size": SMALL}) for _ in range(8)]
            return await asyncio.gather(*fetches)

    for response in asyncio.run(fetch_all()):
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == payload_sha256(SMALL)


def test_file_wrapper_from_an_offset(raw_server: LiveServer) -> None:
    # A file positioned past its start must not be sent whole by path.
    response = httpx.get(f"{raw_server.url}/file", params={"size": SMALL, "offset": 1000})
    expected = b"".join(iter_payload(SMALL))[1000:]
    assert response.content == expected


def test_file_wrapper_closes_its_files(raw_server: LiveServer) -> None:
    # Full downloads, HEAD requests and abandoned downloads: afterwards the
    # app holds no payload file open (PEP 3333: close() on the file wrapper
    # closes the file; the bridge must call it on every path).
    with httpx.Client(base_url=raw_server.url, timeout=DEADLINE) as client:
        for _ in range(10):
            assert len(client.get("/file", params={"size": SMALL}).content) == SMALL
            assert client.head("/file", params={"size": SMALL}).content == b""
    for _ in range(5):
        conn = RawHTTP(raw_server)
        conn.request("GET", f"/file?size={ABANDONED}")
        assert conn.read_head()[0] == 200
        conn.close()
    wait_for_state(raw_server, lambda s: s["open_payload_files"] == 0, "payload files closed")


@pytest.mark.slow
def test_file_wrapper_64mib(raw_server: LiveServer) -> None:
    digest = hashlib.sha256()
    with httpx.stream(
        "GET", f"{raw_server.url}/file", params={"size": BIG}, timeout=DEADLINE
    ) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_raw():
            digest.update(chunk)
    assert digest.hexdigest() == payload_sha256(BIG)


def test_malformed_chunked_body_gets_400(server: LiveServer) -> None:
    # uvicorn, hypercorn and daphne refuse it themselves; granian reports it to the
    # app as http.disconnect, and answered 500 (with nothing logged) when the
    # bridge took that for a client that had left and sent nothing.
    conn = RawHTTP(server)
    try:
        conn.send(
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"\r\nzz\r\nhello\r\n0\r\n\r\n"
        )
        status, _ = conn.read_head()
    finally:
        conn.close()
    assert status == 400
