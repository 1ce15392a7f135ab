"""``wsgi.file_wrapper``: ``http.response.pathsend`` when offered, bounded chunks otherwise."""

from __future__ import annotations

import io
import logging
import os
import tempfile
import wsgiref.util
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
import werkzeug.wsgi
from bridge_harness import FakeServer, body_messages, make_scope, request, run

from asgishift.bridge import WSGIToASGI
from asgishift.bridge._files import MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, FileWrapper
from asgishift.bridge._wsgi_response import IterableKind, iterable_kind

Environ = dict[str, Any]
PATHSEND: dict[str, dict[str, Any]] = {"http.response.pathsend": {}}


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * MIN_BLOCK_SIZE + 123))
    return path


def file_app(path: Path, *, seek: int = 0, opened: list[Any] | None = None) -> Any:
    def app(environ: Environ, start_response: Any) -> Any:
        handle = path.open("rb")
        if opened is not None:
            opened.append(handle)
        handle.seek(seek)
        size = path.stat().st_size - seek
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
        )
        return environ["wsgi.file_wrapper"](handle, 8192)

    return app


def test_pathsend_used_when_offered(data_file: Path) -> None:
    opened: list[Any] = []
    server = request(WSGIToASGI(file_app(data_file, opened=opened)), extensions=PATHSEND)
    assert server.status == 200
    assert server.sent[-1] == {"type": "http.response.pathsend", "path": str(data_file)}
    assert server.headers[b"content-length"] == str(data_file.stat().st_size).encode()
    assert opened[0].closed


def temp_file_app(content: bytes) -> Any:
    """Return an app sending a ``NamedTemporaryFile``, which its ``close()`` deletes."""

    def app(environ: Environ, start_response: Any) -> Any:
        handle = tempfile.NamedTemporaryFile()  # noqa: SIM115 (the wrapper closes it)
        handle.write(content)
        handle.flush()
        handle.seek(0)
        start_response("200 OK", [("Content-Length", str(len(content)))])
        return environ["wsgi.file_wrapper"](handle)

    return app


@pytest.mark.parametrize(
    "chunks",
    [pytest.param((), id="no-body"), pytest.param((b"a", b"b"), id="unread-chunked-body")],
)
def test_file_deleted_by_its_close_is_sent_whole(chunks: tuple[bytes, ...]) -> None:
    # A generated export in a NamedTemporaryFile: closing it deletes it. The bridge
    # closed it, then granian opened the path it was handed and answered 404.
    content = os.urandom(3 * MIN_BLOCK_SIZE + 5)
    server = FakeServer(body_messages(*chunks))
    scope = make_scope(method="POST" if chunks else "GET", extensions=PATHSEND)
    run(WSGIToASGI(temp_file_app(content)), scope, server)
    assert server.status == 200
    assert server.complete
    # Like granian, open a path handed over only after the ASGI call returned.
    by_path = [Path(m["path"]) for m in server.sent if m["type"] == "http.response.pathsend"]
    assert b"".join(path.read_bytes() for path in by_path) + server.body == content


class CountingReads(io.BytesIO):
    """An in-memory file that counts ``read()`` calls."""

    reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        """Read like :meth:`io.BytesIO.read`, counting the call."""
        self.reads += 1
        return super().read(size)


_WRAPPERS = [
    pytest.param(None, id="bridge"),
    # What an app builds itself, or Werkzeug's wrap_file() without a wsgi.file_wrapper:
    # they used to be read to their end and dropped.
    pytest.param(wsgiref.util.FileWrapper, id="wsgiref"),
    pytest.param(werkzeug.wsgi.FileWrapper, id="werkzeug"),
]


@pytest.mark.parametrize("wrapper", _WRAPPERS)
@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", "200 OK"), ("GET", "304 Not Modified"), ("GET", "204 No Content")],
)
def test_file_of_a_bodiless_response_is_closed_unread(
    method: str, status: str, wrapper: Any
) -> None:
    # Read only to be dropped, a large file held the response open: a HEAD to 2 GiB
    # made uvicorn answer the connection's next request 11 s later. gunicorn reads none.
    handle = CountingReads(b"x" * (3 * MIN_BLOCK_SIZE))

    def app(environ: Environ, start_response: Any) -> Any:
        start_response(status, [("Content-Length", str(3 * MIN_BLOCK_SIZE))])
        return (wrapper or environ["wsgi.file_wrapper"])(handle)

    server = request(WSGIToASGI(app), method=method, extensions=PATHSEND)
    assert server.complete
    assert server.body == b""
    assert "http.response.pathsend" not in [m["type"] for m in server.sent]
    assert (handle.reads, handle.closed) == (0, True)
    if method == "HEAD":
        assert server.headers[b"content-length"] == str(3 * MIN_BLOCK_SIZE).encode()


@pytest.mark.parametrize("wrapper", _WRAPPERS[1:])
def test_a_foreign_file_wrapper_with_a_body_is_read_and_never_pathsent(
    wrapper: Any, data_file: Path
) -> None:
    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return wrapper(data_file.open("rb"), 8192)

    server = request(WSGIToASGI(app), extensions=PATHSEND)
    assert server.body == data_file.read_bytes()
    assert "http.response.pathsend" not in [m["type"] for m in server.sent]


