"""URLs of the twins: ``sync/...`` and ``async/...`` serve the same pages."""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.views.decorators.cache import cache_page

from django_views.viewsapp import views

PAIRS: list[tuple[str, str, Any, Any]] = [
    ("list", "", views.SyncList, views.AsyncList),
    ("detail", "<int:pk>/", views.SyncDetail, views.AsyncDetail),
    ("create", "new/", views.SyncCreate, views.AsyncCreate),
    ("update", "<int:pk>/edit/", views.SyncUpdate, views.AsyncUpdate),
    ("delete", "<int:pk>/delete/", views.SyncDelete, views.AsyncDelete),
    ("about", "about/", views.SyncAbout, views.AsyncAbout),
    ("contact", "contact/", views.SyncContact, views.AsyncContact),
    ("redirect", "go/<int:pk>/", views.SyncRedirect, views.AsyncRedirect),
    ("first", "first/", views.SyncFirstPost, views.AsyncFirstPost),
    ("private", "private/", views.SyncPrivate, views.AsyncPrivate),
    ("permitted", "permitted/", views.SyncPermitted, views.AsyncPermitted),
]

urlpatterns = [
    path("async/hooks/", views.AsyncListWithAsyncHooks.as_view(), name="async-hooks"),
    path("async/lazy/<int:pk>/", views.LazyDetail.as_view(), name="async-lazy"),
    path("async/mixed/", views.Mixed.as_view(), name="async-mixed"),
    path("async/slow-report/", views.slow_report, name="async-slow-report"),
    path("async/plain-private/", views.PlainPrivate.as_view(), name="plain-private"),
    path("async/plain-permitted/", views.PlainPermitted.as_view(), name="plain-permitted"),
    path("accounts/login/", views.SyncAbout.as_view(), name="login"),
    path("async/cached/", cache_page(60)(views.Greeting.as_view()), name="async-cached"),
]
for name, route, sync_view, async_view in PAIRS:
    urlpatterns.append(path(f"sync/{route}", sync_view.as_view(), name=f"sync-{name}"))
    urlpatterns.append(path(f"async/{route}", async_view.as_view(), name=f"async-{name}"))
