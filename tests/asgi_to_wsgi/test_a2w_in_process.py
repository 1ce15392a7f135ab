"""ASGIToWSGI called in process as a WSGI app (under ``wsgiref.validate``), no server.

Each test drives one request through the bridge the way a WSGI server does:
call, iterate, ``close()``. The app's side runs on the bridge's real loop
thread. The live tests (``test_a2w_live.py``) cover the same bridge under
gunicorn and wsgiref; these pin down orderings a server makes hard to force.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions

OPTIONS = ASGIToWSGIOptions(lifespan="off", response_timeout=20.0)
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}


def call(
    app: Any, body: Any = b"", method: str = "GET"
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Serve one request to ``app`` through ``ASGIToWSGI``; return status, headers, body.

    :param body: the request body, or a file-like ``wsgi.input`` with a ``size``
        attribute (its ``CONTENT_LENGTH``).
    """
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "QUERY_STRING": ""}
    setup_testing_defaults(environ)
    if isinstance(body, bytes):
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(body.size)
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got[:] = [status, headers]
        return lambda data: None

    result: Iterable[bytes] = validator(ASGIToWSGI(app, OPTIONS))(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    return got[0], got[1], content


def test_a_complete_response_stands_when_the_app_raises_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Starlette's ServerErrorMiddleware sends the error handler's response, then re-raises.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"custom error page"})
        raise RuntimeError("re-raised after the handler answered")

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        status, _, body = call(app)
    assert (status, body) == ("200 OK", b"custom error page")
    assert "after the response was complete" in caplog.text
    assert "RuntimeError: re-raised after the handler answered" in caplog.text


def test_a_message_after_the_last_body_is_still_a_500() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"done"})
        await send({"type": "http.response.body", "body": b"extra"})

    status, _, _ = call(app)
    assert status.startswith("500")


@pytest.mark.parametrize("waits_on", ["the child task", "receive()"])
def test_what_another_task_sends_leaves_at_once(waits_on: str) -> None:
    """A message sent from a task of the app's own reaches the WSGI server right away.

    The request's task meanwhile waits on that task, or for the client to leave
    (as anyio task groups do, in sse-starlette): it may not wake again until the
    stream ends, so its next suspension cannot be what sends the batch on.
    """
    release = threading.Event()
    released_by_timer = threading.Timer(10.0, release.set)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def stream() -> None:
            await send(START)
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            while not release.is_set():  # noqa: ASYNC110 - released from the WSGI side
                await asyncio.sleep(0.005)
            await send({"type": "http.response.body", "body": b"last"})

        task = asyncio.create_task(stream())
        if waits_on == "receive()":
            assert (await receive())["type"] == "http.request"
            assert (await receive())["type"] == "http.disconnect"  # after the last body
        await task

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "QUERY_STRING": ""}
    setup_testing_defaults(environ)
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append(status)
        return lambda data: None

    released_by_timer.start()
    result: Any = validator(ASGIToWSGI(app, OPTIONS))(environ, start_response)
    try:
        chunks = iter(result)
        first = next(chunk for chunk in chunks if chunk)  # b"": the head, sent alone
        # Before the change, the head and "first" waited for the stream to end.
        assert not release.is_set(), "the first chunk waited for the stream to end"
        release.set()
        assert (started, first, b"".join(chunks)) == (["200 OK"], b"first", b"last")
    finally:
        release.set()
        released_by_timer.cancel()
        result.close()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789ABCDEFGHIJ")
    return path


