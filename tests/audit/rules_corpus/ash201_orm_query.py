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


async def shortcut(request, pk):
    from django.contrib import auth
    from django.contrib.auth import authenticate, login
    from django.shortcuts import get_list_or_404, get_object_or_404

    book = get_object_or_404(Book, pk=pk)  # error: ASH201:12
    books = get_list_or_404(Book.objects.filter(live=True))  # error: ASH201:13
    user = authenticate(request, username="a", password="b")  # error: ASH201:12
    login(request, user)  # error: ASH201:5
    auth.logout(request)  # error: ASH201:5
    return book, books


def resolve(request, pk):
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Book, pk=pk)  # error: ASH201:12


async def via_helper(request, pk):
    return resolve(request, pk)


async def same_names_elsewhere(request, pk):
    from ash2_models import get_object_or_404

    return get_object_or_404(pk)  # ok: not Django's shortcut
