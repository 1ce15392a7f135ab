"""Where ORM work from async code runs: the request's thread, or a bounded pool.

The routing core of :mod:`asgishift.django_integration.db` (see its module
doc). A thread-sensitive target exists inside a request (Django's handler or
asgishift's bounded handler entered a ``ThreadSensitiveContext``), inside an
``aatomic`` block, and in async code called through ``async_to_sync`` from a
sync thread. Everywhere else asgiref would use its one process-wide thread;
here the work goes to :func:`orm_lanes` instead.

See https://docs.djangoproject.com/en/stable/topics/async/#sync-to-async and
https://docs.djangoproject.com/en/stable/ref/databases/#persistent-connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections

from asgishift.django_integration._executors import ExecutorPool
from asgishift.django_integration.signals import asgi_shutdown

_P = ParamSpec("_P")
_R = TypeVar("_R")

logger = logging.getLogger("asgishift.django.db")

#: Default number of ORM threads outside requests (``settings.ASGISHIFT_ORM_THREADS``).
DEFAULT_LANES = min(32, (os.cpu_count() or 1) + 4)

# True while an aatomic() block outside a request holds a pool lane: calls in
# the block are thread-sensitive (they go to that lane) but get pool hygiene.
on_pool_lane: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "asgishift_on_pool_lane", default=False
)

_lanes_lock = threading.Lock()
_lanes: ExecutorPool | None = None


def orm_lanes() -> ExecutorPool:
    """Return the process's pool of ORM threads, creating it on first use.

    Its size is ``settings.ASGISHIFT_ORM_THREADS`` (default
    ``min(32, os.cpu_count() + 4)``); at most that many connections per
    database alias are open from work outside requests.

    :raise django.core.exceptions.ImproperlyConfigured: when the setting is not
        a positive integer.
    """
    global _lanes
    with _lanes_lock:
        if _lanes is None:
            size = getattr(settings, "ASGISHIFT_ORM_THREADS", DEFAULT_LANES)
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(
                    f"ASGISHIFT_ORM_THREADS must be a positive integer, got {size!r}"
                )
            _lanes = ExecutorPool(size)
        return _lanes


def shutdown_orm_lanes() -> None:
    """Close every pool thread's database connections and stop the threads.

    Call at lifespan shutdown (the ``asgi_shutdown`` signal does it when the
    app is installed). A later :func:`db_sync_to_async` call starts a new pool.
    """
    global _lanes
    with _lanes_lock:
        lanes, _lanes = _lanes, None
    if lanes is not None:
        lanes.run_on_every_thread(close_thread_connections)
        lanes.shutdown()


def close_thread_connections() -> None:
    """Close every database connection of this thread before the thread ends.

    Unlike ``connections.close_all()`` this also closes in-memory SQLite
    connections, which Django's ``close()`` keeps open (closing one drops the
    database unless another connection shares it); a thread that ends would
    otherwise leave the connection to the garbage collector.
    """
    for conn in connections.all(initialized_only=True):
        conn.close()
        if conn.connection is not None:
            conn.connection.close()
            conn.connection = None


def close_stale_connections(*, obsolete: bool = True) -> None:
    """Close this thread's connections that are broken or past ``CONN_MAX_AGE``.

    Connections inside an ``atomic`` block are left alone (closing one would
    lose the transaction). Runs on the thread that owns the connections.

    :param obsolete: also close connections past their maximum age; when
        false only those on which an error occurred and that fail Django's
        usability check are closed.
    """
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue
        if obsolete or conn.errors_occurred:
            conn.close_if_unusable_or_obsolete()


def hygienic(func: Callable[..., _R], args: Sequence[Any], kwargs: dict[str, Any]) -> _R:
    """Call ``func(*args, **kwargs)`` on this thread, closing stale connections around it.

    On a pool lane broken and expired connections are closed; elsewhere only
    broken ones (Django's request signals handle expiry there).
    """
    obsolete = on_pool_lane.get()
    close_stale_connections(obsolete=obsolete)
    try:
        return func(*args, **kwargs)
    finally:
        close_stale_connections(obsolete=obsolete)


def has_thread_sensitive_target() -> bool:
    """Return whether a thread-sensitive call here reaches a request's thread.

    True inside a request (Django's handler or asgishift's bounded handler
    entered a ``ThreadSensitiveContext``), inside an ``aatomic`` block, or in
    async code called through ``async_to_sync`` from a sync thread. False where
    asgiref would fall back to its single process-wide thread.
    """
    if getattr(AsyncToSync.executors, "current", None) is not None:
        return True
    if SyncToAsync.thread_sensitive_context.get(None) is not None:
        return True
    return asyncio.get_running_loop() in AsyncToSync.loop_thread_executors


async def thread_sensitive(
    func: Callable[..., _R], args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[bool, _R | None]:
    """Run on the thread-sensitive target; ``(False, None)`` when it is gone.

    A task that outlived the request it was created in still carries the
    request's (exited) context; asgiref refuses such calls with RuntimeError
    before running anything, and the caller then uses the pool.
    """
    ran = False

    def call() -> _R:
        nonlocal ran
        ran = True
        return hygienic(func, args, kwargs)

    try:
        return True, await sync_to_async(call, thread_sensitive=True)()
    except RuntimeError:
        if ran:
            raise
        logger.debug("request thread gone; running %r on the ORM pool", func)
        return False, None


async def run(func: Callable[..., _R], args: Sequence[Any], kwargs: dict[str, Any]) -> _R:
    """Run ``func(*args, **kwargs)`` in one thread hop: the request's thread, else a lane.

    :return: what ``func`` returns.
    :raise: what ``func`` raises.
    """
    if has_thread_sensitive_target():
        done, result = await thread_sensitive(func, args, kwargs)
        if done:
            return result  # type: ignore[return-value]
    lanes = orm_lanes()
    lane = await lanes.acquire()
    token = on_pool_lane.set(True)
    try:
        runner = sync_to_async(hygienic, thread_sensitive=False, executor=lane)
        return await runner(func, args, kwargs)
    finally:
        on_pool_lane.reset(token)
        lanes.release(lane)


def db_sync_to_async(func: Callable[_P, _R]) -> Callable[_P, Awaitable[_R]]:
    """Wrap sync ORM code so async code can await it: ``@db_sync_to_async`` or a call.

    ``await db_sync_to_async(fn)(*args, **kwargs)`` runs ``fn`` on the request's
    thread-sensitive executor inside a request or an :func:`aatomic` block, and
    on a bounded pool of long-lived threads (:func:`orm_lanes`) anywhere else,
    closing broken and expired connections around it (see the module doc).

    :param func: a sync callable; methods work too (the wrapper is a function).
    :return: a coroutine function with ``func``'s signature.
    :raise: whatever ``func`` raises, unchanged.
    """

    @functools.wraps(func)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await run(func, args, kwargs)

    return wrapper


def _close_orm_pool_at_shutdown(sender: object, **kwargs: object) -> None:
    """``asgi_shutdown`` receiver: close the pool threads' connections, stop the threads."""
    shutdown_orm_lanes()


asgi_shutdown.connect(_close_orm_pool_at_shutdown, dispatch_uid="asgishift.orm_pool")
