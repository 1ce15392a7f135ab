"""arelated / aprefetch, the explained SynchronousOnlyOperation, and the async
shortcuts and auth decorators exported on every Django version."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, SynchronousOnlyOperation
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from asgishift.django_integration import db
from django_support.testapp.models import Author, Book


@pytest.fixture
def library(alias: str) -> list[Book]:
    ada, bob = Author.objects.create(name="Ada"), Author.objects.create(name="Bob")
    return [
        Book.objects.create(title=f"B{n}", author=ada if n < 3 else bob, pages=10 * n)
        for n in range(5)
    ]


def test_arelated_loads_and_caches_a_forward_relation(library: list[Book]) -> None:
    async def main() -> tuple[str, str]:
        book = await Book.objects.aget(pk=library[4].pk)
        author = await db.arelated(book, "author")
        return author.name, book.author.name  # cached: no query in async code

    assert asyncio.run(main()) == ("Bob", "Bob")


def test_arelated_reverse_and_path(library: list[Book]) -> None:
    async def main() -> tuple[list[str], list[str], list[str]]:
        ada = await Author.objects.aget(name="Ada")
        books = await db.arelated(ada, "books")
        cached = [book.title for book in ada.books.all()]  # prefetch cache
        book = await Book.objects.aget(pk=library[0].pk)
        siblings = await db.arelated(book, "author__books")
        return [b.title for b in books], cached, [b.title for b in siblings]

    books, cached, siblings = asyncio.run(main())
    assert books == cached == siblings == ["B0", "B1", "B2"]


def test_aprefetch_caches_for_a_list(library: list[Book]) -> None:
    async def main() -> list[str]:
        books = [book async for book in Book.objects.all()]
        books = await db.aprefetch(books, "author")
        return [f"{book.title}:{book.author.name}" for book in books]

    assert asyncio.run(main()) == ["B0:Ada", "B1:Ada", "B2:Ada", "B3:Bob", "B4:Bob"]


def test_lazy_relation_without_the_helper_gets_an_explained_error(library: list[Book]) -> None:
    async def main() -> str:
        book = await Book.objects.aget(pk=library[0].pk)
        with db.explain_sync_only():
            return str(book.author.name)

    with pytest.raises(db.AsyncORMUsageError) as info:
        asyncio.run(main())
    assert isinstance(info.value, SynchronousOnlyOperation)
    assert isinstance(info.value.__cause__, SynchronousOnlyOperation)
    message = str(info.value)
    assert "Book.author" in message
    assert "await arelated(obj, 'author')" in message
    assert "test_relations_and_shortcuts.py:" in message


def test_query_in_async_code_gets_an_explained_error(library: list[Book]) -> None:
    @db.explained
    async def count() -> int:
        return Book.objects.count()

    with pytest.raises(db.AsyncORMUsageError, match=r"a-method.*db_sync_to_async"):
        asyncio.run(count())


def test_aget_object_or_404_and_list(library: list[Book]) -> None:
    async def main() -> tuple[Any, list[Any]]:
        book = await db.aget_object_or_404(Book, title="B1")
        books = await db.aget_list_or_404(Book.objects.order_by("-pages"), pages__gte=20)
        return book, books

    book, books = asyncio.run(main())
    assert book.pk == library[1].pk
    assert [b.title for b in books] == ["B4", "B3", "B2"]
    with pytest.raises(Http404):
        asyncio.run(db.aget_object_or_404(Book, title="nope"))
    with pytest.raises(Http404):
        asyncio.run(db.aget_list_or_404(Book, pages__gt=1000))


def _request(user: Any, path: str = "/secret/?x=1") -> Any:
    request = RequestFactory().get(path)
    request.user = user
    return request


@pytest.mark.django_db(transaction=True)
def test_async_auth_decorators(django_user_model: Any) -> None:
    from django.contrib.auth.models import AnonymousUser, Permission

    @db.login_required
    async def secret(request: Any) -> HttpResponse:
        return HttpResponse("secret")

    @db.permission_required("testapp.view_book", raise_exception=True)
    async def books(request: Any) -> HttpResponse:
        return HttpResponse("books")

    @db.user_passes_test(lambda user: user.username.startswith("e"), login_url="/in/")
    async def e_only(request: Any) -> HttpResponse:
        return HttpResponse("e")

    assert asyncio.iscoroutinefunction(secret)
    anonymous = asyncio.run(secret(_request(AnonymousUser())))
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/secret/%3Fx%3D1"
    erin = django_user_model.objects.create_user("erin")
    assert asyncio.run(secret(_request(erin))).content == b"secret"
    assert asyncio.run(e_only(_request(erin))).content == b"e"
    frank = django_user_model.objects.create_user("frank")
    assert asyncio.run(e_only(_request(frank)))["Location"] == "/in/?next=/secret/%3Fx%3D1"
    with pytest.raises(PermissionDenied):
        asyncio.run(books(_request(erin)))
    erin.user_permissions.add(Permission.objects.get(codename="view_book"))
    erin = django_user_model.objects.get(pk=erin.pk)
    assert asyncio.run(books(_request(erin))).content == b"books"
    assert asyncio.run(db.aget_user(_request(erin))) == erin


@pytest.mark.django_db
def test_sync_views_get_djangos_decorator() -> None:
    from django.contrib.auth.models import AnonymousUser

    @db.login_required(login_url="/in/")
    def plain(request: Any) -> HttpResponse:
        return HttpResponse("plain")

    assert not asyncio.iscoroutinefunction(plain)
    assert plain(_request(AnonymousUser()))["Location"] == "/in/?next=/secret/%3Fx%3D1"


def test_async_list_view_makes_one_hop(posts: list[Any], alias: str) -> None:
    """The list page's queries (count + page), its context and its template share one hop."""
    from django.test import AsyncClient, override_settings

    from asgishift.django_integration import views

    calls: list[str] = []
    original = views.base.run  # the hop function the views use

    async def counting(func: Any, args: Any, kwargs: Any) -> Any:
        calls.append(getattr(func, "__name__", "?"))
        return await original(func, args, kwargs)

    views.base.run = counting
    try:
        with override_settings(ROOT_URLCONF="django_views.viewsapp.urls"):
            response = asyncio.run(AsyncClient().get("/async/?page=2"))
    finally:
        views.base.run = original
    assert response.status_code == 200
    assert b"Post 3" in response.content
    assert calls == ["_phase"]


