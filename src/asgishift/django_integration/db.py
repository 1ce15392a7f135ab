"""Django ORM from async code: bounded thread hops, transactions, lazy relations.

Django's ``a``-prefixed ORM methods are ``sync_to_async(thread_sensitive=True)``
wrappers. Inside a request they run on the request's thread; anywhere else
(lifespan hooks, background tasks, WebSocket consumers) they all queue on one
process-wide thread. ``transaction.atomic`` cannot span ``await``\\ s, and a lazy
relation (``post.author``) raises ``SynchronousOnlyOperation``.

This module gives:

* :func:`db_sync_to_async`: run sync ORM code from async code, as a decorator
  or a call. Inside a request it runs on the request's thread-sensitive
  executor (the bounded handler's long-lived thread, or Django's per-request
  thread); outside a request on a bounded pool of long-lived threads
  (:func:`orm_lanes`, ``settings.ASGISHIFT_ORM_THREADS``), never on asgiref's
  single global thread. On the pool, connections that are unusable or past
  ``CONN_MAX_AGE`` are closed before and after each call (as Channels'
  ``database_sync_to_async`` does), so with default settings a pool thread holds
  no connection between calls; inside a request Django's ``request_started`` /
  ``request_finished`` signals do that and only broken connections are closed.
* :func:`aatomic`: ``async with aatomic(): ...`` runs every ORM call of the
  block (through :func:`db_sync_to_async` and Django's ``a``-methods) on one
  thread inside one ``transaction.atomic``; an exception or a cancellation rolls
  it back. Where ``django-async-backend`` is the alias's engine it defers to
  that package's native ``async_atomic``. :func:`run_in_transaction` covers the
  simple case of one sync function.
* :func:`arelated` / :func:`aprefetch`: load lazy relations in one hop and cache
  them on the instances.
* The async shortcuts and auth helpers Django 5.0 added, for every supported
  Django version (4.2 included): :func:`aget_object_or_404`,
  :func:`aget_list_or_404`, :func:`aget_user`, :func:`login_required`,
  :func:`permission_required`, :func:`user_passes_test`.

See https://docs.djangoproject.com/en/stable/topics/async/ and
https://docs.djangoproject.com/en/stable/topics/db/transactions/.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, SynchronousOnlyOperation
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Model, prefetch_related_objects

from asgishift.django_integration._auth import (
    aget_user,
    login_required,
    permission_required,
    user_passes_test,
)
from asgishift.django_integration._executors import ExecutorPool
from asgishift.django_integration._explain import (
    AsyncORMUsageError,
    explain,
    explain_sync_only,
    explained,
)
from asgishift.django_integration._hops import (
    close_stale_connections,
    close_thread_connections,
    db_sync_to_async,
    has_thread_sensitive_target,
    hygienic,
    on_pool_lane,
    orm_lanes,
    run,
    shutdown_orm_lanes,
    thread_sensitive,
)
from asgishift.django_integration.handler import executor_context

_P = ParamSpec("_P")
_R = TypeVar("_R")
_M = TypeVar("_M", bound=Model)


async def run_in_transaction(
    func: Callable[..., _R], *args: Any, using: str | None = None, **kwargs: Any
) -> _R:
    """Run ``func(*args, **kwargs)`` inside ``transaction.atomic(using)`` in one thread hop.

    :param func: a sync callable doing ORM work.
    :param using: the database alias of the transaction (``None``: ``default``);
        keyword-only, and not passed on to ``func``.
    :return: what ``func`` returns, after the commit.
    :raise: what ``func`` raises, after the rollback.
    """

    def atomically() -> _R:
        with transaction.atomic(using=using):
            return func(*args, **kwargs)

    return await run(atomically, (), {})


def _native_async_atomic(using: str | None) -> Any:
    """Return django-async-backend's ``async_atomic`` when the alias uses its engine."""
    alias = using or DEFAULT_DB_ALIAS
    engine = str(settings.DATABASES.get(alias, {}).get("ENGINE", ""))
    if not engine.startswith("django_async_backend."):
        return None
    if importlib.util.find_spec("django_async_backend") is None:
        return None
    from django_async_backend.db.transaction import (  # type: ignore[import-not-found]
        async_atomic,
    )

    return async_atomic


