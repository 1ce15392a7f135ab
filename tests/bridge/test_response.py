"""In-process tests of ``WSGIToASGI`` responses: fast path, streaming, errors, close()."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from bridge_harness import DEADLINE, FakeServer, Gate, body_messages, make_scope, request, run

from asgishift._types import Message
from asgishift.bridge import WSGIToASGI
from asgishift.bridge._errors import InvalidResponse

Environ = dict[str, Any]


class Closing:
    """A response iterable that counts close() calls and pulls."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = 0
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk

    def close(self) -> None:
        self.closed += 1


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_small_response_is_one_start_and_one_body() -> None:
    server = request(WSGIToASGI(validator(hello)))
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.status == 200
    assert server.headers[b"content-type"] == b"text/plain"
    assert server.body == b"Hello, World!"
    assert server.complete


def test_sized_response_larger_than_buffer_streams_in_order() -> None:
    chunks = [bytes([65 + i]) * 40 for i in range(5)]

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "200")])
        return chunks

    server = request(WSGIToASGI(validator(app), buffer_size=100))
    assert server.body == b"".join(chunks)
    assert len(server.body_parts) >= 2
    assert server.complete


def test_generator_without_length_streams_each_chunk() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"

    server = request(WSGIToASGI(validator(app)))
    assert server.body_parts == [b"data: 1\n\n", b"data: 2\n\n"]
    assert server.sent[1]["more_body"] is True
    assert server.complete


def test_next_chunk_not_pulled_before_previous_send_completes() -> None:
    sends_completed = 0
    seen_at_pull: list[int] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(4):
            seen_at_pull.append(sends_completed)
            yield b"chunk%d" % i

    async def slow_send(message: Message) -> None:
        nonlocal sends_completed
        import asyncio

        for _ in range(20):  # give an eager bridge every chance to pull early
            await asyncio.sleep(0)
        if message["type"] == "http.response.body" and message.get("body"):
            sends_completed += 1

    server = run(WSGIToASGI(validator(app)), make_scope(), FakeServer(on_send=slow_send))
    # When chunk i is pulled, exactly the i previous chunks have been sent.
    assert seen_at_pull == [0, 1, 2, 3]
    assert server.body == b"chunk0chunk1chunk2chunk3"


def test_headers_wait_for_first_non_empty_chunk() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        raise RuntimeError("failed before any body")

    server = request(WSGIToASGI(app), raises=RuntimeError)
    assert server.status == 500


def test_exception_before_body_is_500_then_raised_for_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        raise ValueError("boom in the view")

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = request(WSGIToASGI(app), path="/broken", raw_path=b"/broken", raises=ValueError)
    assert server.status == 500
    assert server.complete
    assert str(server.raised) == "boom in the view"
    # One line naming the request; the traceback is the server's to log (once).
    records = [r for r in caplog.records if r.name == "asgishift.bridge"]
    assert len(records) == 1, caplog.text
    assert "/broken" in records[0].getMessage()
    assert "boom in the view" in records[0].getMessage()
    assert records[0].exc_info is None


def test_exception_after_body_started_cuts_response(caplog: pytest.LogCaptureFixture) -> None:
    closed = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"part"
            raise ValueError("midway")
        finally:
            closed.append(True)

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = request(WSGIToASGI(app), raises=ValueError)
    assert server.status == 200
    assert not server.complete
    assert "midway" in caplog.text
    assert closed == [True]


