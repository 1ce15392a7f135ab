"""URLconf of the shared Django test settings (tests may override it with
``@pytest.mark.urls``)."""

from __future__ import annotations

from django.urls import path

from django_support.testapp import views

urlpatterns = [
    path("items/", views.item_count, name="item-count"),
]
