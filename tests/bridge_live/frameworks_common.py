"""What the Pyramid, Falcon and Bottle live apps share (pure stdlib).

Each framework app (``frameworks_pyramid``, ``frameworks_falcon``,
``frameworks_bottle``) serves the same routes, written the way that framework's
users write them; the tests in ``test_frameworks_live.py`` send the same
requests to all three. This module holds the parts that are not about the
framework: the file the file routes serve, the gates a streamed response waits
on, and the wrapping of the app for the bridge and for gunicorn.

- The file is ``data.bin`` in the directory named by :data:`FILES_DIR_VARIABLE`,
  written by the tests before the servers start (:func:`write_data_file`).
- ``/stream?name=N&n=K`` yields ``chunk-0;`` at once and each ``chunk-i;`` after
  ``/release?name=N-i``, so a test can prove each chunk arrived before the next
  was produced, without sleeping.
- A request with the header ``X-Raw-WSGI: 1`` bypasses :mod:`wsgiref.validate`
  (whose iterator wrapper hides a file wrapper's type from the bridge); every
  other request goes through it.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

#: Environment variable naming the directory with ``data.bin``.
FILES_DIR_VARIABLE = "FRAMEWORK_FILES_DIR"
#: The served file's name and size (bytes): several bridge blocks long.
FILE_NAME = "data.bin"
FILE_SIZE = 300_000
#: Seconds a streamed response waits for its gate before it gives up.
GATE_TIMEOUT = 20.0

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def data_bytes() -> bytes:
    """Return the content of ``data.bin``: fixed pseudo-random bytes."""
    return random.Random(20240607).randbytes(FILE_SIZE)


def write_data_file(directory: Path) -> Path:
    """Write ``data.bin`` into ``directory`` and return its path."""
    path = directory / FILE_NAME
    path.write_bytes(data_bytes())
    return path


def files_dir() -> str:
    """Return the directory the file routes serve (from :data:`FILES_DIR_VARIABLE`)."""
    return os.environ[FILES_DIR_VARIABLE]


def data_path() -> str:
    """Return the absolute path of ``data.bin``."""
    return os.path.join(files_dir(), FILE_NAME)


class Gates:
    """Named one-shot events: a streamed response waits, a ``/release`` request opens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def _event(self, name: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def wait(self, name: str) -> bool:
        """Wait until ``name`` is released (at most :data:`GATE_TIMEOUT` seconds)."""
        return self._event(name).wait(GATE_TIMEOUT)

    def release(self, name: str) -> None:
        """Open the gate ``name``."""
        self._event(name).set()


GATES = Gates()


class Counts:
    """Thread-safe counts by name (how often an ``app_iter``'s ``close()`` ran, say)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, name: str) -> None:
        """Count one more for ``name``."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + 1

    def get(self, name: str) -> int:
        """Return the count for ``name`` (0 if never counted)."""
        with self._lock:
            return self._counts.get(name, 0)


CLOSES = Counts()


class FileOffsets:
    """Where an app's open file stands once the server is done with it.

    :meth:`watch` keeps a duplicate of the file's descriptor, which shares its
    offset: :meth:`offset` then tells how far the server read the file, even
    after the file was closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}

    def watch(self, name: str, fileno: int) -> None:
        """Keep a duplicate of descriptor ``fileno`` under ``name``."""
        with self._lock:
            self._fds[name] = os.dup(fileno)

    def offset(self, name: str) -> int:
        """Return the offset of ``name``'s file and forget it (-1 if unknown)."""
        with self._lock:
            fd = self._fds.pop(name, None)
        if fd is None:
            return -1
        try:
            return os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            os.close(fd)


FILE_OFFSETS = FileOffsets()


def stream_chunks(name: str, count: int) -> Iterable[str]:
    """Yield ``chunk-i;`` for ``i < count``; each after the first waits for ``name-i``."""
    for i in range(count):
        if i and not GATES.wait(f"{name}-{i}"):
            yield "timeout;"
            return
        yield f"chunk-{i};"


def serve(raw: WSGIApp) -> WSGIApp:
    """Return ``raw`` behind :mod:`wsgiref.validate`, unless the request says ``X-Raw-WSGI``."""
    validated = validator(raw)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("HTTP_X_RAW_WSGI"):
            return raw(environ, start_response)
        return validated(environ, start_response)  # type: ignore[no-any-return]

    return app
