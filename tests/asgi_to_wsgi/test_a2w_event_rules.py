"""Table-driven tests of ``asgishift.bridge._asgi_events``: the order and shape of an ASGI
app's response messages, and their translation into PEP 3333's status line and headers."""

from __future__ import annotations

from typing import Any

import pytest

from asgishift.bridge._asgi_events import (
    RULES,
    Phase,
    ProtocolViolation,
    advance,
    body_bytes,
    start_args,
    status_line,
)

START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"x"}
MORE = {"type": "http.response.body", "body": b"x", "more_body": True}
PATHSEND = {"type": "http.response.pathsend", "path": "/tmp/f"}
ZEROCOPY_MORE = {"type": "http.response.zerocopysend", "file": 3, "more_body": True}
ZEROCOPY = {"type": "http.response.zerocopysend", "file": 3}
TRAILERS = {"type": "http.response.trailers", "headers": []}

# (phase, message, next phase or the violated rule's key)
TRANSITIONS: list[tuple[Phase, dict[str, Any], Phase | str]] = [
    (Phase.START, START, Phase.BODY),
    (Phase.START, BODY, "start-first"),
    (Phase.START, MORE, "start-first"),
    (Phase.START, PATHSEND, "start-first"),
    (Phase.START, ZEROCOPY, "start-first"),
    (Phase.START, {"type": "http.disconnect"}, "unknown-type"),
    (Phase.START, {}, "unknown-type"),
    (Phase.BODY, MORE, Phase.BODY),
    (Phase.BODY, BODY, Phase.DONE),
    (Phase.BODY, {"type": "http.response.body"}, Phase.DONE),
    (Phase.BODY, PATHSEND, Phase.DONE),
    (Phase.BODY, ZEROCOPY_MORE, Phase.BODY),
    (Phase.BODY, ZEROCOPY, Phase.DONE),
    (Phase.BODY, START, "start-once"),
    (Phase.BODY, TRAILERS, "unknown-type"),
    (Phase.DONE, BODY, "after-done"),
    (Phase.DONE, START, "after-done"),
    (Phase.DONE, MORE, "after-done"),
]


@pytest.mark.parametrize(("phase", "message", "outcome"), TRANSITIONS)
def test_advance(phase: Phase, message: dict[str, Any], outcome: Phase | str) -> None:
    if isinstance(outcome, Phase):
        assert advance(phase, message) is outcome
    else:
        with pytest.raises(ProtocolViolation) as caught:
            advance(phase, message)
        assert caught.value.key == outcome
        assert caught.value.rule == RULES[outcome]
        assert "ASGI" in str(caught.value)


def test_every_rule_names_its_spec_section() -> None:
    for key, rule in RULES.items():
        assert "ASGI" in rule, key
        assert "'" in rule, key  # a quoted section name


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, "200 OK"),
        (404, "404 Not Found"),
        (599, "599"),
        (103, "103 Early Hints"),
        (413, "413 Content Too Large"),
    ],
)
def test_status_line(status: int, line: str) -> None:
    assert status_line(status) == line


@pytest.mark.parametrize("status", [99, 1000, "200", 200.0, True, None, [200]])
def test_bad_status(status: Any) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        status_line(status)
    assert caught.value.key == "status"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], []),
        ([(b"content-type", b"text/plain")], [("content-type", "text/plain")]),
        ([[b"x-a", b"1"], [b"x-a", b"2"]], [("x-a", "1"), ("x-a", "2")]),
        ([(bytearray(b"x-b"), b"caf\xe9")], [("x-b", "café")]),
        (((b"x-tuple", b"ok"),), [("x-tuple", "ok")]),
    ],
)
def test_start_args_headers(headers: Any, expected: list[tuple[str, str]]) -> None:
    assert start_args({**START, "headers": headers}) == ("200 OK", expected)


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "text/plain")],  # str, not bytes
        [(b"x-a", b"1\r\nSet-Cookie: evil=1")],  # response splitting
        [(b"x-a\n", b"1")],
        [(b"x-a", b"\x00")],
        [(b"", b"empty name")],
        [(b"bad name", b"1")],
        [(b"x-a",)],
        [(b"x-a", b"1", b"extra")],
        [b"not-a-pair"],
        None,
    ],
)
def test_bad_headers(headers: Any) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        start_args({**START, "headers": headers})
    assert caught.value.key == "headers"


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"abc", b"abc"), (bytearray(b"ab"), b"ab"), (memoryview(b"mv"), b"mv"), (b"", b"")],
)
def test_body_bytes(body: Any, expected: bytes) -> None:
    out = body_bytes({"type": "http.response.body", "body": body})
    assert out == expected
    assert type(out) is bytes


def test_missing_body_is_empty() -> None:
    assert body_bytes({"type": "http.response.body"}) == b""


@pytest.mark.parametrize("body", ["text", 1, None, [b"a"]])
def test_bad_body(body: Any) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        body_bytes({"type": "http.response.body", "body": body})
    assert caught.value.key == "body"
