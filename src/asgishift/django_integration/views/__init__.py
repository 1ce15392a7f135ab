"""Async generic views for Django: rename the base class, keep everything else.

``AsyncView``, ``AsyncTemplateView``, ``AsyncRedirectView``, ``AsyncListView``,
``AsyncDetailView``, ``AsyncFormView``, ``AsyncCreateView``, ``AsyncUpdateView``
and ``AsyncDeleteView`` are Django's generic views with an async ``dispatch``:
each request's sync handler, access checks and template rendering run in one
thread hop on the request's thread (:mod:`.base`). ``AsyncLoginRequiredMixin``
and ``AsyncPermissionRequiredMixin`` are Django's auth mixins for them.

See docs/django_async_views.md.
"""

from __future__ import annotations

from asgishift.django_integration.views.auth import (
    AsyncLoginRequiredMixin,
    AsyncPermissionRequiredMixin,
)
from asgishift.django_integration.views.base import (
    AsyncRedirectView,
    AsyncTemplateView,
    AsyncView,
    AsyncViewMixin,
)
from asgishift.django_integration.views.generic import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncDetailView,
    AsyncFormView,
    AsyncListView,
    AsyncUpdateView,
)

__all__ = [
    "AsyncCreateView",
    "AsyncDeleteView",
    "AsyncDetailView",
    "AsyncFormView",
    "AsyncListView",
    "AsyncLoginRequiredMixin",
    "AsyncPermissionRequiredMixin",
    "AsyncRedirectView",
    "AsyncTemplateView",
    "AsyncUpdateView",
    "AsyncView",
    "AsyncViewMixin",
]
