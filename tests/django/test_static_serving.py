"""The development static file server at the scope level: ranges, dates, traversal, HEAD."""

from __future__ import annotations

import asyncio
import os
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from asgishift.django_integration.static import (
    CHUNK_SIZE,
    StaticFilesApp,
    not_modified,
    parse_range,
    relative_static_path,
    staticfiles_app,
)
from asgishift.serve import ServeConfig
from django_support.asgi_call import call


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=9-3", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: Any) -> None:
    assert parse_range(header, 100) == expected


def test_not_modified() -> None:
    assert not_modified(formatdate(2000, usegmt=True), 1999.5)
    assert not not_modified(formatdate(2000, usegmt=True), 2001)
    assert not not_modified("yesterday", 1)
    assert not not_modified(None, 1)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/static/app/site.css", "app/site.css"),
        ("/static/a%20b.txt", "a b.txt"),
        ("/static/../settings.py", None),
        ("/static/%2e%2e/settings.py", None),
        ("/static/app/../../x", None),
        ("/static//etc/passwd", None),
        ("/static/a%00b", None),
        ("/static/a%5c..%5cb", None),
        ("/static/", None),
        ("/media/x", None),
    ],
)
def test_relative_static_path(path: str, expected: str | None) -> None:
    assert relative_static_path(path, "/static/") == expected


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    (tmp_path / "site.css").write_text("body{}")
    return tmp_path


def app_for(root: Path) -> StaticFilesApp:
    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    def find(relative: str) -> str | None:
        candidate = root / relative
        return str(candidate) if candidate.is_file() else None

    return StaticFilesApp(downstream, "/static/", find)


def test_file_is_streamed_in_chunks(files: Path) -> None:
    reply = asyncio.run(call(app_for(files), "GET", "/static/big.bin"))
    assert reply.status == 200
    assert reply.body == (files / "big.bin").read_bytes()
    chunks = [m for m in reply.messages if m["type"] == "http.response.body"]
    assert len(chunks) == 256 * 1024 // CHUNK_SIZE
    assert all(len(m["body"]) <= CHUNK_SIZE for m in chunks)
    assert reply.header("content-length") == str(256 * 1024)


def test_range_head_304_416_and_pass_through(files: Path) -> None:
    app = app_for(files)
    data = (files / "big.bin").read_bytes()
    part = asyncio.run(
        call(app, "GET", "/static/big.bin", headers=[("Range", "bytes=70000-70009")])
    )
    assert (part.status, part.body) == (206, data[70000:70010])
    assert part.header("content-range") == f"bytes 70000-70009/{len(data)}"
    head = asyncio.run(call(app, "HEAD", "/static/site.css"))
    assert (head.status, head.body, head.header("content-length")) == (200, b"", "6")
    mtime = os.stat(files / "site.css").st_mtime
    since = formatdate(mtime + 10, usegmt=True)
    cached = asyncio.run(
        call(app, "GET", "/static/site.css", headers=[("If-Modified-Since", since)])
    )
    assert (cached.status, cached.body) == (304, b"")
    beyond = asyncio.run(call(app, "GET", "/static/site.css", headers=[("Range", "bytes=50-")]))
    assert (beyond.status, beyond.header("content-range")) == (416, "bytes */6")
    assert asyncio.run(call(app, "GET", "/static/../big.bin")).status == 404
    assert asyncio.run(call(app, "GET", "/static/missing.css")).status == 404
    assert asyncio.run(call(app, "POST", "/static/site.css")).status == 405
    other = asyncio.run(call(app, "GET", "/page/"))
    assert (other.status, other.body) == (299, b"app")


def test_absolute_static_url_is_left_to_its_host(settings: Any) -> None:
    """A STATIC_URL on another host (a CDN) is not served, and runasgi starts anyway, as
    runserver's StaticFilesHandler ignores such a URL; before, runasgi stopped with a
    traceback (ImproperlyConfigured) at startup under DEBUG."""
    from asgishift.django_integration.management.commands.runasgi import Command

    settings.STATIC_URL = "https://cdn.example.com/static/"

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    reply = asyncio.run(call(staticfiles_app(downstream), "GET", "/static/admin/css/base.css"))
    assert (reply.status, reply.body) == (299, b"/static/admin/css/base.css")

    options = {"use_static_handler": True, "insecure_serving": False}
    settings.DEBUG = True
    config = ServeConfig(app=downstream, interface="asgi")
    app, banner = Command().get_application(config, **options)
    assert banner == ""
    served = asyncio.run(call(app, "GET", "/static/admin/css/base.css"))
    assert served.status == 299


