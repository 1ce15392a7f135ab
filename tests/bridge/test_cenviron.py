"""The C build of the environ (``_cenviron.c``) against its Python definition.

``_environ.python_build_environ`` defines the environ; the C extension builds the
same dict for the common request and hands every other scope back to it. These
tests hold the two to the same result (the same items in the same order, or the
same error) on a table of scopes that reaches every hand-back, and on generated
ones; they check that the common request does not reach Python at all, and that no
path leaks memory (``test_accel.py`` checks that it is built and used).
"""

from __future__ import annotations

import os
import random
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from bridge_harness import counted_fallbacks, make_scope, memory_growth

from asgishift.bridge import _environ
from asgishift.bridge._errors import BadRequest

try:
    from asgishift.bridge import _cenviron
except ImportError:  # built where a C compiler was found at install time
    _cenviron = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_cenviron is None, reason="the C extension is not built here")

BASE = _environ.base_environ(errors=sys.stderr, file_wrapper=None)


def outcome(
    build: Callable[[Mapping[str, Any], dict[str, Any]], dict[str, Any]], scope: Any
) -> Any:
    """Return the environ's items in order, or the error's type and message."""
    try:
        environ = build(scope, BASE)
    except Exception as exc:
        return type(exc), str(exc)
    return list(environ.items())


@pytest.fixture
def fallbacks() -> Iterator[list[Any]]:
    """Count the scopes the C build hands to the Python definition, for one test."""
    with counted_fallbacks(
        lambda build: _cenviron.configure(build, _environ._environ_key, _environ._KEY_CACHE),
        _environ.python_build_environ,
    ) as calls:
        yield calls


