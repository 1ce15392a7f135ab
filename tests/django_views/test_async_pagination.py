"""AsyncPaginator / AsyncPage: Django 6's where present, the backport elsewhere;
both agree with the sync Paginator on the same data."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.paginator import Paginator

from asgishift.django_integration import pagination
from django_support.testapp.models import Item

CLASSES = [
    pytest.param(pagination._BackportAsyncPaginator, id="backport"),
    pytest.param(pagination.AsyncPaginator, id="exported"),
]


@pytest.fixture
def items(alias: str) -> Any:
    Item.objects.bulk_create([Item(name=f"i{n:02}", count=n) for n in range(23)])
    return Item.objects.order_by("id")


@pytest.mark.parametrize("paginator_class", CLASSES)
@pytest.mark.parametrize("orphans", [0, 3])
def test_matches_the_sync_paginator(items: Any, paginator_class: Any, orphans: int) -> None:
    sync = Paginator(items, 5, orphans=orphans)

    async def main() -> list[Any]:
        paginator = paginator_class(items, 5, orphans=orphans)
        rows = [await paginator.acount(), await paginator.anum_pages()]
        rows.append(list(await paginator.apage_range()))
        async for page in paginator:
            objects = await page.aget_object_list()
            rows.append(
                (
                    page.number,
                    [item.name for item in objects],
                    len(page),
                    page[0].name,
                    await page.ahas_next(),
                    await page.ahas_previous(),
                    await page.ahas_other_pages(),
                    await page.astart_index(),
                    await page.aend_index(),
                )
            )
        rows.append(
            [p async for p in paginator.aget_elided_page_range(2, on_each_side=1, on_ends=1)]
        )
        return rows

    expected: list[Any] = [sync.count, sync.num_pages, list(sync.page_range)]
    for number in sync.page_range:
        page = sync.page(number)
        expected.append(
            (
                number,
                [item.name for item in page],
                len(page),
                page[0].name,
                page.has_next(),
                page.has_previous(),
                page.has_other_pages(),
                page.start_index(),
                page.end_index(),
            )
        )
    expected.append(list(sync.get_elided_page_range(2, on_each_side=1, on_ends=1)))
    assert asyncio.run(main()) == expected


@pytest.mark.parametrize("paginator_class", CLASSES)
def test_errors_and_fallbacks(items: Any, paginator_class: Any) -> None:
    async def main() -> list[Any]:
        paginator = paginator_class(items, 10)
        page = await paginator.aget_page("nonsense")
        last = await paginator.aget_page(99)
        with pytest.raises(pagination.PageNotAnInteger):
            await paginator.apage("x")
        with pytest.raises(pagination.EmptyPage):
            await paginator.apage(0)
        with pytest.raises(pagination.EmptyPage):
            await paginator.apage(4)
        with pytest.raises(TypeError):
            len(last)
        with pytest.raises(pagination.EmptyPage):
            await last.anext_page_number()
        return [page.number, last.number, await page.anext_page_number()]

    assert asyncio.run(main()) == [1, 3, 2]


@pytest.mark.parametrize("paginator_class", CLASSES)
def test_plain_lists_and_empty(paginator_class: Any) -> None:
    async def main() -> list[Any]:
        full = paginator_class(list(range(7)), 3)
        empty = paginator_class([], 3)
        strict = paginator_class([], 3, allow_empty_first_page=False)
        page = await full.apage(3)
        return [
            await full.acount(),
            await page.aget_object_list(),
            await empty.anum_pages(),
            await (await empty.apage(1)).astart_index(),
            await strict.anum_pages(),
        ]

    assert asyncio.run(main()) == [7, [6], 1, 0, 0]


def test_native_classes_are_used_where_django_has_them() -> None:
    from django.core import paginator as django_paginator

    assert hasattr(django_paginator, "AsyncPaginator") == pagination.NATIVE
    if pagination.NATIVE:
        assert pagination.AsyncPaginator is django_paginator.AsyncPaginator
    else:
        assert pagination.AsyncPaginator is pagination._BackportAsyncPaginator