def _django_reference(method: str, path: str) -> Any:
    """What Django's own static handler (runserver's, in its ASGI form) answers."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.handlers.asgi import ASGIHandler

    return asyncio.run(call(ASGIStaticFilesHandler(ASGIHandler()), method, path))


@pytest.mark.parametrize("debug", [True, False])
def test_missing_file_gets_djangos_404_page(settings: Any, debug: bool) -> None:
    """A static file that does not exist gets the 404 page runserver gives: with DEBUG,
    Django's HTML debug page naming the file; with --insecure and DEBUG off, the project's
    404 page. Before, runasgi answered a plain-text "Not Found" either way."""
    settings.DEBUG = debug

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a static URL reached the app")

    app = staticfiles_app(downstream)
    for path in ("/static/missing.css", "/static/admin/", "/static/"):
        reply = asyncio.run(call(app, "GET", path))
        expected = _django_reference("GET", path)
        assert (reply.status, reply.header("content-type")) == (404, "text/html; charset=utf-8")
        assert reply.body == expected.body
        assert reply.header("content-length") == str(len(reply.body))
    if debug:
        assert b"Page not found" in reply.body
        missing = asyncio.run(call(app, "GET", "/static/missing.css")).body
        assert b"&#x27;missing.css&#x27; could not be found" in missing
    head = asyncio.run(call(app, "HEAD", "/static/missing.css"))
    assert (head.status, head.body) == (404, b"")
    escape = asyncio.run(call(app, "GET", "/static/%2e%2e/settings.py"))
    assert (escape.status, escape.header("content-type")) == (404, "text/html; charset=utf-8")


def test_static_url_below_the_script_name_is_served(settings: Any) -> None:
    """With FORCE_SCRIPT_NAME = "/app", {% static %} links to /app/static/..., and runasgi
    serves the project's pages under /app/ as well as without it (Django's ASGIRequest
    takes the script name off the path). Before, only /static/... was served and the
    /app/static/... URLs of every page went to the app and got its 404."""
    settings.FORCE_SCRIPT_NAME = "/app"
    settings.STATIC_URL = "/app/static/"  # what Django makes of "static/" there

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    app = staticfiles_app(downstream)
    for path in ("/app/static/admin/css/base.css", "/static/admin/css/base.css"):
        reply = asyncio.run(call(app, "GET", path))
        assert (reply.status, reply.header("content-type")) == (200, "text/css"), path
    assert asyncio.run(call(app, "GET", "/application/static/admin/css/base.css")).status == 299
    missing = asyncio.run(call(app, "GET", "/app/static/missing.css"))
    assert (missing.status, missing.header("content-type")) == (404, "text/html; charset=utf-8")
    assert asyncio.run(call(app, "GET", "/app/page/")).status == 299


def test_root_path_is_taken_off_without_force_script_name(files: Path) -> None:
    """Without FORCE_SCRIPT_NAME the scope's root_path is the script name (ASGI HTTP spec),
    as for Django's ASGIRequest: a server run with --root-path /sub passes /sub/static/..."""
    app = app_for(files)

    async def under_sub(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "root_path": "/sub"}, receive, send)

    reply = asyncio.run(call(under_sub, "GET", "/sub/static/site.css"))
    assert (reply.status, reply.body) == (200, b"body{}")
    assert asyncio.run(call(under_sub, "GET", "/static/site.css")).status == 200
    assert asyncio.run(call(under_sub, "GET", "/other/static/site.css")).status == 299


@pytest.mark.urls("django_support.db_404_urls")
@pytest.mark.django_db(transaction=True)
def test_a_404_page_that_queries_the_database_leaves_no_connection_open(settings: Any) -> None:
    """With --insecure and DEBUG off, a missing static file gets the project's 404 page;
    one that queries the database opens a connection on a worker thread, and it is closed
    afterwards (CONN_MAX_AGE = 0): closing the response sends request_finished, as
    runserver's handler does."""
    from django_support import db_404_urls

    settings.DEBUG = False
    db_404_urls.USED.clear()

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a static URL reached the app")

    reply = asyncio.run(call(staticfiles_app(downstream), "GET", "/static/missing.css"))
    assert (reply.status, reply.body) == (404, b"authors: 0")
    [wrapper] = db_404_urls.USED
    assert wrapper.connection is None  # closed, not left open on the worker thread
