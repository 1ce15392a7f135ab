"""A small Falcon (WSGI ``falcon.App``) app for the live tests, written as Falcon users write one.

``app`` is the ASGI app (``WSGIToASGI`` around the validated WSGI app),
``wsgi_app`` the same WSGI app for gunicorn. Routes (see ``frameworks_common``):

- ``POST /echo``: ``req.media`` echoed; invalid JSON is Falcon's ``400``.
- ``POST /upload``: the body read from ``req.bounded_stream`` (with a
  ``Content-Length``) or ``req.stream`` (chunked: Falcon's bounded stream reads
  ``Content-Length`` bytes only) in blocks; its size and SHA-256.
- ``GET /stream?name=N&n=K``: ``resp.stream`` set to a generator.
- ``GET /static/data.bin``: ``add_static_route`` (``wsgi.file_wrapper``, Range,
  ETag, If-None-Match, If-Modified-Since).
- ``GET /download``: ``resp.set_stream(open(...), size)`` with
  ``downloadable_as`` (a download as apps write it by hand).
- ``GET /range-file``: a Range handler written by hand: the file is seeked to
  the range's start and handed over with ``set_stream(file, length)``. With an
  ``X-Test-Id`` header, ``GET /file-offset?id=`` then tells where the server left
  the file (``frameworks_common.FileOffsets``).
- ``GET /redirect``: ``HTTPFound`` to ``req.prefix + "/target"``;
  ``GET /target``: the request's URLs as JSON (``client``: ``req.access_route[0]``).
- ``GET /cookie/set``, ``GET /cookie/get``; ``GET /boom?id=X`` raises.
- ``GET /release?name=N``: opens a stream's gate.
"""

from __future__ import annotations

import hashlib
import os

import falcon
from frameworks_common import (
    FILE_NAME,
    FILE_OFFSETS,
    GATES,
    data_path,
    files_dir,
    serve,
    stream_chunks,
)

from asgishift.bridge import WSGIToASGI

BLOCK = 65536


class Echo:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"echo": req.get_media(), "content_length": req.content_length}


class Upload:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        stream = req.bounded_stream if req.content_length is not None else req.stream
        digest = hashlib.sha256()
        size = 0
        while block := stream.read(BLOCK):
            digest.update(block)
            size += len(block)
        resp.media = {"size": size, "sha256": digest.hexdigest()}


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        name = req.get_param("name", required=True)
        count = req.get_param_as_int("n", default=3)
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = (chunk.encode() for chunk in stream_chunks(name, count))


class Release:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        GATES.release(req.get_param("name", required=True))
        resp.text = "released"
        resp.content_type = falcon.MEDIA_TEXT


class Download:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = data_path()
        resp.set_stream(open(path, "rb"), os.path.getsize(path))  # noqa: SIM115
        resp.content_type = "application/octet-stream"
        resp.downloadable_as = FILE_NAME

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)  # Falcon sends no body for HEAD


class RangeDownload:
    """A download with Range support written by hand: seek, then ``set_stream(f, length)``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = data_path()
        size = os.path.getsize(path)
        stream = open(path, "rb")  # noqa: SIM115 (Falcon closes it)
        test_id = req.get_header("X-Test-Id")
        if test_id:
            FILE_OFFSETS.watch(test_id, stream.fileno())
        resp.content_type = "application/octet-stream"
        resp.accept_ranges = "bytes"
        if req.range is None:
            resp.set_stream(stream, size)
            return
        start, end = req.range
        end = size - 1 if end == -1 else min(end, size - 1)
        stream.seek(start)
        resp.status = falcon.HTTP_206
        resp.content_range = (start, end, size)
        resp.set_stream(stream, end - start + 1)


class FileOffset:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"offset": FILE_OFFSETS.offset(req.get_param("id", required=True))}


class Redirect:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPFound(f"{req.prefix}/target")


class Target:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "url": req.url,
            "prefix": req.prefix,
            "root_path": req.root_path,
            "path": req.path,
            "host": req.host,
            "port": req.port,
            "scheme": req.scheme,
            "remote_addr": req.remote_addr,
            "client": req.access_route[0],
        }


class CookieSet:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_cookie("session", "abc123", secure=False, http_only=True, same_site="Lax")
        resp.set_cookie("theme", "dark", secure=False, max_age=3600)
        resp.text = "cookies set"
        resp.content_type = falcon.MEDIA_TEXT


class CookieGet:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = dict(req.cookies)


class Boom:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError(f"boom {req.get_param('id', default='')}")


def make_app() -> falcon.App:
    """Build the Falcon WSGI app."""
    application = falcon.App()
    application.add_route("/echo", Echo())
    application.add_route("/upload", Upload())
    application.add_route("/stream", Stream())
    application.add_route("/release", Release())
    application.add_route("/download", Download())
    application.add_route("/range-file", RangeDownload())
    application.add_route("/file-offset", FileOffset())
    application.add_route("/redirect", Redirect())
    application.add_route("/target", Target())
    application.add_route("/cookie/set", CookieSet())
    application.add_route("/cookie/get", CookieGet())
    application.add_route("/boom", Boom())
    application.add_static_route("/static", files_dir())
    return application


wsgi_app = serve(make_app())
app = WSGIToASGI(wsgi_app)
