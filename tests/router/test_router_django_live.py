"""Django's own ASGI handler behind HybridRouter, beside a WSGI app, under real servers.

The app module, ``router_django_apps``, configures Django in the server process
(``settings.configure``: its own URLconf, DEBUG off, no database) and mounts
``django.core.asgi.get_asgi_application()`` at ``/dj``; every other path goes
to a small WSGI app (checked by ``wsgiref.validate``) through ``WSGIToASGI``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import httpx
import pytest

from live import LiveServer, live_server

ROUTER_DIR = Path(__file__).resolve().parent
HYBRID = "router_django_apps:hybrid"

#: server -> (its root-path flag, the prefix the client sends), as in
#: test_router_live.py: uvicorn adds root_path to path, hypercorn does not,
#: granian expects it in the request.
ROOT_PATH = {
    "uvicorn": (["--root-path", "/app"], ""),
    "hypercorn": (["--root-path", "/app"], ""),
    "granian": (["--url-path-prefix", "/app"], "/app"),
}
ROUTER_SERVERS = [pytest.param(name, id=name, marks=pytest.mark.live) for name in ROOT_PATH]


def _json(srv: LiveServer, path: str) -> dict[str, object]:
    """GET ``path`` and return the JSON answer (asserting a 200 first)."""
    response = httpx.get(f"{srv.url}{path}")
    assert response.status_code == 200, (path, response.status_code, response.text)
    data = response.json()
    assert isinstance(data, dict)
    return data


def _hello_under(root_path: str, port: int) -> dict[str, object]:
    """What Django's hello view answers when the router mounts it at /dj below ``root_path``."""
    return {
        "app": "django",
        "path": f"{root_path}/dj/hello/",
        "path_info": "/hello/",
        "SCRIPT_NAME": f"{root_path}/dj",
        "reverse": f"{root_path}/dj/hello/",
        "absolute_uri": f"http://127.0.0.1:{port}{root_path}/dj/hello/",
    }


def _stream_chunk(index: int, size: int) -> bytes:
    """Chunk ``index`` of the Django stream view's answer (``stream_chunk`` in the app module)."""
    return (b"%06d|" % index * size)[:size]


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_django_mount_sees_its_prefix(server: str) -> None:
    with live_server(server, HYBRID, app_dir=ROUTER_DIR) as srv:
        hello = _json(srv, "/dj/hello/")
        assert hello == _hello_under("", srv.port)


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_django_mount_under_the_servers_root_path(server: str) -> None:
    flags, sent_prefix = ROOT_PATH[server]
    with live_server(server, HYBRID, app_dir=ROUTER_DIR, extra_args=flags) as srv:
        hello = _json(srv, f"{sent_prefix}/dj/hello/")
        legacy = _json(srv, f"{sent_prefix}/notes")
        assert hello == _hello_under("/app", srv.port)
        assert legacy == {"app": "wsgi", "SCRIPT_NAME": "/app", "PATH_INFO": "/notes"}


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_other_paths_reach_the_wsgi_app(server: str) -> None:
    with live_server(server, HYBRID, app_dir=ROUTER_DIR) as srv:
        djx = _json(srv, "/djx/")
        root = _json(srv, "/")
        # A prefix matches whole segments only: /djx shares letters with /dj, no more.
        assert djx == {"app": "wsgi", "SCRIPT_NAME": "", "PATH_INFO": "/djx/"}
        assert root == {"app": "wsgi", "SCRIPT_NAME": "", "PATH_INFO": "/"}


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_large_post_body_reaches_django_intact(server: str) -> None:
    body = os.urandom(2 * 1024 * 1024)
    with live_server(server, HYBRID, app_dir=ROUTER_DIR) as srv:
        response = httpx.post(
            f"{srv.url}/dj/upload/",
            content=body,
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "app": "django",
            "method": "POST",
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        # Django's CSRF check is on: only the exemption let the upload in.
        refused = httpx.post(f"{srv.url}/dj/hello/", content=b"x", timeout=30)
        assert refused.status_code == 403, refused.text


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_django_streaming_response_arrives_whole(server: str) -> None:
    chunks, size = 40, 32 * 1024
    expected = b"".join(_stream_chunk(index, size) for index in range(chunks))
    with live_server(server, HYBRID, app_dir=ROUTER_DIR) as srv:
        url = f"{srv.url}/dj/stream/?chunks={chunks}&size={size}"
        with httpx.stream("GET", url, timeout=30) as response:
            received = b"".join(response.iter_bytes())
        assert response.status_code == 200
        # Streamed, not buffered into one response with a length.
        assert "content-length" not in response.headers
        assert response.headers["content-type"] == "application/octet-stream"
        assert len(received) == len(expected)
        assert received == expected


@pytest.mark.parametrize("server", ROUTER_SERVERS)
def test_serve_mounts_django_beside_the_wsgi_app(server: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "asgishift",
        "serve",
        "--app-dir",
        str(ROUTER_DIR),
        "router_django_apps:legacy_checked",
        "--interface",
        "wsgi",
        "--server",
        server,
        "--port",
        "{port}",
        "--mount",
        "/dj=router_django_apps:django_app",
        "--root-path",
        "/app",
    ]
    with live_server(server, "", command=argv, app_dir=ROUTER_DIR) as srv:
        hello = _json(srv, "/dj/hello/")
        djx = _json(srv, "/djx/")
        assert hello == _hello_under("/app", srv.port)
        assert djx == {"app": "wsgi", "SCRIPT_NAME": "/app", "PATH_INFO": "/djx/"}
