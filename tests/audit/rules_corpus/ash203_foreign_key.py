"""ASH203 lazy-foreign-key-access: one query per field, not per read."""

from ash2_models import Book
from django.db.models import Prefetch


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


async def select_related_names_another(pk):
    book = await Book.objects.select_related("editor").aget(pk=pk)
    editor = book.editor  # ok: named
    return editor, book.author  # error: ASH203:20


async def select_related_path(pk):
    book = await Book.objects.select_related("author__agent", "editor").aget(pk=pk)
    return book.author, book.editor  # ok: both named, the first by an a__b path


async def bare_select_related(pk):
    book = await Book.objects.select_related().aget(pk=pk)
    author = book.author  # ok: a bare select_related() follows non-null keys
    return author, book.editor  # error: ASH203:20


async def chained_select_related(pk):
    query = Book.objects.filter(live=True).select_related("author")
    book = await query.select_related("editor").afirst()
    return book.author, book.editor  # ok: the calls add up


async def prefetch_related_names_another(pk):
    book = await Book.objects.prefetch_related(Prefetch("editor")).aget(pk=pk)
    editor = book.editor  # ok: prefetched
    return editor, book.author  # error: ASH203:20


async def prefetch_to_another_attribute(pk):
    query = Book.objects.prefetch_related(Prefetch("author", to_attr="writer"))
    book = await query.aget(pk=pk)
    return book.writer, book.author  # error: ASH203:25


async def bare_prefetch_related(pk):
    book = await Book.objects.prefetch_related().aget(pk=pk)
    return book.author  # error: ASH203:12


async def relation_not_a_literal(pk, relation):
    book = await Book.objects.select_related(relation).aget(pk=pk)
    return book.author  # ok: which relation is loaded is not known


async def loop_over_select_related():
    async for book in Book.objects.select_related("editor"):
        return book.author  # error: ASH203:16
