"""A factory-built Flask app with the extensions teams use, on each ASGI server.

``apps/flaskext_extensions_app.py`` has every feature as a sync and an async
view; each test asks both and expects the same answer: Flask-CORS, -Babel,
-Caching, -Session, -Limiter, -Login with -SQLAlchemy and -WTF's CSRF check,
``send_file``/``send_from_directory`` with ranges and conditional requests,
``stream_with_context``, request hooks, error handlers and signals in Flask's
order, blueprints under the server's root path, ``url_for(_external=True)``
behind ``ProxyFix``, and ``flask run`` serving the same factory.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flaskext_helpers import (
    ACCEPT_RANGES_ON_WHOLE_FILES,
    ASYNC_STREAM_WITH_CONTEXT,
    FLASK_APPS_DIR,
)
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from live import ASGI_SERVER_PARAMS, LiveServer, live_server, wait_for

# In the test dependency group; a virtualenv made before they joined it skips.
for _extension in ("flask_babel", "flask_caching", "flask_cors", "flask_limiter", "flask_session"):
    pytest.importorskip(_extension, reason="pip install --group test (pyproject.toml)")

from flaskext_extensions_app import ALLOWED_ORIGIN, BLOB_SIZE, blob_bytes  # noqa: E402

pytestmark = pytest.mark.live

KINDS = ["sync", "async"]
APP = "flaskext_extensions_app:asgi_app"
#: What a reverse proxy in front of the app adds (ProxyFix trusts one of each).
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example",
    "X-Forwarded-Prefix": "/store",
}
#: The root path given to the servers of :func:`mounted_server`.
MOUNT = "/mount"


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def ext_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app, with ``app.wsgi_app`` wrapped in ``ProxyFix``, on one ASGI server."""
    server: str = request.param
    env = {"FLASKEXT_EXT_DIR": str(tmp_path_factory.mktemp(f"ext-{server}"))}
    env["FLASKEXT_EXT_PROXY"] = "1"
    with live_server(server, APP, app_dir=FLASK_APPS_DIR, env=env) as srv:
        yield srv


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def mounted_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app on one ASGI server told it is mounted at :data:`MOUNT`."""
    server: str = request.param
    env = {"FLASKEXT_EXT_DIR": str(tmp_path_factory.mktemp(f"ext-mounted-{server}"))}
    flag = "--url-path-prefix" if server == "granian" else "--root-path"
    with live_server(server, APP, app_dir=FLASK_APPS_DIR, env=env, extra_args=[flag, MOUNT]) as srv:
        yield srv


@pytest.fixture
def client(ext_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ext_server.url, timeout=10) as session:
        yield session


def test_async_views_run_on_the_loop_and_sync_views_on_bridge_threads(
    client: httpx.Client,
) -> None:
    # Decorators that are plain def functions around an async view (Flask-Caching's
    # cached, Flask-Limiter's limit) are the exception: docs/flask.md says so.
    assert client.get("/sync/where").json()["thread"].startswith("asgishift-bridge")
    assert not client.get("/async/where").json()["thread"].startswith("asgishift-bridge")


@pytest.mark.parametrize("kind", KINDS)
def test_cors_babel_and_caching(client: httpx.Client, kind: str) -> None:
    hello = client.get(
        f"/{kind}/hello", headers={"Origin": ALLOWED_ORIGIN, "Accept-Language": "de, en;q=0.5"}
    )
    assert hello.status_code == 200
    assert hello.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert hello.json() == {"greeting": "Hello", "locale": "de"}
    other = client.get(f"/{kind}/hello", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        f"/{kind}/note",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # Flask-Caching answers the second request without running the view.
    first = client.get(f"/{kind}/cached").json()
    assert client.get(f"/{kind}/cached").json() == first


@pytest.mark.parametrize("kind", KINDS)
def test_server_side_session_persists(ext_server: LiveServer, kind: str) -> None:
    with httpx.Client(base_url=ext_server.url, timeout=10) as browser:
        counts = [browser.get(f"/{kind}/counter").json()["count"] for _ in range(3)]
        # Flask-Session keeps the data on the server: the cookie holds an id.
        cookie = browser.cookies["session"]
    assert counts == [1, 2, 3]
    assert "count" not in cookie


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_per_client(client: httpx.Client, kind: str) -> None:
    who = {"X-Forwarded-For": f"198.51.100.{len(kind)}"}
    statuses = [client.get(f"/{kind}/limited", headers=who).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get(f"/{kind}/limited", headers=who)
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_counts_the_forwarded_client_address(client: httpx.Client, kind: str) -> None:
    """Behind ProxyFix each client has its own quota: before the fix, async views
    saw the proxy's address, so every client shared one quota (not on uvicorn,
    whose own proxy-header handling set the address)."""
    first = {"X-Forwarded-For": "192.0.2.10"}
    second = {"X-Forwarded-For": "192.0.2.20"}
    seen = [client.get(f"/quota/{kind}", headers=first) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 429]
    assert seen[0].json() == {"remote_addr": "192.0.2.10"}
    other = client.get(f"/quota/{kind}", headers=second)
    assert other.status_code == 200
    assert other.json() == {"remote_addr": "192.0.2.20"}


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


@pytest.mark.parametrize("kind", KINDS)
def test_login_sqlalchemy_and_csrf(ext_server: LiveServer, kind: str) -> None:
    with httpx.Client(base_url=ext_server.url, timeout=10) as browser:
        assert browser.get(f"/{kind}/me").status_code == 401
        token = _csrf_token(browser.get("/login").text)
        assert browser.post("/login", data={"name": "ada"}).status_code == 400
        assert browser.post("/login", data={"name": "ada", "csrf_token": token}).status_code == 302
        assert browser.get(f"/{kind}/me").json() == {"name": "ada"}
        refused = browser.post(f"/{kind}/note", data={"text": "x"})
        assert refused.status_code == 400
        assert "CSRF" in refused.text
        posted = browser.post(f"/{kind}/note", data={"text": "hi", "csrf_token": token})
        assert posted.status_code == 201
        assert posted.json() == {"text": "hi"}


@pytest.mark.parametrize("route", ["file", "files/blob.bin"])
@pytest.mark.parametrize("kind", KINDS)
def test_send_file_ranges_and_conditional_requests(
    client: httpx.Client, kind: str, route: str
) -> None:
    blob = blob_bytes()
    url = f"/{kind}/{route}"
    full = client.get(url)
    assert full.status_code == 200
    assert full.content == blob
    # What Werkzeug's send_file sets, passed through.
    assert full.headers.get("accept-ranges") == ("bytes" if ACCEPT_RANGES_ON_WHOLE_FILES else None)
    etag, modified = full.headers["etag"], full.headers["last-modified"]

    part = client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == blob[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{BLOB_SIZE}"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, blob[-10:])
    outside = client.get(url, headers={"Range": f"bytes={BLOB_SIZE + 5}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{BLOB_SIZE}"

    for condition in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        unchanged = client.get(url, headers=condition)
        assert unchanged.status_code == 304
        assert unchanged.content == b""
    # If-Range with a stale validator gets the whole file.
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (stale.status_code, len(stale.content)) == (200, BLOB_SIZE)
    fresh = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, blob[:10])

    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(BLOB_SIZE)
    assert head.content == b""


@pytest.mark.parametrize("kind", KINDS)
def test_send_from_directory_refuses_paths_outside_it(client: httpx.Client, kind: str) -> None:
    assert client.get(f"/{kind}/files/missing.bin").status_code == 404
    assert client.get(f"/{kind}/files/..%2Fapp.sqlite").status_code == 404


@pytest.mark.parametrize("kind", KINDS)
def test_stream_with_context_sees_the_request(client: httpx.Client, kind: str) -> None:
    if kind == "async" and not ASYNC_STREAM_WITH_CONTEXT:
        pytest.skip("Flask 3.0's stream_with_context fails in async views (flaskext_helpers)")
    streamed = client.get(f"/{kind}/stream", params={"word": "hi"})
    assert streamed.status_code == 200
    assert streamed.text == f"/{kind}/stream|{kind}|hi"


def _trace(client: httpx.Client, key: str, expected_last: str) -> list[str]:
    """The events recorded for ``key``, once the teardown (after the response) ran."""
    events: list[str] = []

    def complete() -> bool:
        events[:] = client.get(f"/trace/{key}").json()
        return bool(events) and events[-1].startswith(expected_last)

    wait_for(complete, 10, f"teardown of request {key}")
    return events


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_signals_and_error_handlers_run_in_flasks_order(
    client: httpx.Client, kind: str
) -> None:
    url = f"/{kind}/hooks"
    # App hooks first on the way in, the blueprint's first on the way out.
    before = ["request_started", "before_request", f"{kind}.before_request"]

    def after(status: int, error: str) -> list[str]:
        return [
            f"{kind}.after_request",
            f"after_request:{status}",
            f"{kind}.teardown_request",
            f"teardown_request:{error}",
        ]

    ok = client.get(url, headers={"X-Trace": f"{kind}-ok"})
    assert (ok.status_code, ok.text) == (200, "hooks ran")
    assert _trace(client, f"{kind}-ok", "teardown_request") == [
        *before,
        "view",
        *after(200, "None"),
    ]

    failed = client.get(url, params={"fail": "view"}, headers={"X-Trace": f"{kind}-view"})
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal", "cause": "RuntimeError('view failed')"}
    assert _trace(client, f"{kind}-view", "teardown_request") == [
        *before,
        "view",
        "got_request_exception:RuntimeError('view failed')",
        "errorhandler(500)",
        *after(500, "RuntimeError('view failed')"),
    ]

    # The app's before_request raises: the blueprint's never runs.
    refused = client.get(url, params={"fail": "before"}, headers={"X-Trace": f"{kind}-before"})
    assert refused.status_code == 500
    assert _trace(client, f"{kind}-before", "teardown_request") == [
        "request_started",
        "before_request",
        "got_request_exception:RuntimeError('before_request failed')",
        "errorhandler(500)",
        *after(500, "RuntimeError('before_request failed')"),
    ]

    aborted = client.get(url, params={"abort": "418"}, headers={"X-Trace": f"{kind}-abort"})
    assert aborted.status_code == 418
    assert aborted.json() == {"error": "I'm a teapot", "code": 418}
    # An HTTPException is handled, not an error: teardown sees none.
    assert _trace(client, f"{kind}-abort", "teardown_request") == [
        *before,
        "view",
        "errorhandler(HTTPException):418",
        *after(418, "None"),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_failing_teardown_turns_the_response_into_a_500(client: httpx.Client, kind: str) -> None:
    """Teardown functions run before the response goes out, as under a WSGI server,
    so an app committing in ``teardown_request`` never answers 200 for a failed
    commit: an async view's response went out first, and its client got 200."""
    # Connection: close: for a sync view the bridge re-raises the app's exception after
    # its 500 (so the server logs it), and uvicorn then closes the connection; a next
    # request on it (the trace below) could race that close and be reset.
    failed = client.get(
        f"/{kind}/hooks",
        params={"fail": "teardown"},
        headers={"X-Trace": f"{kind}-td", "Connection": "close"},
    )
    assert failed.status_code == 500
    assert "hooks ran" not in failed.text
    assert _trace(client, f"{kind}-td", "teardown_request")[-1] == "teardown_request:None"