def zerocopy_app(path: Path, first: dict[str, Any], *rest: dict[str, Any]) -> Any:
    """An app that sends ``first`` (a zerocopysend message, ``file`` filled in), then ``rest``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START)
        with open(path, "rb") as file:  # noqa: ASYNC230 - a small local test file
            file.seek(10)
            await send({**first, "file": file})
        for message in rest:
            await send(message)

    return app


def test_zerocopysend_is_followed_by_the_rest_of_the_body(data_file: Path) -> None:
    first = {"type": "http.response.zerocopysend", "offset": 0, "count": 5, "more_body": True}
    app = zerocopy_app(data_file, first, {"type": "http.response.body", "body": b"<tail>"})
    assert call(app)[2] == b"01234<tail>"


def test_zerocopysend_without_an_offset_reads_from_the_current_position(data_file: Path) -> None:
    # ASGI zero-copy extension: "Otherwise, it will be read from the current position".
    app = zerocopy_app(data_file, {"type": "http.response.zerocopysend"})
    assert call(app)[2] == b"ABCDEFGHIJ"


def test_polling_for_a_disconnect_holds_no_future_per_poll() -> None:
    seen: dict[str, int] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # the whole (empty) body
        for _ in range(500):  # what Starlette's request.is_disconnected() does
            poll = asyncio.ensure_future(receive())
            await asyncio.sleep(0)  # receive() runs up to its wait
            poll.cancel()
            with pytest.raises(asyncio.CancelledError):
                await poll
        # White box: the bridge's loop side of this request (receive's instance).
        seen["waiting"] = len(receive.__self__._waiters)
        await send(START)
        await send({"type": "http.response.body", "body": b"ok"})

    assert call(app)[2] == b"ok"
    assert seen == {"waiting": 0}


class GatedInput:
    """A ``wsgi.input`` whose first ``read`` blocks until ``gate`` is set (a slow client)."""

    def __init__(self, data: bytes, gate: threading.Event) -> None:
        self.size = len(data)
        self._data = io.BytesIO(data)
        self._gate = gate

    def read(self, size: int = -1) -> bytes:
        if not self._gate.wait(20):
            raise OSError("the test never opened the gate")
        return self._data.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._data.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._data.readlines(hint)

    def __iter__(self) -> Any:
        return iter(self._data)


def test_a_receive_that_timed_out_loses_no_body() -> None:
    data = os.urandom(300_000)  # larger than chunk_size: several reads
    gate = threading.Event()
    timeouts: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received = bytearray()
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), 0.05)
            except asyncio.TimeoutError:
                timeouts.append(len(received))
                gate.set()  # the client's bytes arrive once the app has given up once
                continue
            assert message["type"] == "http.request"
            received += message.get("body", b"")
            more = message.get("more_body", False)
        await send(START)
        await send({"type": "http.response.body", "body": bytes(received)})

    status, _, body = call(app, GatedInput(data, gate), method="POST")
    assert timeouts, "the first receive() should have timed out"
    assert (status, len(body), body == data) == ("200 OK", len(data), True)


class SlowClientInput:
    """A ``wsgi.input`` whose every read moves the bridge's clock on by ``step`` seconds.

    Stands for a client uploading slowly, without a test that sleeps: the bridge
    measures ``response_timeout`` with ``time.monotonic()`` of its WSGI-side module.
    """

    def __init__(self, data: bytes, clock: list[float], step: float) -> None:
        self._data = io.BytesIO(data)
        self._clock = clock
        self._step = step
        self.size = len(data)

    def read(self, size: int = -1) -> bytes:
        self._clock[0] += self._step
        return self._data.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._data.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._data.readlines(hint)

    def __iter__(self) -> Any:
        return iter(self._data)


def test_a_slow_upload_does_not_count_against_the_response_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """response_timeout is the app's time to answer, not the client's time to upload.

    The upload takes 8 (fake) seconds in 16 reads of half a second each, against a
    response_timeout of 2 s: the app, which answers once it has the whole body, must
    not get a 504 (uvicorn has no such limit at all).
    """
    from asgishift.bridge import _asgi_wsgi_side

    clock = [1000.0]
    monkeypatch.setattr(
        _asgi_wsgi_side, "time", type("Clock", (), {"monotonic": staticmethod(lambda: clock[0])})
    )
    data = os.urandom(16 * 1024)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received = bytearray()
        more = True
        while more:
            message = await receive()
            received += message.get("body", b"")
            more = message.get("more_body", False)
        await send(START)
        await send({"type": "http.response.body", "body": bytes(received)})

    options = ASGIToWSGIOptions(lifespan="off", response_timeout=2.0, chunk_size=1024)
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "QUERY_STRING": ""}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = SlowClientInput(data, clock, 0.5)
    environ["CONTENT_LENGTH"] = str(len(data))
    got: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.append(status)
        return lambda chunk: None

    result = validator(ASGIToWSGI(app, options))(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    assert (got, body == data) == (["200 OK"], True)
    assert clock[0] >= 1008.0  # the upload did take longer than the timeout


def test_hop_by_hop_headers_never_reach_the_wsgi_server() -> None:
    # wsgiref.validate (around the bridge in call()) refuses hop-by-hop headers.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"connection", b"close"), (b"keep-alive", b"timeout=5"), *START["headers"]]
        await send({**START, "headers": headers})
        await send({"type": "http.response.body", "body": b"fine"})

    status, headers, body = call(app)
    assert (status, headers, body) == ("200 OK", [("content-type", "text/plain")], b"fine")


@pytest.mark.parametrize(
    "name", ["disconnect_grace", "background_timeout", "startup_timeout", "shutdown_timeout"]
)
def test_negative_timeouts_are_refused(name: str) -> None:
    make: Callable[..., ASGIToWSGIOptions] = ASGIToWSGIOptions
    with pytest.raises(ValueError, match=name):
        make(**{name: -1})
