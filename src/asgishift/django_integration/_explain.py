"""Turn Django's ``SynchronousOnlyOperation`` into an error that names the fix.

Django raises ``SynchronousOnlyOperation`` ("You cannot call this from an async
context") when ORM code runs on the event loop's thread. The message does not
say which attribute or query did it, nor what to use instead. This module reads
the traceback: when a lazy relation descriptor (``post.author``) triggered the
query it names the model and field and suggests :func:`arelated` /
:func:`aprefetch`; otherwise it names the first frame outside Django and
suggests ``db_sync_to_async`` or the ``a``-prefixed query methods.

See https://docs.djangoproject.com/en/stable/topics/async/#async-safety
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import ParamSpec, TypeVar

from django.core.exceptions import SynchronousOnlyOperation

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _django_dir() -> str:
    import django

    return str(os.path.dirname(os.path.abspath(django.__file__))) + os.sep


_INTERNAL_DIRS = (_django_dir(), os.path.dirname(os.path.abspath(__file__)) + os.sep)


class AsyncORMUsageError(SynchronousOnlyOperation):
    """Django's ORM ran on the event loop's thread; the message names the helper to use.

    A subclass of :class:`django.core.exceptions.SynchronousOnlyOperation`, so
    existing ``except SynchronousOnlyOperation`` handlers still catch it. The
    original exception is its ``__cause__``.
    """


def _frames(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _relation_name(tb: TracebackType | None) -> tuple[str, str] | None:
    """Return ``(model name, relation name)`` when a related-object descriptor ran the query."""
    for frame_tb in _frames(tb):
        code = frame_tb.tb_frame.f_code
        if code.co_name != "__get__" or not code.co_filename.endswith("related_descriptors.py"):
            continue
        frame_locals = frame_tb.tb_frame.f_locals
        descriptor = frame_locals.get("self")
        instance = frame_locals.get("instance")
        field = getattr(descriptor, "field", None)
        related = getattr(descriptor, "related", None)
        if field is not None and hasattr(field, "name"):
            name = str(field.name)
        elif related is not None and hasattr(related, "get_accessor_name"):
            name = str(related.get_accessor_name())
        else:
            continue
        model = type(instance).__name__ if instance is not None else "?"
        return model, name
    return None


def _user_frame(tb: TracebackType | None) -> str | None:
    """Return ``file:line`` of the last frame outside Django and asgishift before the raise."""
    where = None
    for frame_tb in _frames(tb):
        filename = frame_tb.tb_frame.f_code.co_filename
        if filename.startswith(_INTERNAL_DIRS) or "asgiref" + os.sep in filename:
            continue
        where = f"{filename}:{frame_tb.tb_lineno}"
    return where


def explain(exc: SynchronousOnlyOperation) -> AsyncORMUsageError:
    """Build an :class:`AsyncORMUsageError` for ``exc``, naming the helper to use.

    :param exc: the exception Django raised, with its traceback.
    :return: a new exception whose ``__cause__`` is ``exc``; the caller raises it.
    """
    if isinstance(exc, AsyncORMUsageError):
        return exc
    tb = exc.__traceback__
    where = _user_frame(tb)
    at = f" at {where}" if where else ""
    relation = _relation_name(tb)
    if relation is not None:
        model, name = relation
        message = (
            f"{model}.{name} was loaded lazily from async code{at}, and Django's ORM cannot "
            f"run on the event loop. Load it first: `await arelated(obj, {name!r})` for one "
            f"object or `await aprefetch(objects, {name!r})` for a list (both in "
            f"asgishift.django_integration.db), or select_related/prefetch_related "
            f"{name!r} in the query."
        )
    else:
        message = (
            f"A database query ran in async code{at}, and Django's ORM cannot run on the "
            "event loop. Use the query's a-method (`await qs.aget()`, `await qs.acount()`, "
            "`[obj async for obj in qs]`) or run the sync code through "
            "`db_sync_to_async` from asgishift.django_integration.db (in a view phase of "
            "asgishift's async views, a sync hook already runs on a thread)."
        )
    error = AsyncORMUsageError(message)
    error.__cause__ = exc
    return error


@contextlib.contextmanager
def explain_sync_only() -> Iterator[None]:
    """Re-raise ``SynchronousOnlyOperation`` from the block as :class:`AsyncORMUsageError`.

    Use as ``with explain_sync_only(): ...`` around async code, or decorate an
    async function with :func:`explained`.
    """
    try:
        yield
    except SynchronousOnlyOperation as exc:
        if isinstance(exc, AsyncORMUsageError):
            raise
        raise explain(exc) from exc


def explained(func: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """Decorate an async function (e.g. an async view) so ORM misuse gets a clear error.

    :param func: a coroutine function.
    :return: a coroutine function raising :class:`AsyncORMUsageError` where
        ``func`` raised ``SynchronousOnlyOperation``.
    """

    @functools.wraps(func)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with explain_sync_only():
            return await func(*args, **kwargs)

    return wrapper


__all__ = ["AsyncORMUsageError", "explain", "explain_sync_only", "explained"]