@pytest.mark.parametrize(
    ("misbehaviour", "needle"),
    [
        pytest.param("twice", "second time", id="start-response-twice"),
        pytest.param("str-chunk", "yielded str", id="non-bytes-chunk"),
        pytest.param("no-start", "before calling start_response", id="chunk-before-start"),
        pytest.param("never-start", "without calling start_response", id="never-start"),
        pytest.param("crlf", "CR, LF", id="crlf-header"),
        pytest.param("bad-status", "status", id="bad-status"),
        pytest.param("write-str", "write() takes bytes", id="write-non-bytes"),
        pytest.param("length-abc", "not a decimal number", id="content-length-not-a-number"),
        pytest.param("length-twice", "two different Content-Length", id="content-length-twice"),
    ],
)
def test_misbehaving_app_gets_500_and_log(
    misbehaviour: str, needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    iterable = Closing([b"x"])

    def app(environ: Environ, start_response: Any) -> Any:
        if misbehaviour == "twice":
            start_response("200 OK", [])
            start_response("200 OK", [])
        elif misbehaviour == "str-chunk":
            start_response("200 OK", [])
            iterable.chunks = ["text"]  # type: ignore[list-item]
        elif misbehaviour == "never-start":
            iterable.chunks = []
        elif misbehaviour == "crlf":
            start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")])
        elif misbehaviour == "bad-status":
            start_response("OK", [])
        elif misbehaviour == "write-str":
            start_response("200 OK", [])("text")
        elif misbehaviour == "length-abc":
            start_response("200 OK", [("Content-Length", "abc")])
        elif misbehaviour == "length-twice":
            start_response("200 OK", [("Content-Length", "1"), ("Content-Length", "3")])
        return iterable

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = request(WSGIToASGI(app), raises=InvalidResponse)
    assert server.status == 500
    assert b"Set-Cookie" not in b"".join(v for _, v in server.start["headers"])
    assert needle in caplog.text
    assert needle in str(server.raised)
    if misbehaviour not in {
        "twice",
        "crlf",
        "bad-status",
        "write-str",
        "length-abc",
        "length-twice",
    }:
        assert iterable.closed == 1


def test_exc_info_replaces_response_before_headers_sent() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("lookup failed")
        except KeyError:
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"sorry"]

    server = request(WSGIToASGI(validator(app)))
    assert server.status == 503
    assert server.body == b"sorry"


def test_exc_info_after_headers_sent_reraises(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = request(WSGIToASGI(app), raises=KeyError)
    assert server.status == 200
    assert server.body == b"first"
    assert not server.complete
    assert "late failure" in caplog.text


def test_write_callable_then_iterable() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"")
        return [b"returned"]

    server = request(WSGIToASGI(validator(app)))
    assert server.body == b"written returned"
    assert server.complete


def test_write_transmits_before_returning() -> None:
    server = FakeServer()
    seen_after_write: list[list[bytes]] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        write(b"abc")
        seen_after_write.append(list(server.body_parts))
        write(b"def")
        return []

    run(WSGIToASGI(validator(app)), make_scope(), server)
    # PEP 3333 "The write() Callable": the block is sent before write() returns.
    assert seen_after_write == [[b"abc"]]
    assert server.body == b"abcdef"
    assert server.complete


def test_write_completing_content_length_is_one_message() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        write(b"abcdef")
        return []

    server = request(WSGIToASGI(validator(app)))
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.body == b"abcdef"


def test_generator_with_content_length_is_not_held_back() -> None:
    # BUG-1 (notes/bridge_bugs.md): the first block must reach the client
    # while the generator blocks, even though the length is declared.
    gate = Gate()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream"), ("Content-Length", "18")])
        yield b"data: 1\n\n"
        gate.wait()  # released by the client once it has the first block
        yield b"data: 2\n\n"

    async def on_send(message: Message) -> None:
        if message.get("body") == b"data: 1\n\n":
            gate.released.set()

    server = run(WSGIToASGI(validator(app)), make_scope(), FakeServer(on_send=on_send))
    assert server.body_parts == [b"data: 1\n\n", b"data: 2\n\n"]
    assert server.complete


def test_single_block_completing_content_length_is_one_message() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        yield b"hello"

    server = request(WSGIToASGI(validator(app)))
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.body == b"hello"


@pytest.mark.parametrize(
    ("method", "status"),
    [
        pytest.param("HEAD", "200 OK", id="head"),
        pytest.param("GET", "204 No Content", id="204"),
        pytest.param("GET", "304 Not Modified", id="304"),
    ],
)
def test_no_body_responses_drain_and_close(method: str, status: str) -> None:
    iterable = Closing([b"should ", b"not be sent"])

    def app(environ: Environ, start_response: Any) -> Closing:
        # wsgiref.validate wants a Content-Type except on 204/304.
        headers = [("Content-Length", "17")]
        if status == "200 OK":
            headers.append(("Content-Type", "text/plain"))
        start_response(status, headers)
        return iterable

    server = request(WSGIToASGI(validator(app)), method=method)
    assert server.status == int(status[:3])
    assert server.body == b""
    if method == "GET":  # 204/304: no Content-Length (RFC 9110 8.6; BUG-2, uvicorn)
        assert b"content-length" not in server.headers
    assert server.complete
    assert iterable.pulled == 2
    assert iterable.closed == 1


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"small"], id="fast-path"),
        pytest.param([b"x" * 70000, b"y"], id="streamed"),
        pytest.param([], id="empty"),
    ],
)
def test_close_called_exactly_once(chunks: list[bytes]) -> None:
    iterable = Closing(chunks)

    def app(environ: Environ, start_response: Any) -> Closing:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iterable

    server = request(WSGIToASGI(validator(app)))
    assert server.body == b"".join(chunks)
    assert iterable.closed == 1