def test_the_file_wrapper_kinds_name_the_real_classes() -> None:
    # The pure module names the wrapper types instead of importing them.
    assert iterable_kind(FileWrapper(io.BytesIO())) is IterableKind.FILE
    assert iterable_kind(wsgiref.util.FileWrapper(io.BytesIO())) is IterableKind.FOREIGN_FILE
    assert iterable_kind(werkzeug.wsgi.FileWrapper(io.BytesIO())) is IterableKind.FOREIGN_FILE

    class Subclass(wsgiref.util.FileWrapper):
        pass

    assert iterable_kind(Subclass(io.BytesIO())) is IterableKind.OTHER


def test_chunks_without_pathsend(data_file: Path) -> None:
    opened: list[Any] = []
    server = request(WSGIToASGI(validator(file_app(data_file, opened=opened))))
    assert server.body == data_file.read_bytes()
    assert all(len(part) <= MIN_BLOCK_SIZE for part in server.body_parts)
    assert len(server.body_parts) > 1
    assert "http.response.pathsend" not in [m["type"] for m in server.sent]
    assert opened[0].closed


def test_seeked_file_is_not_pathsent(data_file: Path) -> None:
    server = request(WSGIToASGI(file_app(data_file, seek=100)), extensions=PATHSEND)
    assert server.body == data_file.read_bytes()[100:]
    assert "http.response.pathsend" not in [m["type"] for m in server.sent]


def range_app(path: Path, start: int, stop: int, opened: list[Any]) -> Any:
    """A ranged response done by hand (Falcon's ``resp.set_stream(f, length)``): the
    file is seeked to ``start`` and the Content-Length is the range's, not the file's."""

    def app(environ: Environ, start_response: Any) -> Any:
        handle = path.open("rb")
        opened.append(handle)
        handle.seek(start)
        start_response(
            "206 Partial Content",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", f"bytes {start}-{stop - 1}/{path.stat().st_size}"),
                ("Content-Length", str(stop - start)),
            ],
        )
        return environ["wsgi.file_wrapper"](handle, 8192)

    return app


@pytest.mark.parametrize("start", [0, 100], ids=["from-the-start", "from-the-middle"])
@pytest.mark.parametrize("extensions", [None, PATHSEND], ids=["iterated", "pathsend-offered"])
def test_a_range_reads_only_its_bytes_and_is_never_pathsent(
    data_file: Path,
    start: int,
    extensions: dict[str, dict[str, Any]] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PEP 3333: stop iterating at the declared Content-Length. The server sends a
    file by path whole, so a range from the start must not be sent by path."""
    opened: list[Any] = []
    # Not wrapped in wsgiref.validate: its iterator would hide the file wrapper from
    # the bridge, as any middleware does (test_chunks_without_pathsend has it).
    app = range_app(data_file, start, start + 100, opened)
    with caplog.at_level(logging.WARNING, logger="asgishift.bridge"):
        server = request(WSGIToASGI(app), extensions=extensions)
    assert server.status == 206
    assert server.body == data_file.read_bytes()[start : start + 100]
    assert "http.response.pathsend" not in [m["type"] for m in server.sent]
    assert opened[0].closed
    assert "more than its Content-Length" not in caplog.text


def test_the_wrapper_stops_at_its_limit() -> None:
    wrapper = FileWrapper(io.BytesIO(b"x" * 200_000), 8192)
    wrapper.limit(70_000)
    assert [len(block) for block in wrapper] == [MIN_BLOCK_SIZE, 70_000 - MIN_BLOCK_SIZE]


def test_in_memory_file_is_iterated_even_with_pathsend() -> None:
    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory"))

    server = request(WSGIToASGI(validator(app)), extensions=PATHSEND)
    assert server.body == b"in memory"


def test_replaced_file_is_not_pathsent(data_file: Path, tmp_path: Path) -> None:
    handle = data_file.open("rb")
    data_file.rename(tmp_path / "moved.bin")
    data_file.write_bytes(b"a different file now")
    try:
        assert FileWrapper(handle).sendable_path() is None
    finally:
        handle.close()


def test_head_with_file_sends_no_body(data_file: Path) -> None:
    server = request(WSGIToASGI(file_app(data_file)), method="HEAD", extensions=PATHSEND)
    assert server.body == b""
    assert server.complete
    assert "http.response.pathsend" not in [m["type"] for m in server.sent]


@pytest.mark.parametrize(
    ("asked", "used"),
    [
        pytest.param(8192, MIN_BLOCK_SIZE, id="small-raised"),
        pytest.param(200_000, 200_000, id="kept"),
        pytest.param(10**9, MAX_BLOCK_SIZE, id="huge-capped"),
    ],
)
def test_block_size_is_bounded(asked: int, used: int) -> None:
    assert FileWrapper(io.BytesIO(), asked).block_size == used
