"""The router's path rules as pure functions: prefix matching, root_path, mount scopes."""

from __future__ import annotations

from typing import Any

import pytest

from asgishift.bridge._environ import decode_path
from asgishift.bridge._router import (
    match_prefix,
    mount_scope,
    normalise_prefix,
    route_path,
    segment_path,
)

PREFIXES = ("/api/v2", "/api", "/ws")  # longest first, as the router sorts them


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/api", "/api", id="exact"),
        pytest.param("/api/", "/api", id="trailing-slash"),
        pytest.param("/api/notes/1", "/api", id="below"),
        pytest.param("/apix", None, id="not-a-segment"),
        pytest.param("/api-v1/x", None, id="dash-not-a-segment"),
        pytest.param("/api/v2", "/api/v2", id="longest-exact"),
        pytest.param("/api/v2/x", "/api/v2", id="longest-below"),
        pytest.param("/api/v20", "/api", id="longer-not-a-segment"),
        pytest.param("/ws", "/ws", id="other"),
        pytest.param("/", None, id="root"),
        pytest.param("", None, id="empty"),
        pytest.param("/API", None, id="case-sensitive"),
        pytest.param("//api", None, id="double-slash"),
    ],
)
def test_prefixes_match_whole_segments(path: str, expected: str | None) -> None:
    assert match_prefix(path, PREFIXES) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("/api", "/api", id="plain"),
        pytest.param("api", "/api", id="no-leading-slash"),
        pytest.param("/api/", "/api", id="trailing-slash"),
        pytest.param("/api/v2/", "/api/v2", id="nested"),
    ],
)
def test_normalise_prefix(given: str, expected: str) -> None:
    assert normalise_prefix(given) == expected


@pytest.mark.parametrize("bad", ["", "/", "//", "/a?b", "/a#b", "/a//b"])
def test_normalise_prefix_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        normalise_prefix(bad)


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        pytest.param("/app/api/x", "/app", "/api/x", id="uvicorn-style-included"),
        pytest.param("/api/x", "/app", "/api/x", id="hypercorn-style-excluded"),
        pytest.param("/app", "/app", "", id="root-itself"),
        pytest.param("/application/x", "/app", "/application/x", id="not-a-segment"),
        pytest.param("/x", "", "/x", id="no-root"),
    ],
)
def test_route_path_handles_both_server_conventions(path: str, root: str, expected: str) -> None:
    assert route_path(path, root) == expected


def _scope(path: str, root: str, raw: bytes | None = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "path": path, "root_path": root}
    if raw is not None:
        scope["raw_path"] = raw
    return scope


@pytest.mark.parametrize(
    ("scope", "prefix", "expected"),
    [
        pytest.param(
            _scope("/api/x", "", b"/api/x"),
            "/api",
            {"root_path": "/api", "path": "/api/x", "raw_path": b"/api/x"},
            id="no-root",
        ),
        pytest.param(
            _scope("/app/api/x", "/app", b"/app/api/x"),
            "/api",
            {"root_path": "/app/api", "path": "/app/api/x", "raw_path": b"/app/api/x"},
            id="uvicorn-granian",
        ),
        pytest.param(
            _scope("/api/x", "/app", b"/api/x"),
            "/api",
            {"root_path": "/app/api", "path": "/app/api/x", "raw_path": b"/app/api/x"},
            id="hypercorn-daphne",
        ),
        pytest.param(
            _scope("/api/caf\u00e9", "/app"),
            "/api",
            {"root_path": "/app/api", "path": "/app/api/caf\u00e9"},
            id="no-raw-path",
        ),
    ],
)
def test_mount_scope_follows_the_spec(
    scope: dict[str, Any], prefix: str, expected: dict[str, Any]
) -> None:
    original = dict(scope)
    child = mount_scope(scope, prefix)
    assert {key: child[key] for key in expected} == expected
    assert scope == original, "the server's scope must not change"


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param(_scope("/app/api/notes/1", "/app", b"/app/api/notes/1"), id="included"),
        pytest.param(_scope("/api/notes/1", "/app", b"/api/notes/1"), id="excluded"),
    ],
)
def test_a_wsgi_app_behind_a_mount_sees_script_name_and_path_info(scope: dict[str, Any]) -> None:
    assert decode_path(mount_scope(scope, "/api")) == ("/app/api", "/notes/1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"/api/x", "/api/x", id="plain"),
        pytest.param(b"/api%2Fx", "/api%2Fx", id="encoded-slash-stays"),
        pytest.param(b"/api%2fx", "/api%2Fx", id="lowercase-encoded-slash"),
        pytest.param(b"/my%20docs/x", "/my docs/x", id="space"),
        pytest.param(b"/caf%C3%A9/x", "/caf\u00e9/x", id="utf-8"),
        pytest.param(b"/caf\xc3\xa9/x", "/caf\u00e9/x", id="raw-utf-8"),
        pytest.param(b"/a%252Fb", "/a%2Fb", id="escaped-percent"),
        pytest.param(b"/x%FF", "/x\ufffd", id="not-utf-8"),
        pytest.param(b"/api%2Fx?a=%2F", "/api%2Fx", id="query-left-on-raw-path"),
        pytest.param(b"http://host/my%20docs/x", "/my docs/x", id="absolute-form"),
    ],
)
def test_segment_path_keeps_an_encoded_slash_in_its_segment(raw: bytes, expected: str) -> None:
    assert segment_path(raw) == expected
