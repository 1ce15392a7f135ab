"""ASH204 sync-model-save-delete."""

from ash2_models import Book


async def rename(pk, title):
    book = await Book.objects.aget(pk=pk)
    book.title = title
    book.save()  # error: ASH204:5


async def rename_async(pk, title):
    book = await Book.objects.aget(pk=pk)
    book.title = title
    await book.asave()  # ok: the async API
