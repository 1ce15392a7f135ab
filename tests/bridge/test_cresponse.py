"""The C build of a response start (``_cresponse.c``) against its Python definition.

``_response.python_encode_start`` checks a ``start_response`` call and encodes it;
the C extension answers only from the caches that function fills once a status
line or header pair has passed its checks, and hands every other call back to it.
These tests hold the two to the same result (or the same error) on a table of
calls that reaches every hand-back and on generated ones, check that a response
seen before does not reach Python at all, and that no path leaks memory.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bridge_harness import counted_fallbacks, memory_growth

from asgishift.bridge import _response
from asgishift.bridge._errors import InvalidResponse

try:
    from asgishift.bridge import _cresponse
except ImportError:  # built where a C compiler was found at install time
    _cresponse = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(_cresponse is None, reason="the C extension is not built here")

HTML = ("Content-Type", "text/html; charset=utf-8")


def outcome(build: Any, status: Any, headers: Any, method: Any) -> Any:
    """Return what ``build`` gives, or the error's type and message."""
    try:
        return build(status, headers, method)
    except Exception as exc:
        return type(exc), str(exc)


@pytest.fixture
def fallbacks() -> Iterator[list[Any]]:
    """Count the calls the C build hands to the Python definition, for one test."""
    with counted_fallbacks(
        lambda encode: _cresponse.configure(encode, _response._STATUS_CACHE, _response._PAIR_CACHE),
        _response.python_encode_start,
    ) as calls:
        yield calls


class Text(str):
    """A str subclass: never answered from a cache."""


# (id, status, headers, method, whether the C build answers without Python once
# the Python definition has seen the same call)
CASES: list[tuple[str, Any, Any, Any, bool]] = [
    ("flask", "200 OK", [HTML, ("Content-Length", "13")], "GET", True),
    ("no headers", "200 OK", [], "GET", True),
    ("tuple of headers", "201 Created", (HTML,), "POST", True),
    ("no content-length", "404 NOT FOUND", [HTML], "GET", True),
    ("zero content-length", "200 OK", [("Content-Length", "0")], "GET", True),
    ("large content-length", "200 OK", [("Content-Length", "123456789")], "GET", True),
    (
        "two content-lengths refused",
        "200 OK",
        [("Content-Length", "5"), ("Content-Length", "6")],
        "GET",
        False,
    ),
    (
        "the same content-length twice",
        "200 OK",
        [("Content-Length", "5"), ("Content-Length", "5")],
        "GET",
        False,
    ),
    (
        "non-numeric content-length refused",
        "200 OK",
        [("Content-Length", "x"), ("Content-Length", "7")],
        "GET",
        False,
    ),
    ("negative content-length refused", "200 OK", [("Content-Length", "-1")], "GET", False),
    ("status without reason", "200", [HTML], "GET", True),
    ("599", "599 Custom", [HTML], "GET", True),
    # Handed to the Python definition every time:
    ("HEAD", "200 OK", [("Content-Length", "13")], "HEAD", False),
    ("204", "204 No Content", [("Content-Length", "0")], "GET", False),
    ("304", "304 Not Modified", [HTML], "GET", False),
    ("1xx", "103 Early Hints", [("Link", "</a.css>; rel=preload")], "GET", False),
    ("list pair", "200 OK", [["X-Colour", "Blue"]], "GET", False),
    ("long value", "200 OK", [("ETag", "x" * 100)], "GET", False),
    ("str subclass status", Text("200 OK"), [HTML], "GET", False),
    ("str subclass value", "200 OK", [("X-A", Text("b"))], "GET", False),
    ("header generator", "200 OK", (h for h in [HTML]), "GET", False),
    ("dict of headers", "200 OK", dict([HTML]), "GET", False),
    ("unhashable pair", "200 OK", [("X-A", ["b"])], "GET", False),
    ("three-item header", "200 OK", [("X-A", "b", "c")], "GET", False),
    ("bad status", "2000 OK", [HTML], "GET", False),
    ("bytes status", b"200 OK", [HTML], "GET", False),
    ("bad name", "200 OK", [("X A", "b")], "GET", False),
    ("CRLF value", "200 OK", [("X-A", "b\r\nSet-Cookie: x")], "GET", False),
    ("not latin-1", "200 OK", [("X-A", "\u20ac")], "GET", False),
    ("bytes method", "200 OK", [HTML], b"GET", False),
]


