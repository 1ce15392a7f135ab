"""Large bodies both ways, and a server-sent-events stream.

* ``POST /files/upload?name=...`` streams the raw request body to disk in
  64 KiB chunks (never the whole body in memory) and answers with its size
  and SHA-256.
* ``GET /files/uploads/<name>`` sends an uploaded file back.
* ``GET /files/large`` sends a generated file of ``DOWNLOAD_SIZE`` bytes with
  ``send_file`` (created on first use).
* ``GET /events`` streams server-sent events from a generator.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    request,
    send_file,
    send_from_directory,
    stream_with_context,
)
from flask.typing import ResponseReturnValue

bp = Blueprint("files", __name__)

CHUNK = 64 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


@bp.post("/files/upload")
def upload() -> ResponseReturnValue:
    """Write the request body to the upload folder as it arrives.

    Query parameter ``name``: file name (letters, digits, ``.``, ``_``, ``-``).
    Responds 201 with ``{"name", "bytes", "sha256"}``.
    """
    name = request.args.get("name", "")
    if not _SAFE_NAME.match(name) or name in {".", ".."}:
        abort(400, description="pass ?name= with letters, digits, '.', '_' or '-' only")
    digest = hashlib.sha256()
    size = 0
    folder = _upload_dir()
    # Write to a temporary file and rename, so a failed upload never leaves a
    # truncated file under the final name.
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = request.stream.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        os.replace(tmp_name, folder / name)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    current_app.logger.info("stored upload %s: %d bytes", name, size)
    return {"name": name, "bytes": size, "sha256": digest.hexdigest()}, 201


@bp.get("/files/uploads/<name>")
def uploaded(name: str) -> ResponseReturnValue:
    """Send back a file stored by :func:`upload`."""
    return send_from_directory(_upload_dir(), name, as_attachment=True)


def _generate(path: Path, size: int) -> None:
    """Write ``size`` deterministic pseudo-random bytes to ``path`` atomically."""
    rng = random.Random(size)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".large-")
    with os.fdopen(fd, "wb") as out:
        remaining = size
        while remaining:
            step = min(remaining, 1024 * 1024)
            out.write(rng.randbytes(step))
            remaining -= step
    # Two workers may race here; both write identical bytes, last rename wins.
    os.replace(tmp_name, path)


@bp.get("/files/large")
def large() -> ResponseReturnValue:
    """Send a ``DOWNLOAD_SIZE``-byte file with ``send_file`` (conditional, with ranges)."""
    size = int(current_app.config["DOWNLOAD_SIZE"])
    path = Path(current_app.instance_path) / f"large-{size}.bin"
    if not path.exists():
        _generate(path, size)
    return send_file(path, as_attachment=True, download_name="large.bin", conditional=True)


@bp.get("/events")
def events() -> ResponseReturnValue:
    """Stream ``?count=`` server-sent events (default 10), ``?interval=`` seconds apart."""
    count = request.args.get("count", 10, type=int)
    interval = request.args.get("interval", current_app.config["SSE_INTERVAL"], type=float)
    if not 0 < count <= 1000 or not 0 <= interval <= 60:
        abort(400, description="count must be 1..1000 and interval 0..60 seconds")

    def stream() -> Iterator[str]:
        yield "retry: 5000\n\n"
        for number in range(1, count + 1):
            payload = {"n": number, "of": count, "time": time.time()}
            yield f"id: {number}\nevent: tick\ndata: {json.dumps(payload)}\n\n"
            if number < count and interval:
                time.sleep(interval)
        yield "event: done\ndata: {}\n\n"

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    # Tell proxies such as nginx not to buffer the stream.
    response.headers["X-Accel-Buffering"] = "no"
    return response
