"""A URLconf of async views opted out of ``ATOMIC_REQUESTS`` (asgishift.W003 tests):
``default/`` for the ``default`` alias only, ``both/`` for ``default`` and ``other``.
Django refuses a view for each alias with ATOMIC_REQUESTS it is not opted out for."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path


@transaction.non_atomic_requests
async def default_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("default only")


@transaction.non_atomic_requests(using="other")
@transaction.non_atomic_requests(using="default")
async def both(request: HttpRequest) -> HttpResponse:
    return HttpResponse("both")


urlpatterns = [
    path("default/", default_only),
    path("both/", both),
]