def test_close_called_once_when_iteration_raises() -> None:
    class Failing(Closing):
        def __iter__(self) -> Iterator[bytes]:
            raise RuntimeError("iteration failed")

    iterable = Failing([])

    def app(environ: Environ, start_response: Any) -> Closing:
        start_response("200 OK", [])
        return iterable

    server = request(WSGIToASGI(app), raises=RuntimeError)
    assert server.status == 500
    assert iterable.closed == 1


def test_failing_close_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class BadClose(Closing):
        def close(self) -> None:
            super().close()
            raise OSError("close failed")

    iterable = BadClose([b"body"])

    def app(environ: Environ, start_response: Any) -> Closing:
        start_response("200 OK", [])
        return iterable

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = request(WSGIToASGI(app))
    assert server.body == b"body"
    assert iterable.closed == 1
    assert "close failed" in caplog.text


def test_body_reaches_app_and_environ_is_valid() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [environ["PATH_INFO"].encode("latin-1"), b"|", data]

    server = request(
        WSGIToASGI(validator(app)),
        b"payload",
        method="POST",
        path="/p",
        raw_path=b"/p",
        headers=[(b"content-length", b"7"), (b"host", b"h")],
    )
    assert server.body == b"/p|payload"


def test_wsgi_errors_goes_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        print("something odd happened", file=environ["wsgi.errors"])
        environ["wsgi.errors"].writelines(["second line\n"])
        environ["wsgi.errors"].flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        request(WSGIToASGI(validator(app)))
    messages = [r.getMessage() for r in caplog.records if r.name == "asgishift.bridge"]
    assert messages == ["wsgi.errors: something odd happened", "wsgi.errors: second line"]


def test_bad_content_length_is_400_without_calling_app() -> None:
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        start_response("200 OK", [])
        return []

    server = request(WSGIToASGI(app), method="POST", headers=[(b"content-length", b"ten")])
    assert server.status == 400
    assert called == []


def test_disconnect_before_body_does_not_call_app() -> None:
    # The client left, or the server refused the body (granian says http.disconnect
    # for a malformed chunked body, and answered 500 when the app sent nothing): a
    # client still there gets 400; the servers drop it for one that has gone.
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        return []

    server = run(WSGIToASGI(app), make_scope(), FakeServer([{"type": "http.disconnect"}]))
    assert server.status == 400
    assert server.headers[b"connection"] == b"close"
    assert server.complete
    assert called == []


def test_unknown_scope_type_raises() -> None:
    with pytest.raises(ValueError, match="cannot serve ASGI scope type 'webtransport'"):
        run(WSGIToASGI(hello), {"type": "webtransport"}, FakeServer())


def test_flask_app_through_bridge() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("bridge_test")

    @app.post("/echo/<name>")
    def echo(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "data": flask.request.get_data(as_text=True),
            "q": flask.request.args["q"],
        }

    server = run(
        WSGIToASGI(app),
        make_scope(
            method="POST",
            path="/echo/zoë",
            raw_path=b"/echo/zo%C3%AB",
            query_string=b"q=%E2%82%AC",
            headers=[(b"host", b"h"), (b"content-length", b"4"), (b"content-type", b"text/plain")],
        ),
        FakeServer(body_messages(b"da", b"ta")),
    )
    assert server.status == 200
    # Flask's one-item body completes its Content-Length: one crossing back.
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    import json

    assert json.loads(server.body) == {"name": "zoë", "data": "data", "q": "€"}


def test_head_error_response_has_no_body() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        raise ValueError("boom")

    server = request(WSGIToASGI(app), method="HEAD", raises=ValueError)
    assert server.status == 500
    assert server.body == b""
    assert server.headers[b"content-length"] != b"0"  # the length a GET would get


def test_exc_info_replacing_204_restores_the_body() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        try:
            raise KeyError("late")
        except KeyError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error page"]

    server = request(WSGIToASGI(validator(app)))
    assert server.status == 500
    assert server.body == b"error page"


