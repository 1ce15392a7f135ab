"""URLconf whose ``handler404`` queries the database (a project's 404 page showing, say,
the newest books), recording the connection wrapper of the thread it ran on."""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse

from django_support.testapp.models import Author

#: The ``default`` connection wrapper of each thread the 404 page ran on.
USED: list[Any] = []

urlpatterns: list[Any] = []


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The project's 404 page: counts authors, so it opens a database connection."""
    USED.append(connections["default"])
    return HttpResponse(f"authors: {Author.objects.count()}", status=404)


handler404 = not_found
