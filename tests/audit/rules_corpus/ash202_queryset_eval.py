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


async def chunked():
    for book in Book.objects.filter(live=True).iterator(chunk_size=50):  # error: ASH202:17
        print(book)
    return len(list(Book.objects.iterator()))  # error: ASH202:16


async def chunked_in_thread(use_iterator=False):
    from asgiref.sync import sync_to_async

    qs = Book.objects.all()
    if use_iterator:
        qs = qs.iterator()  # ok: a generator; nothing runs until it is iterated
    return await sync_to_async(list)(qs)


async def chunked_async():
    return [b async for b in Book.objects.aiterator()]  # ok: async for