def test_arelated_path_through_two_to_many_relations(posts: list[Any]) -> None:
    """``author__posts__tags`` ends in a to-many relation reached through a to-many
    one: the result is the related objects (one flat list), not one manager per post."""
    from django_views.viewsapp.models import Post

    async def main() -> tuple[list[str], list[str], list[str]]:
        post = await Post.objects.aget(pk=posts[0].pk)
        tags = await db.arelated(post, "author__posts__tags")
        authors = await db.arelated(post.author, "posts__author")
        cached = [t.name for p in post.author.posts.all() for t in p.tags.all()]
        return [t.name for t in tags], cached, [a.name for a in authors]

    tags, cached, authors = asyncio.run(main())
    # Bob wrote posts 0, 2, 4 and 6; posts 0 and 6 are red and blue, 2 and 4 red.
    assert sorted(tags) == sorted(cached) == ["blue", "blue", "red", "red", "red", "red"]
    assert authors == ["Bob"] * 4


@pytest.mark.django_db(transaction=True)
def test_auth_decorators_wrap_an_async_class_based_view() -> None:
    """``login_required(AsyncListView.as_view())`` in a URLconf: ``as_view()`` marks the
    view with asgiref's ``markcoroutinefunction``, which ``inspect`` does not see before
    Python 3.12; the view must still get the async wrapper (on Django 4.2 it got Django's
    sync one, whose redirect was awaited: ``TypeError`` for anonymous users)."""
    from django.contrib.auth.models import AnonymousUser
    from django.views.generic import TemplateView

    from asgishift.django_integration.views import AsyncView

    class Hello(AsyncView):
        async def get(self, request: Any) -> HttpResponse:
            return HttpResponse("hello")

    for decorate in (db.login_required, db.permission_required("testapp.view_book")):
        view = decorate(Hello.as_view())
        assert asyncio.iscoroutinefunction(view)
        response = asyncio.run(view(_request(AnonymousUser())))
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/secret/%3Fx%3D1"
    sync_view = db.login_required(TemplateView.as_view(template_name="x.html"))
    assert not asyncio.iscoroutinefunction(sync_view)
