"""An async template view's response, rendered in its hop, goes through Django's cache.

Under Django's own ASGI handler the response is marked as rendered (its ``render`` a
coroutine function) so that the handler needs no hop of its own to render it. Django's
cache framework pickles responses; the marked one must pickle too.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import httpx
import pytest
from django.core.cache import cache
from django.template.response import SimpleTemplateResponse
from django.test import override_settings

import django

pytestmark = pytest.mark.urls("django_views.viewsapp.urls")

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.mark.skipif(django.VERSION < (5, 0), reason="Django 4.2's cache_page wraps sync views only")
def test_cache_page_stores_an_async_template_view_under_djangos_asgi_handler() -> None:
    from django.core.handlers.asgi import ASGIHandler

    async def twice() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=ASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get("/async/cached/") for _ in range(2)]

    with override_settings(CACHES=LOCMEM, ROOT_URLCONF="django_views.viewsapp.urls"):
        cache.clear()
        first, second = asyncio.run(twice())
    assert first.status_code == 200, first.text
    assert "About: cached" in first.text
    assert second.status_code == 200
    assert second.text == first.text
    assert "max-age=60" in second.headers["cache-control"]


def test_a_marked_response_unpickles_with_its_class_render() -> None:
    from asgishift.django_integration.views import base

    response = SimpleTemplateResponse("viewsapp/about.html", {"greeting": "hi"})
    response.render()
    response.render = base.types.MethodType(base._rendered, response)  # as _mark_rendered does
    assert asyncio.iscoroutinefunction(response.render)
    restored: Any = pickle.loads(pickle.dumps(response))
    assert b"About: hi" in restored.content
    assert not asyncio.iscoroutinefunction(restored.render)
    assert restored.render() is restored