def test_non_asyncio_loop_gets_a_clear_error() -> None:
    server = FakeServer()
    # Drive the coroutine by hand, as a non-asyncio framework would: no
    # asyncio loop is running.
    coroutine = WSGIToASGI(hello)(make_scope(), server.receive, server.send)
    with pytest.raises(RuntimeError, match="needs an asyncio event loop"):
        coroutine.send(None)
    coroutine.close()


class DjangoLike:
    """Stands in for Django's ``HttpResponse`` (``streaming = False``) and
    ``StreamingHttpResponse`` (``streaming = True``): iterable, no ``__len__``."""

    def __init__(self, chunks: list[bytes], streaming: bool) -> None:
        self.chunks = chunks
        self.streaming = streaming

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("streaming", "messages"),
    [
        pytest.param(False, 2, id="httpresponse-one-message"),
        pytest.param(True, 4, id="streaminghttpresponse-per-chunk"),
    ],
)
def test_django_style_responses(streaming: bool, messages: int) -> None:
    def app(environ: Environ, start_response: Any) -> DjangoLike:
        start_response("200 OK", [("Content-Type", "text/html")])
        return DjangoLike([b"<p>", b"hi</p>"], streaming)

    # No validator here: its iterator wrapper hides the ``streaming`` attribute
    # this test is about.
    server = request(WSGIToASGI(app))
    assert server.body == b"<p>hi</p>"
    assert len(server.sent) == messages
    assert server.complete


def test_head_to_an_endless_stream_gets_its_headers_and_stops_when_the_client_leaves() -> None:
    # A HEAD request (a monitor, a link checker) to a server-sent events view:
    # nothing of the stream may be sent, but its headers must be, at once; the
    # bridge used to wait for the stream's end and held its worker for ever.
    closed = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        try:
            while True:
                yield b"data: tick\n\n"
        finally:
            closed.set()

    server = run(WSGIToASGI(app), make_scope(method="HEAD"), FakeServer(disconnect_after_sends=1))
    assert closed.is_set()
    assert server.status == 200
    assert server.body == b""


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_head_of_a_finite_stream_matches_get(method: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"a"
        yield b"b"

    server = request(WSGIToASGI(validator(app)), method=method)
    assert server.status == 200
    assert server.complete
    assert server.body == (b"ab" if method == "GET" else b"")
    assert server.sent[0]["type"] == "http.response.start"


def test_head_of_a_whole_body_is_sent_in_one_step() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"a", b"b"]

    server = request(WSGIToASGI(app), method="HEAD")
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.headers[b"content-length"] == b"2"


def _endless_download(closed: threading.Event) -> Any:
    """Return a WSGI app that streams 1 KiB blocks for ever and sets ``closed`` at its close."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.set()

    return app


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-request-timeout", "request-timeout"])
def test_a_send_the_server_never_ends_is_cut_when_the_client_leaves(
    caplog: pytest.LogCaptureFixture, timeout: float | None
) -> None:
    # hypercorn 0.18 over HTTP/2: a send() parked on a full stream buffer never
    # returns once the client closes the connection, though receive() reports
    # http.disconnect. The bridge must stop waiting for that send(), or the
    # worker thread (and the iterable's close()) would wait for ever.
    closed = threading.Event()
    app = _endless_download(closed)

    async def park_after_two(message: Message) -> None:
        if len(server.sent) >= 2:  # the start and one block went through
            server.disconnect()
            await asyncio.Event().wait()

    server = FakeServer(on_send=park_after_two)
    bridge = WSGIToASGI(app, request_timeout=timeout)
    with caplog.at_level(logging.DEBUG, logger="asgishift"):
        run(bridge, make_scope(), server)
    # run() returned: the bridge's answer came before the harness's deadline.
    assert closed.is_set()
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert bridge.pool.in_flight == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_cancellation_of_the_servers_own_is_not_taken_for_the_client_leaving() -> None:
    # The server cancels the request's task (a shutdown) while the client leaves and
    # a send() is parked: the bridge's own cut must not swallow the server's cancel.
    closed = threading.Event()
    app = _endless_download(closed)

    async def cancel_and_park(message: Message) -> None:
        if len(server.sent) >= 2:
            server.disconnect()
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # the server's own cancellation
            await asyncio.Event().wait()

    server = FakeServer(on_send=cancel_and_park)
    run(WSGIToASGI(app), make_scope(), server, raises=asyncio.CancelledError)
    assert closed.wait(DEADLINE)  # the worker was still released
