"""Async views of the reading app: generic views renamed, an HTTP API call, a report."""

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from shelf.models import Book

from asgishift.django_integration.db import aatomic, db_sync_to_async
from asgishift.django_integration.views import AsyncCreateView, AsyncDetailView, AsyncListView
from reading.models import Note, ReportRun


class NoteList(AsyncListView):
    """The newest notes with their books, ten per page (one hop per request)."""

    queryset = Note.objects.select_related("book")
    paginate_by = 10


class NoteDetail(AsyncDetailView):
    """One note; the template reads ``note.book.title`` on the worker thread."""

    model = Note


class NoteCreate(AsyncCreateView):
    """Add a note; validation and ``form.save()`` share one hop; redirects to the note."""

    model = Note
    fields = ("book", "text")


async def quote(request: HttpRequest) -> HttpResponse:
    """A quote from an external HTTP API, through the client the lifespan hook opened.

    The API's URL is ``settings.READING_QUOTE_URL``; it answers
    ``{"text": ..., "author": ...}``.
    """
    client = request.state.http  # type: ignore[attr-defined]
    reply = await client.get(settings.READING_QUOTE_URL)
    reply.raise_for_status()
    data = reply.json()
    books = await Book.objects.acount()
    context = {"text": data["text"], "author": data["author"], "books": books}
    return await db_sync_to_async(render)(request, "reading/quote.html", context)


@db_sync_to_async
def _totals() -> tuple[int, list[Book]]:
    books = list(Book.objects.annotate(note_count=Count("notes")).order_by("title"))
    return Note.objects.count(), books


async def report(request: HttpRequest) -> HttpResponse:
    """Notes per book, counted and recorded in one transaction (a consistent snapshot)."""
    async with aatomic():
        notes, books = await _totals()
        run = await ReportRun.objects.acreate(books=len(books), notes=notes)
    context = {"books": books, "notes": notes, "run": run}
    return await db_sync_to_async(render)(request, "reading/report.html", context)
