"""ASH203 lazy-foreign-key-access: one query per field, not per read."""

from ash2_models import Book


async def author_name(pk):
    book = await Book.objects.aget(pk=pk)
    first = book.author  # error: ASH203:13
    again = book.author  # ok: already loaded earlier in this function
    return first, again


async def with_select_related(pk):
    book = await Book.objects.select_related("author").aget(pk=pk)
    return book.author  # ok: select_related covers it


async def plain_field(pk):
    book = await Book.objects.aget(pk=pk)
    return book.title  # ok: not a foreign key
