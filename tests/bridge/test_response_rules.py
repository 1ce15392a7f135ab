"""Table-driven tests of the pure response core: rules, error builders, WSGIResponse, states.

No server, no loop, no threads: each case feeds values in and checks the
values (ASGI messages, PEP 3333 tuples) that come out.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from typing import Any

import pytest

from asgishift.bridge._error_response import error_messages, error_page
from asgishift.bridge._errors import InvalidResponse
from asgishift.bridge._response import (
    body_allowed,
    content_length,
    decode_headers,
    encode_headers,
    encode_start,
    must_close,
    reason_phrase,
    status_line,
    without_content_length,
)
from asgishift.bridge._state import (
    ABORTED,
    CLOSED,
    OPEN,
    STARTED,
    TRANSITIONS,
    Event,
    Phase,
    advance,
)
from asgishift.bridge._wsgi_response import (
    NOT_STARTED,
    SENT,
    WSGIResponse,
    hold_back,
    holds_whole_body,
)


@pytest.mark.parametrize(
    ("status", "method", "allowed"),
    [
        (200, "GET", True),
        (200, "HEAD", False),
        (500, "HEAD", False),
        (204, "GET", False),
        (304, "GET", False),
        (101, "GET", False),
        (199, "POST", False),
        (205, "GET", True),
        (404, "POST", True),
    ],
)
def test_body_allowed(status: int, method: str, allowed: bool) -> None:
    assert body_allowed(status, method) is allowed


@pytest.mark.parametrize(
    ("status", "line", "reason"),
    [
        (200, "200 OK", "OK"),
        (404, "404 Not Found", "Not Found"),
        (413, "413 Content Too Large", "Content Too Large"),
        (422, "422 Unprocessable Content", "Unprocessable Content"),
        (599, "599", ""),
    ],
)
def test_status_line_and_reason(status: int, line: str, reason: str) -> None:
    assert status_line(status) == line
    assert reason_phrase(status) == reason


@pytest.mark.parametrize("status", [99, 1000, "200", 200.0])
def test_status_line_refuses(status: Any) -> None:
    with pytest.raises(InvalidResponse):
        status_line(status)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([["X-Colour", "Blue"]], [(b"x-colour", b"Blue")], id="list-pair"),
        pytest.param((("X-A", "1"),), [(b"x-a", b"1")], id="tuple-of-tuples"),
        pytest.param([("X-A", "1"), ["X-B", "2"]], [(b"x-a", b"1"), (b"x-b", b"2")], id="mixed"),
        pytest.param([], [], id="empty"),
    ],
)
def test_encode_headers_takes_any_two_item_sequence(
    headers: Any, expected: list[tuple[bytes, bytes]]
) -> None:
    assert encode_headers(headers) == expected


def test_encode_headers_repeated_pairs_come_back_equal_in_a_fresh_list() -> None:
    headers = [("Content-Type", "text/plain"), ("Content-Length", "2")]
    first = encode_headers(headers)
    first.append((b"connection", b"close"))  # the bridge appends to what it gets
    second = encode_headers(list(headers))
    assert second == [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    assert second is not first


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
    ],
)
def test_encode_headers_drops_hop_by_hop_headers(name: str) -> None:
    # PEP 3333 "Other HTTP Features": the connection is the server's; gunicorn drops them.
    headers = [("Content-Length", "2"), (name, "chunked"), ("X-A", "1")]
    for _ in range(2):  # the second time from the caches
        assert encode_headers(headers) == [(b"content-length", b"2"), (b"x-a", b"1")]
        code, encoded, _, declared = encode_start("200 OK", headers, "GET")
        assert (code, encoded, declared) == (200, [(b"content-length", b"2"), (b"x-a", b"1")], 2)


@pytest.mark.parametrize("status", ["100 Continue", "101 Switching Protocols", "103 Early Hints"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_informational_status_is_not_a_final_response(status: str, method: str) -> None:
    # Passed on as the response, uvicorn and daphne wrote the 1xx head and then a chunked
    # body's end, which the client read as a malformed status line ("0"); hypercorn
    # dropped the connection (RFC 9110 15.2: a 1xx is interim, a final status follows).
    headers = [("Link", "</a.css>; rel=preload")]
    for _ in range(2):  # the second time with the status line in the caches
        with pytest.raises(InvalidResponse, match="informational"):
            encode_start(status, headers, method)


def test_encode_headers_checks_a_hop_by_hop_value_before_dropping_it() -> None:
    with pytest.raises(InvalidResponse):
        encode_headers([("Connection", "close\r\nX-Injected: 1")])


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("X-A", ["1"])], id="unhashable-value"),
        pytest.param([("X-A", "1\r\nSet-Cookie: a=b")], id="crlf-after-a-good-pair"),
        pytest.param([("X-A", "1"), ("X A", "1")], id="bad-name-after-a-good-pair"),
    ],
)
def test_encode_headers_checks_pairs_it_has_not_seen(headers: Any) -> None:
    encode_headers([("X-A", "1")])  # a good pair, now known
    with pytest.raises(InvalidResponse):
        encode_headers(headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"content-type", b"text/plain")], [("content-type", "text/plain")]),
        ([(b"x-a", "é".encode("latin-1"))], [("x-a", "é")]),
        ([], []),
        # PEP 3333 forbids an application to send hop-by-hop headers: left out.
        ([(b"connection", b"close"), (b"x-a", b"1")], [("x-a", "1")]),
        ([(b"Transfer-Encoding", b"chunked"), (b"Keep-Alive", b"timeout=5")], []),
        ([(b"upgrade", b"h2c"), (b"te", b"trailers"), (b"trailers", b"x")], []),
    ],
)
def test_decode_headers(
    headers: list[tuple[bytes, bytes]], expected: list[tuple[str, str]]
) -> None:
    assert decode_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-a", b"1\r\nx-b: 2")],
        [(b"x a", b"1")],
        [(b"x-a",)],
        [("x-a", 1)],
    ],
)
def test_decode_headers_refuses(headers: Any) -> None:
    with pytest.raises(InvalidResponse):
        decode_headers(headers)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(b"x-a", b"1\r\nx-b: 2")], id="crlf-after-a-good-pair"),
        pytest.param([(b"x-a", b"1"), (b"x a", b"1")], id="bad-name-after-a-good-pair"),
    ],
)
def test_decode_headers_checks_pairs_it_has_not_seen(headers: Any) -> None:
    decode_headers([(b"x-a", b"1")])  # a good pair, now known
    with pytest.raises(InvalidResponse):
        decode_headers(headers)


def test_decode_headers_takes_unhashable_bytes_like_values() -> None:
    decode_headers([(b"x-a", b"1")])  # the same pair as bytes, now known
    assert decode_headers([(b"x-a", bytearray(b"1"))]) == [("x-a", "1")]
    assert decode_headers([[b"x-a", b"2"]]) == [("x-a", "2")]


def test_decode_headers_gives_the_same_pairs_the_second_time() -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"13")]
    first = decode_headers(headers)
    assert decode_headers(list(headers)) == first
    assert first == [("content-type", "text/plain; charset=utf-8"), ("content-length", "13")]


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        ([(b"content-length", b"12")], 12),
        ([(b"content-type", b"x"), (b"content-length", b"0")], 0),
        ([(b"content-length", b"7"), (b"content-length", b"7")], 7),
        ([], None),
    ],
)
def test_content_length(headers: list[tuple[bytes, bytes]], length: int | None) -> None:
    assert content_length(headers) == length


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(b"content-length", b"x1")], "not a decimal number"),
        ([(b"content-length", b"-1")], "not a decimal number"),
        ([(b"content-length", b"")], "not a decimal number"),
        ([(b"content-length", b"5"), (b"content-length", b"3")], "two different"),
    ],
)
def test_content_length_refuses_what_nobody_can_frame(
    headers: list[tuple[bytes, bytes]], error: str
) -> None:
    # RFC 9110 section 8.6: the response's end would be ambiguous.
    with pytest.raises(InvalidResponse, match=error):
        content_length(headers)


def test_without_content_length_keeps_the_rest_in_order() -> None:
    headers = [(b"a", b"1"), (b"content-length", b"3"), (b"b", b"2")]
    assert without_content_length(headers) == [(b"a", b"1"), (b"b", b"2")]


@pytest.mark.parametrize(
    ("remaining", "limit", "close"),
    [
        (None, 1 << 20, True),  # chunked: unknown rest
        (0, 0, False),
        (10, 10, False),
        (11, 10, True),
        (5 << 20, 1 << 20, True),
    ],
)
def test_must_close(remaining: int | None, limit: int, close: bool) -> None:
    assert must_close(remaining, limit) is close


@pytest.mark.parametrize(
    ("status", "method", "extra", "text", "has_body"),
    [
        (503, "GET", [(b"retry-after", b"1")], b"503 Service Unavailable\n", True),
        (413, "POST", [], b"413 Content Too Large\n", True),
        (504, "GET", [], b"504 Gateway Timeout\n", True),
        (500, "HEAD", [], b"500 Internal Server Error\n", False),
        (400, "GET", [(b"connection", b"close")], b"400 Bad Request\n", True),
    ],
)
def test_error_messages(
    status: int, method: str, extra: list[tuple[bytes, bytes]], text: bytes, has_body: bool
) -> None:
    start, end = error_messages(status, method, extra)
    assert start["type"] == "http.response.start"
    assert start["status"] == status
    assert start["headers"] == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),  # HEAD: what a GET would get
        *extra,
    ]
    if has_body:
        assert end == {"type": "http.response.body", "body": text}
    else:
        assert end == {"type": "http.response.body"}


def test_error_messages_are_fresh_each_time() -> None:
    first = error_messages(503, "GET")
    first[0]["headers"].append((b"x", b"y"))
    assert (b"x", b"y") not in error_messages(503, "GET")[0]["headers"]


@pytest.mark.parametrize(
    ("status", "method", "line", "body"),
    [
        (500, "GET", "500 Internal Server Error", b"500 Internal Server Error\n"),
        (504, "HEAD", "504 Gateway Timeout", b""),
    ],
)
def test_error_page_for_wsgi(status: int, method: str, line: str, body: bytes) -> None:
    got_line, headers, got_body = error_page(status, method)
    assert got_line == line
    assert got_body == body
    assert ("Content-Length", str(len(f"{line}\n"))) in headers


@pytest.mark.parametrize(
    ("total", "buffer_size", "in_memory", "declared", "held"),
    [
        (13, 65536, False, 13, True),  # Flask: one block completing Content-Length
        (5, 65536, False, 13, False),  # part of a declared body: may still be produced
        (5, 65536, True, None, True),  # a list
        (5, 65536, False, None, False),  # a generator: stream
        (70000, 65536, True, None, False),  # over the buffer
        (0, 0, True, None, True),
    ],
)
def test_hold_back(
    total: int, buffer_size: int, in_memory: bool, declared: int | None, held: bool
) -> None:
    assert hold_back(total, buffer_size, in_memory, declared) is held


def _types(messages: list[dict[str, Any]] | None) -> list[str] | None:
    if messages is None:
        return None
    return [m["type"].rpartition(".")[2] + ("+" if m.get("more_body") else "") for m in messages]


# Each case: method, in_memory, status, headers, blocks -> what body() returns per
# block, then what finish() returns, as message kinds ("start", "body", "body+" =
# more_body), and the body bytes that come out.
RESPONSE_CASES = [
    pytest.param(
        "GET", False, "200 OK", [("Content-Length", "5")], [b"hello"],
        [None], ["start", "body"], b"hello", id="flask-one-block",
    ),
    pytest.param(
        "GET", False, "200 OK", [], [b"a", b"b"],
        [["start", "body+"], ["body+"]], ["body"], b"ab", id="generator-streams",
    ),
    pytest.param(
        "GET", True, "200 OK", [], [b"a", b"b"],
        [None, None], ["start", "body"], b"ab", id="list-held",
    ),
    pytest.param(
        "HEAD", True, "200 OK", [("Content-Length", "5")], [b"hello"],
        [None], ["start", "body"], b"", id="head-no-body-keeps-length",
    ),
    pytest.param(
        "GET", True, "204 No Content", [("Content-Length", "5")], [b"hello"],
        [None], ["start", "body"], b"", id="204-no-body",
    ),
    pytest.param(
        "GET", False, "200 OK", [("Content-Length", "3")], [b"abcdef", b"gh"],
        [None, None], ["start", "body"], b"abc", id="cut-to-content-length",
    ),
    pytest.param(
        "GET", False, "200 OK", [("Content-Length", "4")], [b"ab", b"cdef"],
        [["start", "body+"], ["body+"]], ["body"], b"abcd", id="cut-while-streaming",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "in_memory", "status", "headers", "blocks", "per_block", "end", "body"),
    RESPONSE_CASES,
)
def test_wsgi_response(
    method: str,
    in_memory: bool,
    status: str,
    headers: list[tuple[str, str]],
    blocks: list[bytes],
    per_block: list[list[str] | None],
    end: list[str],
    body: bytes,
) -> None:
    response = WSGIResponse(method, 65536)
    response.in_memory = in_memory
    response.start(status, headers, False)
    sent: list[dict[str, Any]] = []
    for block, expected in zip(blocks, per_block, strict=True):
        messages = response.body(block)
        assert _types(messages) == expected
        sent += messages or []
    final = response.finish()
    assert _types(final) == end
    sent += final
    assert b"".join(m.get("body", b"") for m in sent) == body
    assert response.phase is SENT
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    if status.startswith("204"):
        assert b"content-length" not in dict(starts[0]["headers"])
    total = sum(len(b) for b in blocks)
    declared = response.declared
    if declared is not None and method != "HEAD" and not status.startswith("204"):
        assert response.dropped == max(total - declared, 0)


def test_wsgi_response_replacing_through_exc_info_drops_the_held_body() -> None:
    response = WSGIResponse("GET", 65536)
    response.in_memory = True
    response.start("204 No Content", [], False)
    assert response.body(b"ignored") is None
    response.start("500 Internal Server Error", [("Content-Length", "4")], True)
    assert response.body(b"oops") is None
    start, body = response.finish()
    assert start["status"] == 500
    assert body["body"] == b"oops"


@pytest.mark.parametrize(
    ("action", "needle"),
    [
        ("twice", "second time"),
        ("body-first", "before calling start_response"),
        ("finish-first", "without calling start_response"),
    ],
)
def test_wsgi_response_refuses(action: str, needle: str) -> None:
    response = WSGIResponse("GET", 65536)
    if action == "twice":
        response.start("200 OK", [], False)
        call: Any = functools.partial(response.start, "200 OK", [], False)
    elif action == "body-first":
        call = functools.partial(response.body, b"x")
    else:
        call = response.finish
    with pytest.raises(InvalidResponse, match=needle):
        call()
    assert action == "twice" or response.phase is NOT_STARTED


@pytest.mark.parametrize(
    ("held", "has_body", "allowed"),
    [(False, True, True), (True, True, False), (False, False, False)],
)
def test_wsgi_response_pathsend(held: bool, has_body: bool, allowed: bool) -> None:
    response = WSGIResponse("GET" if has_body else "HEAD", 65536)
    response.in_memory = True
    response.start("200 OK", [], False)
    if held:
        response.body(b"x")
    messages = response.pathsend("/srv/file")
    if allowed:
        assert messages is not None
        assert messages[1] == {"type": "http.response.pathsend", "path": "/srv/file"}
    else:
        assert messages is None


@pytest.mark.parametrize(
    ("phase", "event", "after"),
    [
        (OPEN, Event.START, STARTED),
        (OPEN, Event.ABORT, ABORTED),
        (OPEN, Event.CLOSE, CLOSED),
        (STARTED, Event.ABORT, ABORTED),
        (ABORTED, Event.START, ABORTED),
        (ABORTED, Event.CLOSE, CLOSED),
        (CLOSED, Event.ABORT, CLOSED),
        (CLOSED, Event.START, CLOSED),
    ],
)
def test_phase_transitions(phase: Phase, event: Event, after: Phase) -> None:
    assert advance(phase, event) is after


def test_transition_table_is_total_and_closed_is_final() -> None:
    for phase in Phase:
        assert set(TRANSITIONS[phase]) == set(Event)
        assert TRANSITIONS[phase][Event.CLOSE] is CLOSED
    assert set(TRANSITIONS[CLOSED].values()) == {CLOSED}


class _Streaming:
    """A Django-like response: iterable, with a ``streaming`` attribute."""

    def __init__(self, streaming: bool) -> None:
        self.streaming = streaming

    def __iter__(self) -> Iterator[bytes]:
        yield b"x"


def _generator() -> Iterator[bytes]:
    yield b"x"


@pytest.mark.parametrize(
    ("iterable", "whole"),
    [
        pytest.param([b"a", b"b"], True, id="list"),
        pytest.param((b"a",), True, id="tuple"),
        pytest.param(_Streaming(streaming=False), True, id="django-response"),
        pytest.param(_Streaming(streaming=True), False, id="django-streaming-response"),
        pytest.param(_generator(), False, id="generator"),
        pytest.param(iter([b"a"]), False, id="list-iterator"),
        pytest.param(io.BytesIO(b"a"), False, id="file"),
    ],
)
def test_holds_whole_body(iterable: object, whole: bool) -> None:
    # Twice: the second answer comes from the per-type cache.
    assert holds_whole_body(iterable) is whole
    assert holds_whole_body(iterable) is whole
