"""WhiteNoise serving static files through ``WSGIToASGI`` on real ASGI servers.

The app under test is ``WSGIToASGI(validator(WhiteNoise(fallback, root=STATIC)))``:
WhiteNoise answers the files of a temporary directory (named to the server
process by :data:`ROOT_VARIABLE`) and passes every other path to a plain WSGI
app; ``wsgiref.validate.validator`` checks both sides of PEP 3333 on each
request. Checked on the client side: full responses (RFC 9110 section 8.8 for
the validators), HEAD (9.3.2), byte ranges (14) and conditional requests
(13.1.2 and 15.4.5), and a file larger than the bridge's ``buffer_size``, which
it streams in several messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bridge_helpers import DEADLINE

from asgishift.bridge import BridgeOptions
from live import ASGI_SERVER_PARAMS, LiveServer, live_server

#: The environment variable that names the static directory to the server process.
ROOT_VARIABLE = "WHITENOISE_LIVE_ROOT"

#: The app module, written to a temporary directory that is put on the server's path.
APP_SOURCE = textwrap.dedent(
    '''
    """WhiteNoise in front of a plain WSGI app, bridged to ASGI (test_whitenoise_live.py)."""

    import os
    from wsgiref.validate import validator

    from whitenoise import WhiteNoise

    from asgishift.bridge import WSGIToASGI


    def fallback(environ, start_response):
        """Answer every path WhiteNoise does not serve."""
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"app"]


    ROOT = os.environ["WHITENOISE_LIVE_ROOT"]
    app = WSGIToASGI(validator(WhiteNoise(fallback, root=ROOT)))
    # Without the validator: WhiteNoise's 416 has no Content-Type, which
    # wsgiref.validate rejects (it wants one on everything but 204 and 304).
    unchecked_app = WSGIToASGI(WhiteNoise(fallback, root=ROOT))
    '''
)

#: Every static file's modification time: 2023-11-14 22:13:20 UTC.
MTIME = 1_700_000_000
SMALL_NAME = "hello.txt"
SMALL = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
BIG_NAME = "big.bin"
#: Several times the bridge's buffer_size, and not a multiple of any block size.
BIG_SIZE = 3 * 1024 * 1024 + 17


@dataclass(frozen=True)
class Site:
    """The directories a WhiteNoise server runs with, and the big file's content."""

    app_dir: Path
    static_dir: Path
    big: bytes


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Write the app module and the static files (before any server scans them)."""
    app_dir = tmp_path_factory.mktemp("whitenoise-app")
    (app_dir / "whitenoise_live_app.py").write_text(APP_SOURCE, encoding="utf-8")
    static_dir = tmp_path_factory.mktemp("whitenoise-static")
    big = os.urandom(BIG_SIZE)
    for name, content in ((SMALL_NAME, SMALL), (BIG_NAME, big)):
        path = static_dir / name
        path.write_bytes(content)
        os.utime(path, (MTIME, MTIME))
    return Site(app_dir, static_dir, big)


def _serve(
    server: str, site: Site, attribute: str
) -> contextlib.AbstractContextManager[LiveServer]:
    """Start ``server`` on ``whitenoise_live_app:<attribute>`` with the site's static directory."""
    env = {ROOT_VARIABLE: str(site.static_dir)}
    return live_server(server, f"whitenoise_live_app:{attribute}", env=env, app_dir=site.app_dir)


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def server(request: pytest.FixtureRequest, site: Site) -> Iterator[LiveServer]:
    """Serve ``whitenoise_live_app:app`` (validated) on each ASGI server."""
    with _serve(request.param, site, "app") as srv:
        yield srv


@pytest.fixture(scope="module", params=ASGI_SERVER_PARAMS)
def unchecked_server(request: pytest.FixtureRequest, site: Site) -> Iterator[LiveServer]:
    """Serve ``whitenoise_live_app:unchecked_app`` (no validator) on each ASGI server."""
    with _serve(request.param, site, "unchecked_app") as srv:
        yield srv


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """Return a client for :func:`server`."""
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
        yield http


def test_get_static_file(client: httpx.Client) -> None:
    response = client.get(f"/{SMALL_NAME}")
    assert response.status_code == 200
    assert response.content == SMALL
    assert response.headers["content-length"] == str(len(SMALL))
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["etag"].startswith('"')
    assert response.headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_head_static_file(client: httpx.Client) -> None:
    got = client.get(f"/{SMALL_NAME}")
    response = client.head(f"/{SMALL_NAME}")
    assert response.status_code == 200
    assert response.headers["content-length"] == got.headers["content-length"]
    assert response.headers["etag"] == got.headers["etag"]
    assert response.content == b""


def test_range(client: httpx.Client) -> None:
    response = client.get(f"/{SMALL_NAME}", headers={"Range": "bytes=2-5"})
    assert response.status_code == 206
    assert response.content == SMALL[2:6]
    assert response.headers["content-range"] == f"bytes 2-5/{len(SMALL)}"
    assert response.headers["content-length"] == "4"


def test_if_none_match_is_304(client: httpx.Client) -> None:
    etag = client.get(f"/{SMALL_NAME}").headers["etag"]
    response = client.get(f"/{SMALL_NAME}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    # The connection still works: a stray body byte would corrupt the next response.
    assert client.get(f"/{SMALL_NAME}").content == SMALL


def test_unsatisfiable_range_is_416(unchecked_server: LiveServer) -> None:
    # On the unchecked app: wsgiref.validate turns WhiteNoise's 416 (it has no
    # Content-Type) into an AssertionError, so the validated app answers 500.
    response = httpx.get(
        f"{unchecked_server.url}/{SMALL_NAME}",
        headers={"Range": "bytes=1000-2000"},
        timeout=DEADLINE,
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(SMALL)}"


def test_big_file_is_byte_exact(client: httpx.Client, site: Site) -> None:
    assert BridgeOptions().buffer_size * 4 < BIG_SIZE  # the bridge must stream it
    digest = hashlib.sha256()
    received = 0
    with client.stream("GET", f"/{BIG_NAME}") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(BIG_SIZE)
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == BIG_SIZE
    assert digest.hexdigest() == hashlib.sha256(site.big).hexdigest()


def test_big_range_is_byte_exact(client: httpx.Client, site: Site) -> None:
    # A range over many buffers, starting and ending off any block boundary.
    first, last = 100_001, 2_200_002
    response = client.get(f"/{BIG_NAME}", headers={"Range": f"bytes={first}-{last}"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{BIG_SIZE}"
    assert len(response.content) == last - first + 1
    assert response.content == site.big[first : last + 1]


@pytest.mark.parametrize("path", ["/page", "/missing.txt"])
def test_other_paths_reach_the_app(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.content == b"app"
