"""URLconf of the shared Django test settings (tests may override it with
``@pytest.mark.urls``)."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_support.testapp import views

urlpatterns = [
    path("items/", views.item_count, name="item-count"),
    path("async/", views.async_hello, name="async-hello"),
    path("state/", views.state_value, name="state"),
    path("stream/sync/", views.sync_stream, name="sync-stream"),
    path("stream/async/", views.async_stream, name="async-stream"),
    path("fail/", views.failing, name="fail"),
    path("echo/", csrf_exempt(views.echo_body), name="echo"),
]
