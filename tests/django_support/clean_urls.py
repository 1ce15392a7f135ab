"""A URLconf with nothing any asgishift check warns about."""

from __future__ import annotations

from django.urls import path

from django_support.testapp import views

urlpatterns = [
    path("items/", views.item_count),
    path("stream/async/", views.async_stream),
]
