"""The settings of :class:`~asgishift.bridge.ASGIToWSGI`: one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from asgishift.bridge._loop_thread import LoopKind

__all__ = ["ASGIToWSGIOptions"]


@dataclass(frozen=True)
class ASGIToWSGIOptions:
    """Settings of :class:`ASGIToWSGI`; one frozen object, shared by every request.

    :param response_timeout: seconds the app may take to send
        ``http.response.start``, counted from the call and counted again from
        each request-body chunk the app receives (a slow upload is the client's
        time, not the app's); past it the app's task is cancelled and the
        client gets ``504 Gateway Timeout``. ``None`` waits for ever. A response
        that has started may stream for as long as it likes (SSE).
    :param disconnect_grace: seconds an app may keep running after the WSGI
        server closed the response early (the client went away); its
        ``receive()`` returns ``http.disconnect`` at once, and its task is
        cancelled when the grace is over.
    :param background_timeout: seconds the app's task may keep running after it
        sent its last body message (e.g. Starlette background tasks); the WSGI
        server's thread waits for it in ``close()``, then cancels it.
    :param chunk_size: bytes read from ``wsgi.input`` per ``receive()``. A body
        with a ``Content-Length`` up to this size is read before the app starts.
    :param send_buffer: bytes of response body the app may send before ``send()``
        waits for the WSGI server to take them (backpressure).
    :param lifespan: ``"auto"``, ``"on"`` or ``"off"``; see
        :class:`~asgishift.bridge._asgi_lifespan.LifespanSettings`.
    :param startup_timeout: seconds to wait for lifespan startup.
    :param shutdown_timeout: seconds to wait for lifespan shutdown at exit.
    :param file_block_size: bytes per block for ``wsgi.file_wrapper``.
    :param exit_reserve: seconds of gunicorn's ``graceful_timeout`` kept for a
        stopping worker's exit. When a gunicorn worker stops (``SIGTERM``,
        ``--max-requests``), requests still open (a server-sent event stream)
        ``max(graceful_timeout - exit_reserve, graceful_timeout / 2)`` seconds later
        are cancelled, so that their clean-up and the app's lifespan shutdown run
        before the master kills the worker at ``graceful_timeout``. The largest value
        of the process's ``ASGIToWSGI`` apps counts.
    :param loop: the process's event loop: ``"auto"`` (uvloop when installed),
        ``"asyncio"`` or ``"uvloop"``. One loop serves every ``ASGIToWSGI`` of a
        process; the first one to serve a request chooses it.
    """

    response_timeout: float | None = 60.0
    disconnect_grace: float = 1.0
    background_timeout: float = 30.0
    chunk_size: int = 64 * 1024
    send_buffer: int = 256 * 1024
    lifespan: Literal["auto", "on", "off"] = "auto"
    startup_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    file_block_size: int = 256 * 1024
    exit_reserve: float = 2.0
    loop: LoopKind = "auto"

    def __post_init__(self) -> None:
        for name in (
            "disconnect_grace",
            "background_timeout",
            "startup_timeout",
            "shutdown_timeout",
            "exit_reserve",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"ASGIToWSGIOptions.{name} must be >= 0 seconds")
        if self.response_timeout is not None and self.response_timeout <= 0:
            raise ValueError("ASGIToWSGIOptions.response_timeout must be > 0 seconds or None")
        if self.chunk_size < 1 or self.send_buffer < 1 or self.file_block_size < 1:
            raise ValueError("chunk_size, send_buffer and file_block_size must be >= 1 byte")
        if self.loop not in ("auto", "asyncio", "uvloop"):
            raise ValueError(f"loop must be 'auto', 'asyncio' or 'uvloop', not {self.loop!r}")
        if self.lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {self.lifespan!r}")
