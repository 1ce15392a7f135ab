"""A small Bottle app for the live tests, written as Bottle users write one.

``app`` is the ASGI app (``WSGIToASGI`` around the validated WSGI app),
``wsgi_app`` the same WSGI app for gunicorn. Routes (see ``frameworks_common``):

- ``POST /echo``: ``request.json`` echoed; invalid JSON is Bottle's ``400``.
- ``POST /upload``: ``request.body`` (spooled to a temporary file past
  ``MEMFILE_MAX``) read in blocks; its size and SHA-256.
- ``GET /stream?name=N&n=K``: a generator of ``str``.
- ``GET /file``: ``static_file`` (``wsgi.file_wrapper``, Range, ETag,
  If-None-Match, If-Modified-Since).
- ``GET /redirect``: ``redirect(app.get_url("target"))``;
  ``GET /target``: the request's URLs and client addresses as JSON.
- ``GET /cookie/set``, ``GET /cookie/get``; ``GET /bad`` is ``abort(400, ...)``;
  ``GET /boom?id=X`` raises.
- ``GET /release?name=N``: opens a stream's gate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import bottle
from bottle import abort, redirect, request, response, static_file
from frameworks_common import FILE_NAME, GATES, files_dir, serve, stream_chunks

from asgishift.bridge import WSGIToASGI

BLOCK = 65536

application = bottle.Bottle()


@application.post("/echo")
def echo() -> dict[str, Any]:
    return {"echo": request.json, "content_length": request.content_length}


@application.post("/upload")
def upload() -> dict[str, Any]:
    body = request.body
    digest = hashlib.sha256()
    size = 0
    while block := body.read(BLOCK):
        digest.update(block)
        size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


@application.get("/stream")
def stream() -> Iterator[str]:
    response.content_type = "text/plain"
    return iter(stream_chunks(request.query["name"], int(request.query.get("n", "3"))))


@application.get("/release")
def release() -> str:
    GATES.release(request.query["name"])
    return "released"


@application.route("/file", method=["GET", "HEAD"])
def file() -> Any:
    return static_file(FILE_NAME, root=files_dir(), mimetype="application/octet-stream")


@application.get("/redirect")
def go() -> None:
    redirect(application.get_url("target"))


@application.get("/target", name="target")
def target() -> dict[str, Any]:
    return {
        "url": request.url,
        "script_name": request.script_name,
        "path": request.path,
        "fullpath": request.fullpath,
        "remote_addr": request.remote_addr,
        "client": request.remote_route[0],
        "urlparts": list(request.urlparts),
    }


@application.get("/cookie/set")
def cookie_set() -> str:
    response.set_cookie("session", "abc123", httponly=True, samesite="lax")
    response.set_cookie("theme", "dark", max_age=3600)
    return "cookies set"


@application.get("/cookie/get")
def cookie_get() -> dict[str, Any]:
    return dict(request.cookies)


@application.get("/bad")
def bad() -> None:
    abort(400, "bad input from the client")


@application.get("/boom")
def boom() -> None:
    raise RuntimeError(f"boom {request.query.get('id', '')}")


wsgi_app = serve(application)
app = WSGIToASGI(wsgi_app)
