"""``AsyncPaginator`` and ``AsyncPage`` on every supported Django version.

Django 6.0 added ``django.core.paginator.AsyncPaginator`` and ``AsyncPage``:
the paginator's ``acount()``, ``anum_pages()``, ``apage()``, ... are awaitable,
and a page's objects are fetched with ``await page.aget_object_list()``. Where
Django has them this module re-exports Django's classes; on Django 4.2 and 5.2
it provides classes with the same names, methods and errors, written here on
top of the sync ``Paginator``'s validation rules. Queries run through
:func:`asgishift.django_integration.db.db_sync_to_async` (one hop each), so
outside a request they use the bounded ORM pool.

See https://docs.djangoproject.com/en/dev/ref/paginator/#asyncpaginator-class
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from django.core import paginator as django_paginator
from django.core.paginator import EmptyPage, InvalidPage, PageNotAnInteger, Paginator
from django.utils.translation import gettext_lazy as _

from asgishift.django_integration._hops import run

#: The messages of Django's paginator errors (``error_messages`` overrides them).
DEFAULT_ERROR_MESSAGES: dict[str, Any] = {
    "invalid_page": _("That page number is not an integer"),
    "min_page": _("That page number is less than 1"),
    "no_results": _("That page contains no results"),
}

#: True when Django itself provides the async classes (6.0+).
NATIVE = hasattr(django_paginator, "AsyncPaginator")


class _BackportAsyncPaginator:
    """Awaitable pagination of a list or queryset (Django 6.0's ``AsyncPaginator``).

    :param object_list: a queryset (counted with ``acount()`` / ``count()``) or
        a sequence.
    :param per_page: objects per page.
    :param orphans: last-page objects folded into the previous page when
        fewer than this.
    :param allow_empty_first_page: whether page 1 of an empty list is valid.
    :param error_messages: overrides for ``invalid_page``, ``min_page``,
        ``no_results``.
    """

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        error_messages: dict[str, Any] | None = None,
    ) -> None:
        # The sync paginator validates the sizes and warns about unordered
        # querysets; it never queries in __init__. (Django 4.2's takes no
        # error_messages.)
        self._sync = Paginator(object_list, per_page, orphans, allow_empty_first_page)
        self.object_list = object_list
        self.per_page = self._sync.per_page
        self.orphans = self._sync.orphans
        self.allow_empty_first_page = allow_empty_first_page
        self.error_messages = {**DEFAULT_ERROR_MESSAGES, **(error_messages or {})}
        self._count: int | None = None

    async def acount(self) -> int:
        """Return the number of objects across all pages (one query, cached)."""
        if self._count is None:
            counter = getattr(self.object_list, "acount", None)
            if counter is not None and callable(counter):
                self._count = int(await run(self.object_list.count, (), {}))
            else:
                self._count = len(self.object_list)
        return self._count

    async def anum_pages(self) -> int:
        """Return the number of pages."""
        count = await self.acount()
        if count == 0 and not self.allow_empty_first_page:
            return 0
        pages: int = math.ceil(max(1, count - self.orphans) / int(self.per_page))
        return pages

    async def apage_range(self) -> range:
        """Return ``range(1, num_pages + 1)``."""
        return range(1, await self.anum_pages() + 1)

    async def avalidate_number(self, number: Any) -> int:
        """Return ``number`` as a valid 1-based page number.

        :raise PageNotAnInteger: when it is not an integer.
        :raise EmptyPage: when it is below 1 or past the last page.
        """
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        if number > await self.anum_pages():
            raise EmptyPage(self.error_messages["no_results"])
        return int(number)

    async def apage(self, number: Any) -> _BackportAsyncPage:
        """Return page ``number``; its objects are not fetched yet.

        :raise InvalidPage: for an invalid number (see :meth:`avalidate_number`).
        """
        number = await self.avalidate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        count = await self.acount()
        if top + self.orphans >= count:
            top = count
        return self._get_page(self.object_list[bottom:top], number, self)

    async def aget_page(self, number: Any) -> _BackportAsyncPage:
        """Return page ``number``, or page 1 / the last page for a bad number."""
        try:
            number = await self.avalidate_number(number)
        except PageNotAnInteger:
            number = 1
        except EmptyPage:
            number = await self.anum_pages()
        return await self.apage(number)

    def _get_page(self, *args: Any, **kwargs: Any) -> _BackportAsyncPage:
        """Hook for subclasses returning another page class (as in Django)."""
        return _BackportAsyncPage(*args, **kwargs)

    async def __aiter__(self) -> AsyncIterator[_BackportAsyncPage]:
        for number in await self.apage_range():
            yield await self.apage(number)

    async def aget_elided_page_range(
        self, number: Any = 1, *, on_each_side: int = 3, on_ends: int = 2
    ) -> AsyncIterator[Any]:
        """Yield page numbers around ``number`` with ``Paginator.ELLIPSIS`` for gaps."""
        number = await self.avalidate_number(number)
        num_pages = await self.anum_pages()
        for item in _elided(number, num_pages, on_each_side, on_ends):
            yield item


def _elided(number: int, num_pages: int, on_each_side: int, on_ends: int) -> Iterator[Any]:
    if num_pages <= (on_each_side + on_ends) * 2:
        yield from range(1, num_pages + 1)
        return
    if number > 1 + on_each_side + on_ends + 1:
        yield from range(1, on_ends + 1)
        yield Paginator.ELLIPSIS
        yield from range(number - on_each_side, number + 1)
    else:
        yield from range(1, number + 1)
    if number < num_pages - on_each_side - on_ends - 1:
        yield from range(number + 1, number + on_each_side + 1)
        yield Paginator.ELLIPSIS
        yield from range(num_pages - on_ends + 1, num_pages + 1)
    else:
        yield from range(number + 1, num_pages + 1)


class _BackportAsyncPage:
    """One page of an :class:`AsyncPaginator` (Django 6.0's ``AsyncPage``).

    Indexing, ``len()`` and ``reversed()`` need the objects:
    ``await page.aget_object_list()`` first (else ``TypeError``).
    """

    def __init__(self, object_list: Any, number: int, paginator: Any) -> None:
        self.object_list = object_list
        self.number = number
        self.paginator = paginator

    def __repr__(self) -> str:
        return f"<Async Page {self.number}>"

    def _fetched(self, action: str) -> list[Any]:
        if not isinstance(self.object_list, list):
            raise TypeError(f"AsyncPage.aget_object_list() must be awaited before {action}.")
        return self.object_list

    def __len__(self) -> int:
        return len(self._fetched("calling len()"))

    def __reversed__(self) -> Iterator[Any]:
        return iter(reversed(self._fetched("calling reversed()")))

    def __getitem__(self, index: int | slice) -> Any:
        if not isinstance(index, (int, slice)):
            raise TypeError(
                f"AsyncPage indices must be integers or slices, not {type(index).__name__}."
            )
        return self._fetched("using indexing")[index]

    async def __aiter__(self) -> AsyncIterator[Any]:
        for obj in await self.aget_object_list():
            yield obj

    async def aget_object_list(self) -> list[Any]:
        """Fetch the page's objects (one query) and return them as a list."""
        if not isinstance(self.object_list, list):
            objects: Sequence[Any] = self.object_list
            self.object_list = await run(list, (objects,), {})
        return self.object_list

    async def ahas_next(self) -> bool:
        """Return whether a page follows this one."""
        return bool(self.number < await self.paginator.anum_pages())

    async def ahas_previous(self) -> bool:
        """Return whether a page precedes this one."""
        return self.number > 1

    async def ahas_other_pages(self) -> bool:
        """Return whether there is any other page."""
        return await self.ahas_previous() or await self.ahas_next()

    async def anext_page_number(self) -> int:
        """Return the next page's number.

        :raise EmptyPage: on the last page.
        """
        return int(await self.paginator.avalidate_number(self.number + 1))

    async def aprevious_page_number(self) -> int:
        """Return the previous page's number.

        :raise EmptyPage: on the first page.
        """
        return int(await self.paginator.avalidate_number(self.number - 1))

    async def astart_index(self) -> int:
        """Return the 1-based index of the page's first object (0 for no objects)."""
        if await self.paginator.acount() == 0:
            return 0
        return int(self.paginator.per_page * (self.number - 1) + 1)

    async def aend_index(self) -> int:
        """Return the 1-based index of the page's last object."""
        if self.number == await self.paginator.anum_pages():
            return int(await self.paginator.acount())
        return int(self.number * self.paginator.per_page)


AsyncPaginator: Any = getattr(django_paginator, "AsyncPaginator", _BackportAsyncPaginator)
AsyncPage: Any = getattr(django_paginator, "AsyncPage", _BackportAsyncPage)

__all__ = [
    "NATIVE",
    "AsyncPage",
    "AsyncPaginator",
    "EmptyPage",
    "InvalidPage",
    "PageNotAnInteger",
]