@pytest.mark.parametrize("kind", KINDS)
def test_url_for_external_behind_proxyfix(
    ext_server: LiveServer, client: httpx.Client, kind: str
) -> None:
    """ProxyFix around ``app.wsgi_app`` applies to async views too (it did to sync
    views only: async views built ``http://127.0.0.1:PORT/...`` URLs)."""
    direct = client.get(f"/{kind}/urls").json()
    assert direct["external"] == f"{ext_server.url}/{kind}/urls"
    assert direct["root_path"] == ""
    proxied = client.get(f"/{kind}/urls", headers=FORWARDED).json()
    assert proxied == {
        "external": f"https://shop.example/store/{kind}/urls",
        "path": f"/{kind}/urls",
        "root_path": "/store",
        "remote_addr": "203.0.113.7",
        "scheme": "https",
    }


def test_websocket_behind_proxyfix(ext_server: LiveServer) -> None:
    ws_url = ext_server.url.replace("http://", "ws://") + "/ws/echo"
    with connect(ws_url, additional_headers=FORWARDED, open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "203.0.113.7|wss://shop.example/store/ws/echo|hi"


@pytest.mark.parametrize("kind", KINDS)
def test_blueprint_urls_under_the_servers_root_path(mounted_server: LiveServer, kind: str) -> None:
    # uvicorn takes paths with the mount point already stripped by the proxy;
    # the others take them either way.
    prefix = "" if mounted_server.server == "uvicorn" else MOUNT
    body = httpx.get(f"{mounted_server.url}{prefix}/{kind}/urls", timeout=10).json()
    assert body["external"] == f"{mounted_server.url}{MOUNT}/{kind}/urls"
    assert body["root_path"] == MOUNT
    assert body["path"] == f"/{kind}/urls"


def test_flask_run_serves_the_same_factory(tmp_path: Path) -> None:
    """``flask run`` (Werkzeug's WSGI server) still serves the app with the
    extension installed; async views run as in stock Flask."""
    argv = [sys.executable, "-c", "from flask.cli import main; main()"]
    argv += ["--app", "flaskext_extensions_app:create_app", "run", "--port", "{port}"]
    env = {"FLASKEXT_EXT_DIR": str(tmp_path)}
    with (
        live_server("flask", "", command=argv, app_dir=FLASK_APPS_DIR, env=env) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as browser,
    ):
        answers: dict[str, Any] = {}
        for kind in KINDS:
            answers[kind] = browser.get(f"/{kind}/hello", headers={"Accept-Language": "fr"}).json()
            assert browser.get(f"/{kind}/counter").json() == {"count": 1 + KINDS.index(kind)}
            part = browser.get(f"/{kind}/file", headers={"Range": "bytes=5-9"})
            assert (part.status_code, part.content) == (206, blob_bytes()[5:10])
        # A WebSocket rule over plain HTTP is a clear 400, not the view.
        assert browser.get("/ws/echo").status_code == 400
    assert answers["sync"] == answers["async"] == {"greeting": "Hello", "locale": "fr"}


def test_websocket_url_for_under_the_root_path_and_a_secure_proxy(
    mounted_server: LiveServer,
) -> None:
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its --proxy-headers default)
    and gives the handshake a ``wss`` scheme: ``url_for`` built ``ws://`` URLs
    from it. The other servers leave the header to the app (no ProxyFix here)."""
    server = mounted_server.server
    prefix = "" if server == "uvicorn" else MOUNT
    ws_url = f"{mounted_server.url.replace('http://', 'ws://')}{prefix}/ws/echo"
    headers = {"X-Forwarded-Proto": "https"}
    with connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
        ws.send("hi")
        answer = ws.recv(timeout=10)
    scheme = "wss" if server == "uvicorn" else "ws"
    assert answer == f"127.0.0.1|{scheme}://127.0.0.1:{mounted_server.port}{MOUNT}/ws/echo|hi"


def test_websocket_view_errors_reach_got_request_exception(ext_server: LiveServer) -> None:
    """Error reporting hooked on Flask's signals (Sentry's and Rollbar's Flask
    integrations) sees a WebSocket view's unhandled error, as it sees an HTTP
    view's: no signal was sent for WebSocket connections before."""
    ws_url = ext_server.url.replace("http://", "ws://") + "/ws/fail"
    with connect(ws_url, additional_headers={"X-Trace": "ws-after"}, open_timeout=10) as ws:
        ws.send("go")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
    if ext_server.server != "hypercorn":  # hypercorn reports 1006 (docs/flask.md)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1011
    with pytest.raises(InvalidStatus) as refused:
        connect(
            ws_url + "?when=before-accept",
            additional_headers={"X-Trace": "ws-before"},
            open_timeout=10,
        )
    before = "websocket view failed before accepting"
    if ext_server.server == "daphne":  # no websocket.http.response: a close (403)
        assert refused.value.response.status_code == 403
    else:  # the app's errorhandler(500) answer, as an HTTP view would get
        assert refused.value.response.status_code == 500
        assert json.loads(refused.value.response.body or b"") == {
            "error": "internal",
            "cause": f"RuntimeError({before!r})",
        }
    with httpx.Client(base_url=ext_server.url, timeout=10) as client:
        assert _trace(client, "ws-after", "teardown_request") == [
            "request_started",
            "before_request",
            "got_request_exception:RuntimeError('websocket view failed')",
            "teardown_request:RuntimeError('websocket view failed')",
        ]
        assert _trace(client, "ws-before", "teardown_request") == [
            "request_started",
            "before_request",
            f"got_request_exception:RuntimeError({before!r})",
            "errorhandler(500)",
            f"teardown_request:RuntimeError({before!r})",
        ]
