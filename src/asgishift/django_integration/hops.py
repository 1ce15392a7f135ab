"""Count thread hops: calls that cross between the event loop and a thread.

A hop is one ``sync_to_async`` call (loop → thread) or one ``async_to_sync``
call (thread → loop), asgiref's two bridges; the bounded handler's own
loop → thread hop (:class:`~asgishift.django_integration._executors.ThreadHop`)
counts as a ``sync_to_async`` call. Each costs a context switch and,
on an idle CPU, a wake-up. Used by the tests and ``benchmarks/django_bench.py``
to compare handlers; it patches asgiref's classes while active, so use it
only in tests and measurements, never in a serving process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync

from asgishift.django_integration._executors import ThreadHop


@dataclass
class HopCount:
    """Hops counted so far: ``to_thread`` (sync_to_async), ``to_loop`` (async_to_sync)."""

    to_thread: int = 0
    to_loop: int = 0

    @property
    def total(self) -> int:
        """Both directions together."""
        return self.to_thread + self.to_loop


_lock = threading.Lock()


@contextmanager
def count_hops() -> Iterator[HopCount]:
    """Count every asgiref hop made in this process inside the ``with`` block.

    :raise RuntimeError: when nested (the patch is process-wide).
    """
    if not _lock.acquire(blocking=False):
        raise RuntimeError("count_hops() is already active in this process")
    count = HopCount()
    to_thread, to_loop = SyncToAsync.__call__, AsyncToSync.__call__
    hop = ThreadHop.__call__

    async def counted_to_thread(self: Any, *args: Any, **kwargs: Any) -> Any:
        count.to_thread += 1
        return await to_thread(self, *args, **kwargs)

    async def counted_hop(self: Any, *args: Any, **kwargs: Any) -> Any:
        count.to_thread += 1
        return await hop(self, *args, **kwargs)

    def counted_to_loop(self: Any, *args: Any, **kwargs: Any) -> Any:
        count.to_loop += 1
        return to_loop(self, *args, **kwargs)

    SyncToAsync.__call__ = counted_to_thread  # type: ignore[method-assign]
    AsyncToSync.__call__ = counted_to_loop  # type: ignore[method-assign]
    ThreadHop.__call__ = counted_hop  # type: ignore[method-assign]
    try:
        yield count
    finally:
        SyncToAsync.__call__ = to_thread  # type: ignore[method-assign]
        AsyncToSync.__call__ = to_loop  # type: ignore[method-assign]
        ThreadHop.__call__ = hop  # type: ignore[method-assign]
        _lock.release()


__all__ = ["HopCount", "count_hops"]