@pytest.mark.parametrize(
    ("status", "headers", "method", "fast"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_c_build_matches_the_python_definition(
    status: Any, headers: Any, method: Any, fast: bool, fallbacks: list[Any]
) -> None:
    if not isinstance(headers, (list, tuple, dict)):
        headers = list(headers)  # a generator is spent by one call; keep the kind below
        expected = outcome(_response.python_encode_start, status, iter(headers), method)
        assert outcome(_cresponse.encode_start, status, iter(headers), method) == expected
        assert len(fallbacks) == 1
        return
    expected = outcome(_response.python_encode_start, status, headers, method)
    assert outcome(_cresponse.encode_start, status, headers, method) == expected
    assert len(fallbacks) == (0 if fast else 1)


def test_a_new_pair_is_checked_by_python_once_then_answered_in_c(fallbacks: list[Any]) -> None:
    headers = [("X-Request-Id", uuid.uuid4().hex)]
    first = _cresponse.encode_start("200 OK", headers, "GET")
    second = _cresponse.encode_start("200 OK", list(headers), "GET")
    assert first == second == (200, [(b"x-request-id", headers[0][1].encode())], True, None)
    assert len(fallbacks) == 1


def test_c_build_raises_the_python_definitions_errors() -> None:
    with pytest.raises(InvalidResponse, match="CR, LF or NUL"):
        _cresponse.encode_start("200 OK", [("X-A", "b\nc")], "GET")
    with pytest.raises(InvalidResponse, match="status must look like"):
        _cresponse.encode_start("20 OK", [], "GET")


def test_result_list_is_new_each_call() -> None:
    headers = [HTML]
    first = _cresponse.encode_start("200 OK", headers, "GET")
    second = _cresponse.encode_start("200 OK", headers, "GET")
    first[1].append((b"connection", b"close"))  # what the bridge does to close
    assert second[1] == [(b"content-type", b"text/html; charset=utf-8")]


def _generated_call(rng: random.Random) -> tuple[Any, Any, Any]:
    statuses = ["200 OK", "201 Created", "204 No Content", "304 Not Modified", "101 X", "500"]
    pairs: list[Any] = [
        HTML,
        ("Content-Length", "13"),
        ("Content-Length", "0"),
        ("Content-Length", "1x"),
        ("Set-Cookie", "a=" + "b" * 70),
        ["X-List", "v"],
        ("X Bad", "v"),
        ("X-CRLF", "a\nb"),
    ]
    headers = [rng.choice(pairs) for _ in range(rng.randrange(5))]
    return (
        rng.choice(statuses),
        headers if rng.random() < 0.8 else tuple(headers),
        rng.choice(["GET", "GET", "POST", "HEAD"]),
    )


def test_generated_calls_give_what_the_python_definition_gives() -> None:
    rng = random.Random(20261207)
    answered = 0
    for _ in range(3000):
        status, headers, method = _generated_call(rng)
        expected = outcome(_response.python_encode_start, status, headers, method)
        assert outcome(_cresponse.encode_start, status, headers, method) == expected
        answered += type(expected) is tuple and len(expected) == 4
    assert answered > 1000  # most generated calls are valid responses


def test_no_path_leaks_memory() -> None:
    calls = [case[1:4] for case in CASES if isinstance(case[2], (list, tuple))]
    encode = _cresponse.encode_start
    grown = memory_growth(lambda call: encode(*call), calls, 5000)
    # Even one leaked int per call (32 bytes) would be 5000 * 32 bytes.
    assert grown < 32 * 1024, grown
