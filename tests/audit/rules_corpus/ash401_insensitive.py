"""ASH401 thread-insensitive-orm-wrapper."""

from asgiref.sync import sync_to_async
from ash2_models import Book


def _count():
    return Book.objects.count()


async def view(request):
    return await sync_to_async(_count, thread_sensitive=False)()  # error: ASH401:18


async def fine(request):
    return await sync_to_async(_count)()  # ok: thread-sensitive by default
