"""ASGIToWSGI under gunicorn (gthread) with Starlette middleware and Quart serving hooks.

- A ``BaseHTTPMiddleware`` that adds a header, stacked (either order) with
  ``GZipMiddleware``, in front of a ``StreamingResponse`` whose chunks wait for
  gates: compressed or not, each chunk reaches the client before the app makes
  the next, the body is exact and the header is there.
- A Quart app's ``before_serving`` hook runs before the first request is served,
  and its ``after_serving`` hook when gunicorn is stopped with ``SIGTERM``.

The apps are in ``apps/middleware_apps.py``.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import re
import signal
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from a2w_helpers import serve

from live import LiveServer

pytestmark = pytest.mark.live

DEADLINE = 20.0
#: Lines /stream sends, and the padding of each (well above the app's gzip minimum_size).
COUNT = 4
PAD = 300
DISPATCH_HEADER = "x-dispatched"  # middleware_apps.DISPATCH_HEADER


def _chunk(index: int) -> bytes:
    """The ``index``-th line of /stream (``middleware_apps.chunk``)."""
    return f"chunk {index} {'z' * PAD}\n".encode()


EXPECTED = b"".join(_chunk(index) for index in range(COUNT))


@pytest.fixture(scope="module", params=["header_outside_gzip", "gzip_outside_header"])
def middleware_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """gunicorn gthread serving the streaming app behind both middleware, in either order."""
    with serve("gunicorn-gthread", f"middleware_apps:{request.param}") as srv:
        yield srv


def _lines_as_they_arrive(
    raw: Iterator[bytes], decode: Callable[[bytes], bytes]
) -> Iterator[bytes]:
    """Yield each line of the body (``raw`` run through ``decode``) once all of it arrived."""
    pending = b""
    for data in raw:
        pending += decode(data)
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _stream_past_gates(
    server: LiveServer,
    tmp_path: Path,
    accept_encoding: str,
    decode: Callable[[bytes], bytes],
) -> tuple[httpx.Headers, bytes]:
    """GET /stream; assert each line arrives while the app still waits for its gate.

    The app sends line ``i + 1`` only once the file ``gate.{i}`` exists, and only
    this function creates it, after line ``i`` has arrived: a stream held back by
    the bridge or a middleware never gets past the first gate (a read timeout).

    :return: the response's headers and its body exactly as it came (not decoded).
    """
    gate = tmp_path / "gate"
    params: dict[str, str | int] = {"n": COUNT, "pad": PAD, "gate": str(gate)}
    raw = bytearray()

    def received() -> Iterator[bytes]:
        for data in response.iter_raw():
            raw.extend(data)
            yield data

    try:
        with httpx.stream(
            "GET",
            f"{server.url}/stream",
            params=params,
            headers={"Accept-Encoding": accept_encoding},
            timeout=DEADLINE,
        ) as response:
            assert response.status_code == 200
            lines = _lines_as_they_arrive(received(), decode)
            for index in range(COUNT - 1):
                assert next(lines) == _chunk(index)
                assert not (tmp_path / f"gate.{index}").exists()  # the app is still parked
                (tmp_path / f"gate.{index}").touch()
            assert list(lines) == [_chunk(COUNT - 1)]
            return response.headers, bytes(raw)
    finally:
        for index in range(COUNT):  # release the app whatever happened
            (tmp_path / f"gate.{index}").touch()


def _gzip_flushes_each_chunk() -> bool:
    """Return whether the installed Starlette's GZipMiddleware flushes each streamed chunk.

    Starlette 1.5 made it flush (``Z_SYNC_FLUSH``) after each chunk; before, the
    compressor held a stream's output until about 32 KiB or the end.
    """
    parts = importlib.metadata.version("starlette").split(".")[:2]
    return tuple(int(part) for part in parts if part.isdigit()) >= (1, 5)


def test_gzip_stream_decompresses_to_the_chunks_and_keeps_the_header(
    middleware_server: LiveServer, tmp_path: Path
) -> None:
    """With ``Accept-Encoding: gzip`` the stream is compressed, and still streams.

    Where GZipMiddleware flushes its compressor after each chunk, each one can
    be decompressed as soon as it arrives, and is checked to arrive before the
    app makes the next; with an older Starlette the gates open at once and the
    whole body is checked.
    """
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    if _gzip_flushes_each_chunk():
        headers, raw = _stream_past_gates(
            middleware_server, tmp_path, "gzip", decompressor.decompress
        )
    else:
        for index in range(COUNT):
            (tmp_path / f"gate.{index}").touch()
        with httpx.stream(
            "GET",
            f"{middleware_server.url}/stream",
            params={"n": COUNT, "pad": PAD, "gate": str(tmp_path / "gate")},
            headers={"Accept-Encoding": "gzip"},
            timeout=DEADLINE,
        ) as response:
            assert response.status_code == 200
            headers, raw = response.headers, b"".join(response.iter_raw())
        assert decompressor.decompress(raw) == EXPECTED
    assert headers["content-encoding"] == "gzip"
    assert headers[DISPATCH_HEADER] == "/stream"
    assert "accept-encoding" in headers["vary"].lower()
    assert "content-length" not in headers
    assert decompressor.eof  # the gzip stream was ended (trailer and all) ...
    assert decompressor.unused_data == b""  # ... with nothing after it
    assert gzip.decompress(raw) == EXPECTED
    assert raw != EXPECTED


def test_identity_stream_arrives_chunk_by_chunk_with_the_header(
    middleware_server: LiveServer, tmp_path: Path
) -> None:
    """Without gzip in ``Accept-Encoding`` each chunk arrives as the app produces it."""
    headers, raw = _stream_past_gates(middleware_server, tmp_path, "identity", bytes)
    assert "content-encoding" not in headers
    assert headers[DISPATCH_HEADER] == "/stream"
    assert headers["content-type"].startswith("text/plain")
    assert raw == EXPECTED


def _serving_events(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_quart_serving_hooks_run_at_startup_and_at_a_graceful_stop(tmp_path: Path) -> None:
    """``before_serving`` runs before the first request is served; ``after_serving``
    runs when the stopped worker exits, after it."""
    events = tmp_path / "serving"
    env = {"MW_SERVING_EVENTS": str(events)}
    with serve("gunicorn-gthread", "middleware_apps:quart_serving", env=env) as srv:
        first = httpx.get(f"{srv.url}/serving", timeout=DEADLINE)
        assert first.status_code == 200, first.text
        worker = first.json()["pid"]
        token = first.json()["serving"].get("token", "")
        assert re.fullmatch(r"[0-9a-f]{16}", token), first.json()
        # The request saw what the hook set, in the worker that serves it.
        assert first.json()["serving"] == {"token": token, "pid": worker}
        assert _serving_events(events) == [f"before {worker} {token}"]
        # The hook ran once: a later request sees the same state.
        assert httpx.get(f"{srv.url}/serving", timeout=DEADLINE).json() == first.json()

        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(DEADLINE) == 0
        log = srv.log()
    assert _serving_events(events) == [f"before {worker} {token}", f"after {worker} {token}"], log
    assert "Traceback" not in log, log