# (id, scope, whether the C build finishes it without the Python definition)
CASES: list[tuple[str, Any, bool]] = [
    ("common", make_scope(), True),
    (
        "browser",
        make_scope(
            headers=[
                (b"host", b"example.com"),
                (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0"),
                (b"accept", b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
                (b"accept-language", b"en-GB,en;q=0.5"),
                (b"accept-encoding", b"gzip, deflate, br"),
                (b"cookie", b"session=abc; theme=dark"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", b"27"),
            ],
            method="POST",
            query_string=b"a=1&b=%E2%82%AC",
            raw_path=b"/form/submit",
            path="/form/submit",
        ),
        True,
    ),
    ("latin-1 header value", make_scope(headers=[(b"x-name", b"caf\xe9")]), True),
    ("no headers key", {k: v for k, v in make_scope().items() if k != "headers"}, True),
    ("headers as a tuple of lists", make_scope(headers=([b"host", b"h"], [b"x-a", b"1"])), True),
    ("underscore name dropped", make_scope(headers=[(b"x_forwarded_for", b"1.2.3.4")]), True),
    ("a new header name", make_scope(headers=[(b"x-first-seen-%d" % os.getpid(), b"v")]), True),
    ("http/2", make_scope(http_version="2"), True),
    ("https", make_scope(scheme="https"), True),
    ("empty scheme", make_scope(scheme=""), True),
    ("no scheme", {k: v for k, v in make_scope().items() if k != "scheme"}, True),
    ("no http_version", {k: v for k, v in make_scope().items() if k != "http_version"}, True),
    ("query on raw_path", make_scope(raw_path=b"/a?x=1", query_string=b"x=1"), True),
    ("client without port", make_scope(client=("10.0.0.1", None)), True),
    ("no client", make_scope(client=None), True),
    ("string ports", make_scope(client=("127.0.0.1", "47700"), server=("127.0.0.1", "8713")), True),
    ("list addresses", make_scope(client=["127.0.0.1", 1], server=["127.0.0.1", 2]), True),
    ("root_path None", make_scope(root_path=None), True),
    ("zero content-length", make_scope(headers=[(b"content-length", b"0")]), True),
    # Handed to the Python definition:
    ("repeated header", make_scope(headers=[(b"accept", b"a"), (b"accept", b"b")]), False),
    ("http/2 cookies", make_scope(headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")]), False),
    (
        "repeated content-length",
        make_scope(headers=[(b"content-length", b"5"), (b"content-length", b"5")]),
        False,
    ),
    (
        "conflicting content-length",
        make_scope(headers=[(b"content-length", b"5"), (b"content-length", b"6")]),
        False,
    ),
    ("spaced content-length", make_scope(headers=[(b"content-length", b" 12 ")]), False),
    ("bad content-length", make_scope(headers=[(b"content-length", b"12a")]), False),
    ("empty content-length", make_scope(headers=[(b"content-length", b"")]), False),
    ("superscript content-length", make_scope(headers=[(b"content-length", b"\xb2")]), False),
    ("escaped path", make_scope(raw_path=b"/a%2Fb", path="/a/b"), False),
    ("root_path", make_scope(root_path="/app", raw_path=b"/app/x", path="/app/x"), False),
    (
        "absolute-form target",
        make_scope(raw_path=b"http://example.com/x", path="http://example.com/x"),
        False,
    ),
    ("asterisk-form target", make_scope(method="OPTIONS", raw_path=b"*", path="*"), False),
    ("no raw_path", make_scope(raw_path=None, path="/caf\xe9"), False),
    ("empty raw_path", make_scope(raw_path=b"", path="/x"), False),
    ("bytearray raw_path", make_scope(raw_path=bytearray(b"/x")), False),
    ("memoryview query", make_scope(query_string=memoryview(b"a=1")), False),
    ("bytearray header value", make_scope(headers=[(b"x-a", bytearray(b"1"))]), False),
    ("str header name", make_scope(headers=[("x-a", b"1")]), False),
    ("three-item header", make_scope(headers=[(b"x-a", b"1", b"2")]), False),
    ("headers as a deque", make_scope(headers=deque([(b"x-a", b"1")])), False),
    ("no server", make_scope(server=None, headers=[(b"host", b"example.com:8080")]), False),
    ("unix socket", make_scope(server=("/run/app.sock", None)), False),
    ("scheme None", make_scope(scheme=None), False),
    ("http_version None", make_scope(http_version=None), False),
    ("no method", {k: v for k, v in make_scope().items() if k != "method"}, False),
    ("headers None", make_scope(headers=None), False),
    ("client of three", make_scope(client=("127.0.0.1", 1, "x")), False),
    ("not a dict", type("Scope", (dict,), {})(make_scope()), False),
]


@needs_c
@pytest.mark.parametrize(
    ("scope", "fast"), [(s, f) for _, s, f in CASES], ids=[c[0] for c in CASES]
)
def test_c_build_matches_the_python_definition(
    scope: Any, fast: bool, fallbacks: list[Any]
) -> None:
    expected = outcome(_environ.python_build_environ, scope)
    assert outcome(_cenviron.build_environ, scope) == expected
    assert len(fallbacks) == (0 if fast else 1)


@needs_c
def test_c_build_raises_the_python_definitions_errors() -> None:
    scope = make_scope(headers=[(b"content-length", b"1"), (b"content-length", b"2")])
    with pytest.raises(BadRequest, match="conflicting Content-Length"):
        _cenviron.build_environ(scope, BASE)
    with pytest.raises(KeyError, match="method"):
        _cenviron.build_environ({}, BASE)


def _generated_scope(rng: random.Random) -> dict[str, Any]:
    """Return a scope mixing common values with every kind the C build hands back."""
    names = [b"host", b"accept", b"cookie", b"x_under", b"content-type", b"content-length"]
    values = [b"", b"v", b"caf\xe9", b" 7 ", b"12", b"x" * 80]
    headers = [(rng.choice(names), rng.choice(values)) for _ in range(rng.randrange(6))]
    scope = make_scope(
        headers=headers if rng.random() < 0.8 else tuple(headers),
        http_version=rng.choice(["1.0", "1.1", "2", "", None]),
        scheme=rng.choice(["http", "https", "", None]),
        method=rng.choice(["GET", "HEAD", "POST"]),
        raw_path=rng.choice([b"/", b"/a?b", b"/%41", b"/caf\xc3\xa9", b"", None]),
        path=rng.choice(["/", "/x", "/caf\xe9"]),
        root_path=rng.choice(["", "", "/a", "/caf\xe9/", None]),
        query_string=rng.choice([b"", b"q=1", b"\xff", None]),
        client=rng.choice([("127.0.0.1", 5), ["::1", None], None, ()]),
        server=rng.choice([("127.0.0.1", 80), ("sock", None), None, ["h", "81"]]),
    )
    for key in ("scheme", "http_version", "query_string", "raw_path", "root_path"):
        if rng.random() < 0.1:
            del scope[key]
    return scope


@needs_c
def test_generated_scopes_give_what_the_python_definition_gives() -> None:
    rng = random.Random(20261207)
    fast = 0
    for _ in range(3000):
        scope = _generated_scope(rng)
        expected = outcome(_environ.python_build_environ, scope)
        assert outcome(_cenviron.build_environ, scope) == expected, scope
        fast += isinstance(expected, list)
    assert fast > 1000  # most generated scopes build an environ (not an error)


@needs_c
def test_no_path_leaks_memory() -> None:
    build = _cenviron.build_environ
    grown = memory_growth(lambda scope: build(scope, BASE), [case[1] for case in CASES], 2000)
    # Even one leaked str per call (about 50 bytes) would be 2000 * 50 bytes.
    assert grown < 32 * 1024, grown
