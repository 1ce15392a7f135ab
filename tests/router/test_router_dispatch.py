"""Which app HybridRouter calls, and with which scope, in process."""

from __future__ import annotations

import asyncio
from typing import Any

from asgishift.bridge import HybridRouter


class Recorder:
    """An ASGI app that records the scopes it was called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)


async def _nothing() -> dict[str, Any]:
    return {}


async def _drop(message: Any) -> None:
    return None


def _call(router: HybridRouter, scope: dict[str, Any]) -> None:
    asyncio.run(router(scope, _nothing, _drop))


def test_unmatched_websockets_go_to_the_websocket_app() -> None:
    fallback, api, sockets = Recorder(), Recorder(), Recorder()
    router = HybridRouter(fallback, {"/api": api}, websocket=sockets)
    _call(router, {"type": "websocket", "path": "/live", "root_path": ""})
    _call(router, {"type": "websocket", "path": "/api/live", "root_path": ""})
    _call(router, {"type": "http", "path": "/live", "root_path": ""})
    assert [s["path"] for s in sockets.scopes] == ["/live"]
    assert [s["root_path"] for s in api.scopes] == ["/api"]
    assert [s["type"] for s in fallback.scopes] == ["http"]


def test_without_a_websocket_app_unmatched_websockets_go_to_the_fallback() -> None:
    fallback, api = Recorder(), Recorder()
    _call(HybridRouter(fallback, {"/api": api}), {"type": "websocket", "path": "/x"})
    assert [s["path"] for s in fallback.scopes] == ["/x"]
    assert api.scopes == []


def test_fallback_gets_the_servers_scope_itself() -> None:
    fallback = Recorder()
    scope = {"type": "http", "path": "/notes", "root_path": "/app"}
    _call(HybridRouter(fallback, {"/api": Recorder()}), scope)
    assert fallback.scopes[0] is scope


def test_mount_matching_uses_the_path_below_root_path() -> None:
    fallback, api = Recorder(), Recorder()
    router = HybridRouter(fallback, {"/api": api})
    # root_path "/api" with a path below it: "/x" is not under the mount.
    _call(router, {"type": "http", "path": "/api/x", "root_path": "/api"})
    assert len(fallback.scopes) == 1
    assert api.scopes == []


def _http(path: str, raw: bytes | None, root: str = "") -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "path": path, "root_path": root}
    if raw is not None:
        scope["raw_path"] = raw
    return scope


def test_an_encoded_slash_does_not_split_a_segment_when_raw_path_is_given() -> None:
    # The router matched the decoded path, and /api%2Fadmin reached the /api
    # mount as /api/admin: a rule a proxy applies to the raw /api/admin did not
    # cover it. The ASGI spec decodes path; raw_path keeps what was sent.
    fallback, api = Recorder(), Recorder()
    router = HybridRouter(fallback, {"/api": api})
    _call(router, _http("/api/admin", b"/api%2Fadmin"))
    _call(router, _http("/app/api/admin", b"/app/api%2fadmin", root="/app"))
    _call(router, _http("/api/admin", b"/api/admin"))
    _call(router, _http("/api/admin", None))  # no raw_path: the decoded path is all there is
    assert [s["path"] for s in fallback.scopes] == ["/api/admin", "/app/api/admin"]
    assert [(s["root_path"], s["path"]) for s in api.scopes] == [
        ("/api", "/api/admin"),
        ("/api", "/api/admin"),
    ]


def test_other_escapes_match_their_decoded_prefix() -> None:
    fallback, docs, cafe = Recorder(), Recorder(), Recorder()
    router = HybridRouter(fallback, {"/my docs": docs, "/caf\u00e9": cafe})
    _call(router, _http("/my docs/x", b"/my%20docs/x"))
    _call(router, _http("/app/my docs/x", b"/app/my%20docs/x", root="/app"))  # uvicorn-style
    _call(router, _http("/my docs/x", b"/my%20docs/x", root="/app"))  # hypercorn-style
    _call(router, _http("/caf\u00e9", b"/caf%C3%A9"))
    _call(router, _http("/my docs/x", b"/my%20docs%2Fx"))
    assert [(s["root_path"], s["path"]) for s in docs.scopes] == [
        ("/my docs", "/my docs/x"),
        ("/app/my docs", "/app/my docs/x"),
        ("/app/my docs", "/app/my docs/x"),
    ]
    assert [(s["root_path"], s["path"]) for s in cafe.scopes] == [("/caf\u00e9", "/caf\u00e9")]
    assert [s["path"] for s in fallback.scopes] == ["/my docs/x"]
