"""The one declaration of :class:`~asgishift.bridge.WSGIToASGI`'s options.

Everything that needs the options (the bridge, its request hand-off, the
``asgishift serve`` configuration, the docs table) reads them from
:class:`BridgeOptions`, so a name, default or range is written once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["BridgeOptions"]


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    """Settings of one :class:`~asgishift.bridge.WSGIToASGI` (frozen: build a new one to change).

    ``WSGIToASGI(app, BridgeOptions(max_workers=8))`` and
    ``WSGIToASGI(app, max_workers=8)`` are the same; :meth:`replace` derives a
    changed copy. The options are fixed when the bridge is built: its worker
    pool is sized from them, so a bridge never changes them afterwards.

    :raise ValueError: from ``__post_init__`` for a value out of range; the
        message names the field.

    Follows PEP 3333 (the app side) and the ASGI 3 HTTP spec (the server side).
    """

    max_workers: int = 40
    """The most worker threads running the WSGI app at once (≥ 1), like gunicorn's
    ``--threads``."""

    max_queue: int = 200
    """How many requests may wait for a free worker (≥ 0); the next one gets ``503`` at once."""

    max_body_size: int | None = None
    """The largest request body accepted (bytes, ≥ 0); larger ones get ``413``.
    ``None``: no limit."""

    request_timeout: float | None = None
    """Seconds (> 0) from dispatch, queueing included, until the response headers are sent;
    past it the client gets ``504``. ``None``: no limit."""

    retry_after: int = 1
    """The ``Retry-After`` value of ``503`` responses (seconds, ≥ 0)."""

    buffer_size: int = 65536
    """The largest request body collected on the loop before dispatch, and the largest
    complete response sent in one message (bytes, ≥ 0)."""

    shutdown_timeout: float | None = 30.0
    """Seconds (≥ 0) the ASGI lifespan shutdown waits for running requests. ``None``: for ever.
    ``asgishift serve`` and ``manage.py runasgi`` also give the server this long for open
    connections (streams included, ASGI apps too): it closes those still open, then the
    lifespan shutdown runs. Under ``asgishift serve`` daphne closes them at once, and
    granian kills a worker still busy after it (whole seconds, at least 1) without its
    lifespan shutdown."""

    drain_body_size: int = 1048576
    """The most unread request body bytes (≥ 0) read and dropped after the response so the
    keep-alive connection stays usable; when more are left the response carries
    ``Connection: close`` instead."""

    drain_timeout: float = 1.0
    """The longest time (seconds, ≥ 0) spent draining an unread request body."""

    multiprocess: bool | None = None
    """Whether another process may run the same app at the same time: the environ's
    ``wsgi.multiprocess`` (PEP 3333 "environ Variables"). ``None``: not known, and the
    environ says ``True``, the safe answer (an app that keeps state in memory must not
    take itself for the only process). ``asgishift serve`` knows its worker count."""

    def __post_init__(self) -> None:
        """Check every field's type and range.

        :raise ValueError: naming the first field that is out of range.
        """
        _check_int("max_workers", self.max_workers, 1)
        _check_int("max_queue", self.max_queue, 0)
        if self.max_body_size is not None:
            _check_int("max_body_size", self.max_body_size, 0)
        if self.request_timeout is not None:
            _check_number("request_timeout", self.request_timeout)
            if not self.request_timeout > 0:
                raise ValueError(f"request_timeout must be None or > 0, got {self.request_timeout}")
        _check_int("retry_after", self.retry_after, 0)
        _check_int("buffer_size", self.buffer_size, 0)
        if self.shutdown_timeout is not None:
            _check_number("shutdown_timeout", self.shutdown_timeout)
        _check_int("drain_body_size", self.drain_body_size, 0)
        _check_number("drain_timeout", self.drain_timeout)
        if self.multiprocess is not None and type(self.multiprocess) is not bool:
            raise ValueError(f"multiprocess must be None, True or False, got {self.multiprocess!r}")

    def replace(self, **changes: Any) -> BridgeOptions:
        """Return a copy with ``changes`` applied (checked again).

        :param changes: field names and new values.
        :raise TypeError: for an unknown field name.
        :raise ValueError: for a value out of range.
        """
        return dataclasses.replace(self, **changes)


def _check_int(name: str, value: object, minimum: int) -> None:
    """Raise ValueError unless ``value`` is an ``int`` (not ``bool``) of at least ``minimum``."""
    if type(value) is bool or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")


def _check_number(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a finite real number ≥ 0."""
    if type(value) is bool or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be ≥ 0 and finite, got {value}")
