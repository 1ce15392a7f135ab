"""``wsgi.input`` semantics: streaming reads, EOF, disconnects and size limits."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any
from wsgiref.validate import validator

import pytest
from bridge_harness import FakeServer, body_messages, make_scope, run

from asgishift.bridge import ClientDisconnected, WSGIToASGI
from asgishift.bridge._errors import RequestBodyTooLarge
from asgishift.bridge._input import StreamInput

Environ = dict[str, Any]

BODY = b"first line\nsecond\n\nfourth line is longer than the others\nno newline at end"

SPLITS = [
    pytest.param([BODY], id="one-message"),
    pytest.param([BODY[:5], BODY[5:6], BODY[6:30], b"", BODY[30:]], id="odd-pieces"),
    pytest.param([bytes([b]) for b in BODY], id="byte-by-byte"),
]

# Each operation: (method name, args); run against StreamInput and io.BytesIO.
OPERATIONS = [
    pytest.param([("read", (4,)), ("read", (7,)), ("read", ())], id="read-n-then-all"),
    pytest.param([("read", (None,)), ("read", (5,))], id="read-none-then-eof"),
    pytest.param([("read", (-1,))], id="read-negative"),
    pytest.param([("read", (0,)), ("read", (1000,)), ("read", (1,))], id="read-zero-and-past-eof"),
    pytest.param([("readline", ())] * 7, id="readline-until-eof"),
    pytest.param(
        [("readline", (3,)), ("readline", (30,)), ("readline", (-1,))], id="readline-size"
    ),
    pytest.param([("readline", (0,)), ("readline", (None,))], id="readline-zero-none"),
    pytest.param([("readlines", ())], id="readlines"),
    pytest.param([("readlines", (15,)), ("read", ())], id="readlines-hint"),
    pytest.param([("read", (3,)), ("iter", ())], id="iterate-lines"),
]


def apply(stream: Any, operations: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    results: list[Any] = []
    for name, args in operations:
        if name == "iter":
            results.append(list(stream))
        else:
            results.append(getattr(stream, name)(*args))
    return results


def fetcher(pieces: list[bytes]) -> Callable[[], tuple[bytes, bool]]:
    queue = list(pieces)

    def fetch() -> tuple[bytes, bool]:
        chunk = queue.pop(0)
        return chunk, bool(queue)

    return fetch


@pytest.mark.parametrize("pieces", SPLITS)
@pytest.mark.parametrize("operations", OPERATIONS)
def test_stream_input_behaves_like_a_file(
    pieces: list[bytes], operations: list[tuple[str, tuple[Any, ...]]]
) -> None:
    stream = StreamInput(pieces[0], fetcher(pieces[1:] or [b""]))
    assert apply(stream, operations) == apply(io.BytesIO(BODY), operations)


@pytest.mark.parametrize("pieces", SPLITS)
@pytest.mark.parametrize("operations", OPERATIONS)
def test_input_through_bridge_behaves_like_a_file(
    pieces: list[bytes], operations: list[tuple[str, tuple[Any, ...]]]
) -> None:
    seen: list[Any] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(apply(environ["wsgi.input"], operations))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    scope = make_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])
    server = run(WSGIToASGI(app), scope, FakeServer(body_messages(*pieces)))
    assert server.status == 200
    assert seen == [apply(io.BytesIO(BODY), operations)]


def test_stream_input_pulls_only_what_is_needed() -> None:
    pulls: list[bytes] = []
    pieces = [b"aaaa", b"bbbb", b"cccc"]

    def fetch() -> tuple[bytes, bool]:
        chunk = pieces.pop(0)
        pulls.append(chunk)
        return chunk, bool(pieces)

    stream = StreamInput(b"0000", fetch)
    assert stream.read(4) == b"0000"
    assert pulls == []
    assert stream.read(2) == b"aa"
    assert pulls == [b"aaaa"]
    assert stream.read(6) == b"aabbbb"
    assert pulls == [b"aaaa", b"bbbb"]


def test_large_streamed_body_reaches_app_intact() -> None:
    pieces = [bytes([i % 251]) * 9973 for i in range(200)]
    digest: list[int] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        total = 0
        stream = environ["wsgi.input"]
        while chunk := stream.read(65536):
            total += len(chunk)
            digest.append(hash(chunk) & 0)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(total).encode()]

    scope = make_scope(method="POST", headers=[])
    server = run(WSGIToASGI(validator(app)), scope, FakeServer(body_messages(*pieces)))
    assert server.body == str(sum(map(len, pieces))).encode()


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s: s.read(), id="read"),
        pytest.param(lambda s: s.read(10**6), id="read-n"),
        pytest.param(lambda s: s.readline(), id="readline"),
        pytest.param(lambda s: s.readlines(), id="readlines"),
        pytest.param(lambda s: list(s), id="iterate"),
    ],
)
def test_disconnect_mid_upload_raises_client_disconnected(
    operation: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            operation(environ["wsgi.input"])
        except OSError as exc:
            raised.append(exc)
            raise
        start_response("200 OK", [])
        return [b"truncated upload accepted"]

    messages = [{"type": "http.request", "body": b"partial", "more_body": True}]
    messages.append({"type": "http.disconnect"})
    # Larger than buffer_size, so the body streams into the running app.
    scope = make_scope(method="POST", headers=[(b"content-length", b"100000")])
    with caplog.at_level(logging.DEBUG, logger="asgishift.bridge"):
        server = run(WSGIToASGI(app), scope, FakeServer(messages))
    assert len(raised) == 1
    assert isinstance(raised[0], ClientDisconnected)
    assert isinstance(raised[0], OSError)
    assert b"truncated upload accepted" not in server.body
    assert "client disconnected" in caplog.text


def test_content_length_over_limit_is_413_without_calling_app() -> None:
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        return []

    scope = make_scope(method="POST", headers=[(b"content-length", b"11")])
    server = run(WSGIToASGI(app, max_body_size=10), scope, FakeServer(body_messages(b"x" * 11)))
    assert server.status == 413
    assert called == []


def test_single_message_body_over_limit_is_413() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return []

    scope = make_scope(method="POST", headers=[])
    server = run(WSGIToASGI(app, max_body_size=10), scope, FakeServer(body_messages(b"x" * 11)))
    assert server.status == 413


@pytest.mark.parametrize(
    "app_swallows", [pytest.param(False, id="propagates"), pytest.param(True, id="swallowed")]
)
def test_chunked_body_growing_past_limit_is_413(app_swallows: bool) -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except RequestBodyTooLarge as exc:
            raised.append(exc)
            if not app_swallows:
                raise
        start_response("200 OK", [])
        return [b"app answer"]

    scope = make_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])
    pieces = [b"x" * 6, b"y" * 6, b"z" * 6]
    server = run(WSGIToASGI(app, max_body_size=10), scope, FakeServer(body_messages(*pieces)))
    assert server.status == 413
    assert len(raised) == 1
    assert isinstance(raised[0], OSError)


def test_chunked_body_within_limit_is_accepted() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [data]

    scope = make_scope(method="POST", headers=[])
    pieces = [b"x" * 5, b"y" * 5]
    server = run(WSGIToASGI(app, max_body_size=10), scope, FakeServer(body_messages(*pieces)))
    assert server.status == 200
    assert server.body == b"xxxxxyyyyy"


def test_whole_body_without_content_length_gets_one() -> None:
    seen: list[str | None] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(environ.get("CONTENT_LENGTH"))
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [data]

    scope = make_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])
    server = run(WSGIToASGI(validator(app)), scope, FakeServer(body_messages(b"whole body")))
    assert seen == ["10"]
    assert server.body == b"whole body"


def test_streamed_body_without_content_length_gets_none() -> None:
    seen: list[str | None] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(environ.get("CONTENT_LENGTH"))
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [data]

    scope = make_scope(method="POST", headers=[])
    server = run(WSGIToASGI(app), scope, FakeServer(body_messages(b"a", b"b")))
    assert seen == [None]
    assert server.body == b"ab"


def test_first_message_alone_over_limit_is_413_without_calling_app() -> None:
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        start_response("200 OK", [])
        return []

    scope = make_scope(method="POST", headers=[])
    pieces = [b"x" * 11, b"y"]
    server = run(WSGIToASGI(app, max_body_size=10), scope, FakeServer(body_messages(*pieces)))
    assert server.status == 413
    assert called == []


def test_small_split_body_with_length_is_collected_before_dispatch() -> None:
    seen: list[tuple[str, bytes]] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        kind = type(stream.input).__name__  # under validator's InputWrapper
        seen.append((kind, stream.read(int(environ["CONTENT_LENGTH"]))))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    # How hypercorn delivers a small POST: the data, then an empty final message.
    messages = body_messages(b"name=", b"value", b"")
    scope = make_scope(method="POST", headers=[(b"content-length", b"10")])
    server = run(WSGIToASGI(validator(app)), scope, FakeServer(messages))
    assert server.status == 200
    assert seen == [("BytesIO", b"name=value")]


def test_large_split_body_with_length_still_streams() -> None:
    seen: list[tuple[str, int]] = []
    pieces = [b"x" * 40, b"y" * 40, b"z" * 40]

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen.append((type(stream.input).__name__, len(stream.read(120))))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    scope = make_scope(method="POST", headers=[(b"content-length", b"120")])
    bridge = WSGIToASGI(validator(app), buffer_size=100)
    server = run(bridge, scope, FakeServer(body_messages(*pieces)))
    assert server.status == 200
    assert seen == [("StreamInput", 120)]


def test_disconnect_while_collecting_small_body_calls_nothing() -> None:
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        return []

    messages = [{"type": "http.request", "body": b"part", "more_body": True}]
    messages.append({"type": "http.disconnect"})
    scope = make_scope(method="POST", headers=[(b"content-length", b"10")])
    server = run(WSGIToASGI(app), scope, FakeServer(messages))
    assert server.sent == []
    assert called == []
