"""ASH201 sync-orm-query, including a project QuerySet method reached from async code."""

from ash2_models import Book, PublishedQuerySet


async def detail(pk):
    return Book.objects.get(pk=pk)  # error: ASH201:12


async def total():
    return Book.objects.filter(live=True).count()  # error: ASH201:12


async def live(qs: PublishedQuerySet):
    return qs.live_count()


async def fine(pk):
    return await Book.objects.aget(pk=pk)  # ok: the async API
