"""Each async generic view renders exactly what its sync Django twin renders.

Same data, same URLconf; the sync view is requested with Django's test
``Client`` (WSGI-style handler), the async one with ``AsyncClient`` (Django's
async handler), on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import AsyncClient, Client

pytestmark = pytest.mark.urls("django_views.viewsapp.urls")


def fetch(kind: str, method: str, url: str, data: Any = None, user: Any = None) -> Any:
    """Request ``url`` from the sync twin (``Client``) or the async one (``AsyncClient``)."""
    if kind == "sync":
        client = Client()
        if user is not None:
            client.force_login(user)
        call = getattr(client, method)
        return call(url, data) if data is not None else call(url)
    aclient = AsyncClient()
    if user is not None:
        aclient.force_login(user)

    async def go() -> Any:
        call = getattr(aclient, method)
        return await (call(url, data) if data is not None else call(url))

    return asyncio.run(go())


def both(method: str, path: str, data: Any = None, user: Any = None) -> tuple[Any, Any]:
    sync = fetch("sync", method, f"/sync/{path}", data, user)
    asynchronous = fetch("async", method, f"/async/{path}", data, user)
    return sync, asynchronous


def assert_same(sync: Any, asynchronous: Any) -> None:
    assert asynchronous.status_code == sync.status_code
    assert asynchronous.get("Location") == sync.get("Location")
    assert asynchronous.content == sync.content


@pytest.mark.parametrize("query", ["", "?page=2", "?page=3", "?page=last"])
def test_list_pages_match(posts: list[Any], query: str) -> None:
    sync, asynchronous = both("get", query)
    assert sync.status_code == 200
    assert b"Post 0" in sync.content or b"Post 3" in sync.content or b"Post 6" in sync.content
    assert_same(sync, asynchronous)


def test_list_past_the_last_page_is_404_in_both(posts: list[Any]) -> None:
    sync, asynchronous = both("get", "?page=9")
    assert sync.status_code == 404
    assert asynchronous.status_code == 404


def test_async_hooks_render_the_same_list(posts: list[Any]) -> None:
    sync = fetch("sync", "get", "/sync/?page=2")
    hooked = fetch("async", "get", "/async/hooks/?page=2")
    assert hooked.status_code == 200
    assert hooked.content == sync.content


def test_detail_matches_and_404s(posts: list[Any]) -> None:
    assert_same(*both("get", f"{posts[4].pk}/"))
    sync, asynchronous = both("get", "99999/")
    assert (sync.status_code, asynchronous.status_code) == (404, 404)


def test_create_form_and_post_match(posts: list[Any]) -> None:
    from django_views.viewsapp.models import Post

    assert_same(*both("get", "new/"))
    tag_ids = [t.pk for t in posts[0].tags.all()]
    author = posts[0].author_id
    for kind in ("sync", "async"):
        data = {"title": f"made by {kind}", "body": "b", "author": author, "tags": tag_ids}
        response = fetch(kind, "post", f"/{kind}/new/", data)
        created = Post.objects.get(title=f"made by {kind}")
        assert response.status_code == 302
        assert response["Location"] == f"/sync/{created.pk}/"
        assert sorted(created.tags.values_list("pk", flat=True)) == sorted(tag_ids)
    invalid = {"title": "", "author": 999999}
    assert_same(*both("post", "new/", invalid))


def test_update_matches(posts: list[Any]) -> None:
    from django_views.viewsapp.models import Post

    post = posts[2]
    assert_same(*both("get", f"{post.pk}/edit/"))
    data = {"title": "renamed", "body": "x", "author": post.author_id}
    sync, asynchronous = both("post", f"{post.pk}/edit/", data)
    assert_same(sync, asynchronous)
    assert Post.objects.get(pk=post.pk).title == "renamed"
    assert_same(*both("post", f"{post.pk}/edit/", {"title": ""}))


def test_delete_matches(posts: list[Any]) -> None:
    from django_views.viewsapp.models import Post

    assert_same(*both("get", f"{posts[1].pk}/delete/"))
    sync = fetch("sync", "post", f"/sync/{posts[1].pk}/delete/", {})
    asynchronous = fetch("async", "post", f"/async/{posts[2].pk}/delete/", {})
    assert_same(sync, asynchronous)
    assert not Post.objects.filter(pk__in=[posts[1].pk, posts[2].pk]).exists()


def test_template_and_form_views_match(posts: list[Any]) -> None:
    sync, asynchronous = both("get", "about/")
    assert b"posts=7" in sync.content
    assert_same(sync, asynchronous)
    assert_same(*both("get", "contact/"))
    assert_same(*both("post", "contact/", {"email": "not-an-address", "message": "hi"}))
    sync, asynchronous = both("post", "contact/", {"email": "a@b.example", "message": "hi"})
    assert sync.status_code == 302
    assert_same(sync, asynchronous)


def test_redirect_views_match(posts: list[Any]) -> None:
    sync, asynchronous = both("get", f"go/{posts[0].pk}/?x=1")
    assert sync["Location"] == f"/sync/{posts[0].pk}/?x=1"
    assert_same(sync, asynchronous)
    assert_same(*both("post", f"go/{posts[0].pk}/"))
    sync, asynchronous = both("get", "first/")
    assert sync["Location"] == f"/sync/{posts[0].pk}/"
    assert_same(sync, asynchronous)


def test_first_post_redirect_is_gone_without_posts(alias: str) -> None:
    sync, asynchronous = both("get", "first/")
    assert sync.status_code == 410
    assert_same(sync, asynchronous)


def test_login_required_matches(posts: list[Any], django_user_model: Any) -> None:
    sync, asynchronous = both("get", "private/?page=2")
    assert sync.status_code == 302
    assert sync["Location"] == "/accounts/login/?next=/sync/private/%3Fpage%3D2"
    assert asynchronous["Location"] == "/accounts/login/?next=/async/private/%3Fpage%3D2"
    user = django_user_model.objects.create_user("carol", password="pw")
    sync, asynchronous = both("get", "private/", user=user)
    assert b"user=carol" in sync.content
    assert_same(sync, asynchronous)


def test_auth_twins_guard_djangos_plain_view(posts: list[Any], django_user_model: Any) -> None:
    # Before, the twins skipped Django's check and left it to check_access, which only
    # asgishift's async views call: behind a plain View every request was let through.
    from django.contrib.auth.models import Permission

    anonymous = fetch("async", "get", "/async/plain-private/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/async/plain-private/"
    user = django_user_model.objects.create_user("erin", password="pw")
    signed_in = fetch("async", "get", "/async/plain-private/", user=user)
    assert (signed_in.status_code, signed_in.content) == (200, b"user=erin")
    assert fetch("async", "get", "/async/plain-permitted/", user=user).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_post"))
    user = django_user_model.objects.get(pk=user.pk)
    permitted = fetch("async", "get", "/async/plain-permitted/", user=user)
    assert (permitted.status_code, permitted.content) == (200, b"permitted")


@pytest.mark.parametrize("twin", ["AsyncLoginRequiredMixin", "AsyncPermissionRequiredMixin"])
def test_auth_twin_after_the_view_is_refused(twin: str) -> None:
    # After an asgishift async view in the bases, the twin's check would never run.
    from django.core.exceptions import ImproperlyConfigured

    from asgishift.django_integration import views as async_views

    mixin = getattr(async_views, twin)
    with pytest.raises(ImproperlyConfigured, match=f"put {twin} first"):
        type("Backwards", (async_views.AsyncListView, mixin), {})
    # Leftmost, as Django documents for its own mixins, is accepted.
    assert issubclass(type("Forwards", (mixin, async_views.AsyncListView), {}), mixin)


def test_permission_required_matches(posts: list[Any], django_user_model: Any) -> None:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("dave", password="pw")
    sync, asynchronous = both("get", "permitted/", user=user)
    assert (sync.status_code, asynchronous.status_code) == (403, 403)
    user.user_permissions.add(Permission.objects.get(codename="view_post"))
    user = django_user_model.objects.get(pk=user.pk)
    sync, asynchronous = both("get", "permitted/", user=user)
    assert sync.status_code == 200
    assert_same(sync, asynchronous)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("alias", ["default"], indirect=True)  # the message, not the database
def test_lazy_relation_in_async_code_names_the_helper(posts: list[Any]) -> None:
    from asgishift.django_integration.db import AsyncORMUsageError

    client = AsyncClient(raise_request_exception=True)
    with pytest.raises(AsyncORMUsageError) as info:
        asyncio.run(client.get(f"/async/lazy/{posts[0].pk}/"))
    message = str(info.value)
    assert "Post.author" in message
    assert "arelated(obj, 'author')" in message
    assert "views.py:" in message


def test_options_and_not_allowed(posts: list[Any]) -> None:
    sync, asynchronous = both("options", "about/")
    assert sync["Allow"] == asynchronous["Allow"]
    sync, asynchronous = both("put", "about/")
    assert (sync.status_code, asynchronous.status_code) == (405, 405)


def test_async_view_mixes_async_and_sync_handlers(posts: list[Any]) -> None:
    assert fetch("async", "get", "/async/mixed/").content == b"get 7"
    assert fetch("async", "post", "/async/mixed/", {}).content == b"post 7"


def test_decorated_async_handler_is_awaited() -> None:
    """``@method_decorator(never_cache)`` on an ``async def get``: Django (5.0+) marks the
    wrapper with asgiref's ``markcoroutinefunction``, which ``inspect`` does not see
    before Python 3.12; the handler must be awaited, not run as a sync one in the hop
    (which returned an unawaited coroutine)."""
    from django.test import RequestFactory
    from django.utils.decorators import method_decorator
    from django.views.decorators.cache import never_cache

    from asgishift.django_integration.views import AsyncView

    if not asyncio.iscoroutinefunction(method_decorator(never_cache)(_async_get)):
        pytest.skip("this Django's method_decorator does not mark async methods (before 5.0)")

    class Fresh(AsyncView):
        get = method_decorator(never_cache)(_async_get)

    response = asyncio.run(Fresh.as_view()(RequestFactory().get("/fresh/")))
    assert response.content == b"fresh"
    assert "no-cache" in response["Cache-Control"]


async def _async_get(self: Any, request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("fresh")
