"""A small Pyramid app for the live tests, written as Pyramid users write one.

``app`` is the ASGI app (``WSGIToASGI`` around the validated WSGI app),
``wsgi_app`` the same WSGI app for gunicorn. Routes (see ``frameworks_common``):

- ``POST /echo``: ``request.json_body`` echoed as JSON; invalid JSON is ``400``.
- ``POST /upload``: the body read from ``request.body_file`` in blocks, or with
  ``?mode=body`` through ``request.body`` (WebOb copies it to a seekable
  temporary file); answers its size and SHA-256.
- ``GET /stream?name=N&n=K``: an ``app_iter`` with ``close()``;
  ``GET /closes?name=N`` says how often that ``close()`` ran.
- ``POST /progress-upload?steps=S&pause=P``: streams ``S`` progress lines, ``P``
  seconds of work apart, then reads ``request.body_file`` and reports its size
  and SHA-256 (an import view that reports progress).
- ``GET /file``: a ``FileResponse`` (``wsgi.file_wrapper``, conditional:
  Range, If-None-Match, If-Modified-Since) with an ETag.
- ``GET /redirect``: ``HTTPFound`` to ``request.route_url("target")``;
  ``GET /target``: the request's URLs and ``client_addr`` as JSON.
- ``GET /cookie/set``, ``GET /cookie/get``: two cookies set, then read back.
- ``GET /boom?id=X``: raises ``RuntimeError("boom X")`` (no exception view).
- ``GET /release?name=N``: opens a stream's gate.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

from frameworks_common import CLOSES, GATES, data_path, serve, stream_chunks
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPBadRequest, HTTPFound
from pyramid.request import Request
from pyramid.response import FileResponse, Response

from asgishift.bridge import WSGIToASGI

BLOCK = 65536


def echo(request: Request) -> dict[str, Any]:
    """Echo the JSON body."""
    try:
        data = request.json_body
    except ValueError:
        raise HTTPBadRequest(json_body={"error": "invalid JSON body"}) from None
    return {"echo": data, "content_length": request.content_length}


def upload(request: Request) -> dict[str, Any]:
    """Hash the body, read the way ``?mode=`` says."""
    digest = hashlib.sha256()
    size = 0
    if request.GET.get("mode") == "body":
        body = request.body
        digest.update(body)
        size = len(body)
    else:
        stream = request.body_file
        while block := stream.read(BLOCK):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


class CountedChunks:
    """An ``app_iter`` with ``close()``: ``chunk-i;`` pieces, its closes counted by name."""

    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self._chunks = iter(stream_chunks(name, count))

    def __iter__(self) -> CountedChunks:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks).encode()

    def close(self) -> None:
        CLOSES.add(self.name)


def stream(request: Request) -> Response:
    """Stream ``chunk-i;`` pieces from an ``app_iter`` that counts its ``close()`` calls."""
    name = request.GET["name"]
    count = int(request.GET.get("n", "3"))
    return Response(app_iter=CountedChunks(name, count), content_type="text/plain")


def closes(request: Request) -> dict[str, int]:
    """Report how often the ``app_iter`` of stream ``?name=`` was closed."""
    return {"closes": CLOSES.get(request.GET["name"])}


def progress_upload(request: Request) -> Response:
    """Stream progress lines while importing the upload: some steps first, then the body."""
    steps = int(request.GET.get("steps", "2"))
    pause = float(request.GET.get("pause", "0.05"))
    body_file = request.body_file

    def progress() -> Iterator[bytes]:
        for step in range(steps):
            yield f"preparing {step}\n".encode()
            time.sleep(pause)  # the work of a step (opening a database transaction, say)
        digest = hashlib.sha256()
        size = 0
        while block := body_file.read(BLOCK):
            digest.update(block)
            size += len(block)
        yield f"imported {size} {digest.hexdigest()}\n".encode()

    return Response(app_iter=progress(), content_type="text/plain")


def release(request: Request) -> Response:
    """Open the gate ``?name=``."""
    GATES.release(request.GET["name"])
    return Response("released", content_type="text/plain")


def file(request: Request) -> FileResponse:
    """Serve ``data.bin`` with an ETag."""
    path = data_path()
    response = FileResponse(path, request=request, content_type="application/octet-stream")
    stat = os.stat(path)
    response.etag = f"{int(stat.st_mtime):x}-{stat.st_size:x}"
    return response


def redirect(request: Request) -> HTTPFound:
    """Redirect to the target route, by its absolute URL."""
    return HTTPFound(location=request.route_url("target"))


def target(request: Request) -> dict[str, Any]:
    """Report the URLs WebOb builds from the environ."""
    return {
        "url": request.url,
        "host_url": request.host_url,
        "application_url": request.application_url,
        "script_name": request.script_name,
        "path_info": request.path_info,
        "client_addr": request.client_addr,
        "scheme": request.scheme,
    }


def cookie_set(request: Request) -> Response:
    """Set two cookies."""
    response = Response("cookies set", content_type="text/plain")
    response.set_cookie("session", "abc123", httponly=True, samesite="Lax")
    response.set_cookie("theme", "dark", max_age=3600)
    return response


def cookie_get(request: Request) -> dict[str, Any]:
    """Return the cookies the client sent."""
    return dict(request.cookies)


def boom(request: Request) -> Response:
    """Fail with no exception view to catch it."""
    raise RuntimeError(f"boom {request.GET.get('id', '')}")


def make_app() -> Any:
    """Build the Pyramid WSGI app."""
    with Configurator() as config:
        routes = {
            "echo": ("/echo", echo, "json", "POST"),
            "upload": ("/upload", upload, "json", "POST"),
            "stream": ("/stream", stream, None, "GET"),
            "release": ("/release", release, None, "GET"),
            "closes": ("/closes", closes, "json", "GET"),
            "progress_upload": ("/progress-upload", progress_upload, None, "POST"),
            "file": ("/file", file, None, ("GET", "HEAD")),
            "redirect": ("/redirect", redirect, None, "GET"),
            "target": ("/target", target, "json", "GET"),
            "cookie_set": ("/cookie/set", cookie_set, None, "GET"),
            "cookie_get": ("/cookie/get", cookie_get, "json", "GET"),
            "boom": ("/boom", boom, None, "GET"),
        }
        for name, (pattern, view, renderer, methods) in routes.items():
            config.add_route(name, pattern)
            config.add_view(view, route_name=name, renderer=renderer, request_method=methods)
        return config.make_wsgi_app()


wsgi_app = serve(make_app())
app = WSGIToASGI(wsgi_app)
