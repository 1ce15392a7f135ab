"""What uWSGI offers a WSGI app beyond PEP 3333, for ``ASGIToWSGI``.

uWSGI hands out the client's socket through ``uwsgi.connection_fd()`` (where
gunicorn puts ``gunicorn.socket`` in the environ), and reads a chunked request
body only through ``uwsgi.chunked_read()``: it sets no ``wsgi.input_terminated``,
and its ``wsgi.input`` ends where ``CONTENT_LENGTH`` (absent) says. The ``uwsgi``
module exists only inside a uWSGI process, which marks each environ with
``uwsgi.version``.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = [
    "ChunkedInput",
    "chain_atexit",
    "connection_fd",
    "reads_chunked_bodies",
    "runs_without_threads",
    "under_uwsgi",
]


def under_uwsgi(environ: Mapping[str, Any]) -> bool:
    """Return whether ``environ`` comes from uWSGI (it sets ``uwsgi.version``)."""
    return "uwsgi.version" in environ


@functools.cache
def _module() -> ModuleType | None:
    try:
        return importlib.import_module("uwsgi")
    except ImportError:
        return None


def connection_fd() -> Callable[[], int] | None:
    """Return ``uwsgi.connection_fd``: called in a request's thread, its client socket's descriptor.

    :return: ``None`` outside uWSGI, or where this uWSGI has no such function.
    """
    uwsgi = _module()
    found: Callable[[], int] | None = getattr(uwsgi, "connection_fd", None)
    return found


def runs_without_threads() -> bool:
    """Return whether this is a uWSGI process that keeps Python threads from running.

    uWSGI before 2.0.27, started without ``--enable-threads`` (or ``--threads``),
    holds the GIL between requests (``uwsgi.has_threads`` is 0): a thread of the
    app's own then runs only while a request is served.
    """
    if "uwsgi" not in sys.modules:  # not under uWSGI: do not import anything
        return False
    return not getattr(_module(), "has_threads", True)


def chain_atexit(hook: Callable[[], None]) -> None:
    """Have uWSGI run ``hook`` at a worker's exit, before what its ``uwsgi.atexit`` held.

    uWSGI calls ``uwsgi.atexit`` when a process ends, and then tears the
    interpreter down, which runs Python's own exit hooks; with
    ``--skip-atexit-teardown`` it skips that teardown, and with it every
    ``atexit`` and ``threading`` exit hook. ``hook`` must therefore be safe to
    run again from those. Does nothing outside uWSGI, or once done in this
    process tree.
    """
    global _chained
    if _chained or "uwsgi" not in sys.modules:
        return
    uwsgi = _module()
    if uwsgi is None:
        return
    previous: Callable[[], object] | None = getattr(uwsgi, "atexit", None)

    def at_exit() -> None:
        try:
            hook()
        finally:
            if previous is not None:
                previous()

    setattr(uwsgi, "atexit", at_exit)  # noqa: B010 - a module attribute uWSGI reads
    _chained = True


#: Whether :func:`chain_atexit` has set ``uwsgi.atexit`` (a fork keeps it set).
_chained = False


def reads_chunked_bodies() -> bool:
    """Return whether this process can read a chunked request body (``uwsgi.chunked_read``)."""
    return getattr(_module(), "chunked_read", None) is not None


class ChunkedInput:
    """A ``wsgi.input`` stand-in that reads a chunked request body through uWSGI.

    ``read()`` returns the body's next chunk as the client framed it (its size
    argument is a hint uWSGI cannot follow), and ``b""`` at the end of the body.
    Call it only from the request's own thread: uWSGI keeps the request per
    thread.

    :raise OSError: from ``read()``, when the client goes away mid-body (uWSGI
        raises ``IOError``).
    """

    __slots__ = ("_read", "done")

    def __init__(self) -> None:
        uwsgi = _module()
        if uwsgi is None:
            raise RuntimeError("ChunkedInput works only inside a uWSGI process")
        self._read: Callable[[], bytes] = uwsgi.chunked_read
        self.done = False

    def read(self, size: int = -1) -> bytes:
        """Return the next chunk of the body, ``b""`` once it has ended."""
        if self.done:
            return b""
        data = bytes(self._read())
        if not data:
            self.done = True
        return data
