"""ASH202 lazy-queryset-evaluation: iteration, len, truth, indexing, stepped slices."""

from ash2_models import Book


async def titles():
    return [b.title for b in Book.objects.filter(live=True)]  # error: ASH202:30


async def first_book():
    return Book.objects.order_by("id")[0]  # error: ASH202:12


async def every_other():
    return Book.objects.all()[::2]  # error: ASH202:12


async def page():
    return Book.objects.all()[:10]  # ok: a slice without a step stays lazy


async def how_many():
    qs = Book.objects.filter(live=True)
    if qs:  # error: ASH202:8
        return len(qs)  # error: ASH202:16
    return 0


async def recent():
    return Book.objects.recent_titles()


async def streamed():
    return [b.title async for b in Book.objects.all()]  # ok: async for
