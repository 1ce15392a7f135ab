"""A WSGI app that returns file wrappers other than the bridge's (live tests).

``/file?wrapper=wsgiref|werkzeug&size=N&status=S`` answers status ``S`` with an
``N``-byte in-memory file wrapped in ``wsgiref.util.FileWrapper`` or
``werkzeug.wsgi.FileWrapper`` (what an app builds itself, or Werkzeug's
``wrap_file`` without a ``wsgi.file_wrapper``); ``/_state?id=X`` returns how
often request ``X``'s file was read and closed, as JSON.
"""

from __future__ import annotations

import io
import json
import threading
import wsgiref.util
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

import werkzeug.wsgi

from asgishift.bridge import WSGIToASGI

_lock = threading.Lock()
_counts: dict[str, dict[str, int]] = {}
_WRAPPERS: dict[str, Any] = {
    "wsgiref": wsgiref.util.FileWrapper,
    "werkzeug": werkzeug.wsgi.FileWrapper,
}


class CountingFile(io.BytesIO):
    """An in-memory file that counts its ``read`` and ``close`` calls under a test id."""

    def __init__(self, size: int, test_id: str) -> None:
        super().__init__(b"f" * size)
        self.test_id = test_id
        with _lock:
            _counts[test_id] = {"reads": 0, "closes": 0}

    def read(self, size: int | None = -1, /) -> bytes:
        """Read like :meth:`io.BytesIO.read`, counting the call."""
        with _lock:
            _counts[self.test_id]["reads"] += 1
        return super().read(size)

    def close(self) -> None:
        """Close, counting the call."""
        with _lock:
            _counts[self.test_id]["closes"] += 1
        super().close()


def router(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Serve ``/file`` and ``/_state`` (see the module docstring)."""
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ["PATH_INFO"] == "/_state":
        with _lock:
            body = json.dumps(_counts.get(query["id"])).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    size = int(query["size"])
    file = CountingFile(size, query["id"])
    start_response(query.get("status", "200 OK"), [("Content-Length", str(size))])
    return _WRAPPERS[query["wrapper"]](file, 8192)  # type: ignore[no-any-return]


# No wsgiref.validate here: its iterator wrapper would hide the file wrapper's type
# from the bridge, which is what these tests are about (bridge_apps.raw_app likewise).
app = WSGIToASGI(router)