class AsyncAtomic:
    """The object :func:`aatomic` returns: an async context manager and a decorator.

    Entering runs ``transaction.atomic(using, savepoint, durable).__enter__()``
    on the thread that will run the block's ORM work: the request's thread
    inside a request, else a lane leased from :func:`orm_lanes` for the whole
    block (a ``ThreadSensitiveContext`` on that lane sends Django's
    ``a``-methods there too). Leaving commits, or rolls back when the block
    raised or was cancelled; the rollback finishes even if the task is
    cancelled again meanwhile.

    :param using: database alias (``None``: ``default``).
    :param savepoint: as for ``transaction.atomic``.
    :param durable: as for ``transaction.atomic``.
    """

    def __init__(self, using: str | None = None, savepoint: bool = True, durable: bool = False):
        self.using = using
        self.savepoint = savepoint
        self.durable = durable
        # (the atomic, what to undo on exit)
        self._entered: list[tuple[Any, contextlib.AsyncExitStack]] = []

    async def __aenter__(self) -> AsyncAtomic:
        native = _native_async_atomic(self.using)
        stack = contextlib.AsyncExitStack()
        try:
            if native is not None:
                block = native(using=self.using, savepoint=self.savepoint, durable=self.durable)
                await stack.enter_async_context(block)
                self._entered.append((None, stack))
                return self
            atomic = transaction.atomic(
                using=self.using, savepoint=self.savepoint, durable=self.durable
            )
            entered = False
            if has_thread_sensitive_target():
                entered, _ = await thread_sensitive(atomic.__enter__, (), {})
            if not entered:
                lanes = orm_lanes()
                lane = await lanes.acquire()
                stack.callback(lanes.release, lane)
                await stack.enter_async_context(executor_context(lane))
                stack.callback(on_pool_lane.reset, on_pool_lane.set(True))
                await sync_to_async(hygienic, thread_sensitive=True)(atomic.__enter__, (), {})
        except BaseException:
            await stack.aclose()
            raise
        self._entered.append((atomic, stack))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        atomic, stack = self._entered.pop()
        if atomic is None:  # django-async-backend's block
            await stack.__aexit__(exc_type, exc, tb)
            return
        try:

            def leave() -> None:
                try:
                    atomic.__exit__(exc_type, exc, tb)
                finally:
                    close_stale_connections(obsolete=on_pool_lane.get())

            # The exit must run on the block's thread even when this task is
            # cancelled again: a lost exit would leave the transaction open.
            leaving = asyncio.ensure_future(sync_to_async(leave, thread_sensitive=True)())
            cancelled = False
            while True:
                try:
                    await asyncio.shield(leaving)
                    break
                except asyncio.CancelledError:
                    if leaving.done():
                        raise
                    cancelled = True
            if cancelled:
                raise asyncio.CancelledError
        finally:
            await stack.aclose()
        if isinstance(exc, SynchronousOnlyOperation) and not isinstance(exc, AsyncORMUsageError):
            raise explain(exc) from exc

    def __call__(self, func: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
        """Decorate a coroutine function: each call runs in its own ``aatomic`` block."""

        @functools.wraps(func)
        async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            async with AsyncAtomic(self.using, self.savepoint, self.durable):
                return await func(*args, **kwargs)

        return wrapper


@overload
def aatomic(using: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]: ...


@overload
def aatomic(
    using: str | None = None, savepoint: bool = True, durable: bool = False
) -> AsyncAtomic: ...


def aatomic(
    using: str | Callable[_P, Awaitable[_R]] | None = None,
    savepoint: bool = True,
    durable: bool = False,
) -> AsyncAtomic | Callable[_P, Awaitable[_R]]:
    """Async ``transaction.atomic``: ``async with aatomic(): ...`` or ``@aatomic``.

    See :class:`AsyncAtomic`. Inside the block use :func:`db_sync_to_async`,
    Django's ``a``-methods, :func:`arelated` or nested ``aatomic`` blocks
    (savepoints); they all run on the block's one thread.

    :param using: database alias, or the decorated coroutine function for the
        bare ``@aatomic`` form.
    :param savepoint: as for ``transaction.atomic``.
    :param durable: as for ``transaction.atomic``.
    """
    if callable(using):
        return AsyncAtomic()(using)
    return AsyncAtomic(using, savepoint, durable)


def _is_many(obj: Model, name: str) -> bool:
    field = obj._meta.get_field(name) if _has_field(obj, name) else None
    if field is not None:
        return bool(field.many_to_many or field.one_to_many)
    return hasattr(getattr(type(obj), name, None), "related_manager_cls")


def _has_field(obj: Model, name: str) -> bool:
    try:
        obj._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _follow(obj: Model, name: str) -> list[Any]:
    """The objects ``obj.<name>`` leads to, as a list (served from the prefetch caches)."""
    if _is_many(obj, name):
        return list(getattr(obj, name).all())
    return [getattr(obj, name)]


async def arelated(obj: Model, lookup: str) -> Any:
    """Load a relation of ``obj`` in one hop and cache it on ``obj``.

    ``author = await arelated(post, "author")``; afterwards ``post.author`` is
    served from the cache in async code too. A ``__`` path follows several
    relations (``"author__profile"``). For a to-many relation
    (``"tags"``) the related objects are returned as a list and
    ``post.tags.all()`` is served from the prefetch cache afterwards.

    :param obj: a saved model instance.
    :param lookup: a relation name or ``__``-separated path, as for
        ``prefetch_related``.
    :return: the related instance (``None`` for an empty nullable relation), or,
        when the path crosses a to-many relation, one flat list of the objects
        at its end (``"author__posts__tags"``: the tags of every post of the
        author, in order, with repeats; ``None`` values of a nullable relation
        after the to-many step are kept, and not followed further).
    :raise AttributeError, ValueError: for an unknown relation, as Django does.
    """

    def load() -> Any:
        prefetch_related_objects([obj], lookup)
        target: Any = obj
        for part in lookup.split("__"):
            if target is None:
                return None
            if isinstance(target, list):  # past a to-many relation: follow from each
                target = [
                    related
                    for item in target
                    if item is not None
                    for related in _follow(item, part)
                ]
            elif _is_many(target, part):
                target = _follow(target, part)
            else:
                target = getattr(target, part)
        return target

    return await run(load, (), {})


async def aprefetch(objs: Iterable[_M], *lookups: Any) -> list[_M]:
    """Prefetch relations for many instances in one hop (``prefetch_related_objects``).

    ``posts = await aprefetch(posts, "author", "tags")``; afterwards
    ``post.author`` and ``post.tags.all()`` are served from the caches in async
    code.

    :param objs: model instances of one model (any iterable; evaluated once).
    :param lookups: relation names, ``__`` paths or ``Prefetch`` objects.
    :return: the instances as a list, in their original order.
    """
    instances = list(objs)
    await run(prefetch_related_objects, (instances, *lookups), {})
    return instances


async def aget_object_or_404(klass: Any, *args: Any, **kwargs: Any) -> Any:
    """Async ``get_object_or_404`` in one hop, on every Django version (5.0 added one).

    :param klass: a model, manager or queryset.
    :raise django.http.Http404: when no object matches.
    :raise MultipleObjectsReturned: when several do.
    """
    from django.shortcuts import get_object_or_404

    return await run(get_object_or_404, (klass, *args), kwargs)


async def aget_list_or_404(klass: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """Async ``get_list_or_404`` in one hop, on every Django version (5.0 added one).

    :param klass: a model, manager or queryset.
    :return: the matching objects as a list.
    :raise django.http.Http404: when the list is empty.
    """
    from django.shortcuts import get_list_or_404

    return list(await run(get_list_or_404, (klass, *args), kwargs))


__all__ = [
    "AsyncAtomic",
    "AsyncORMUsageError",
    "ExecutorPool",
    "aatomic",
    "aget_list_or_404",
    "aget_object_or_404",
    "aget_user",
    "aprefetch",
    "arelated",
    "close_stale_connections",
    "close_thread_connections",
    "db_sync_to_async",
    "explain",
    "explain_sync_only",
    "explained",
    "login_required",
    "orm_lanes",
    "permission_required",
    "run_in_transaction",
    "shutdown_orm_lanes",
    "user_passes_test",
]
