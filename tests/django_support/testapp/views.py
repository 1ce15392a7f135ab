"""Views of the shared test URLconf."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from django_support.testapp.models import Item


def item_count(request: HttpRequest) -> JsonResponse:
    """Sync view with one ORM query: ``{"items": N}``."""
    return JsonResponse({"items": Item.objects.count()})
