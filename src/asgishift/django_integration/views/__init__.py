"""Async generic views for Django: rename the base class, keep everything else.

``AsyncView``, ``AsyncTemplateView``, ``AsyncRedirectView``, ``AsyncListView``,
``AsyncDetailView``, ``AsyncFormView``, ``AsyncCreateView``, ``AsyncUpdateView``
and ``AsyncDeleteView`` are Django's generic views with an async ``dispatch``:
each request's sync handler, access checks and template rendering run in one
thread hop on the request's thread (:mod:`.base`). ``AsyncLoginRequiredMixin``
and ``AsyncPermissionRequiredMixin`` are Django's auth mixins for them (imported on
first use, so that a project without ``django.contrib.auth`` can use the other views).

See docs/django_async_views.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from asgishift.django_integration.views.auth import (
        AsyncLoginRequiredMixin,
        AsyncPermissionRequiredMixin,
    )

#: Loaded on first use (PEP 562): Django's auth mixins import the auth and contenttypes
#: models, which a project without ``django.contrib.auth`` in ``INSTALLED_APPS`` cannot
#: load, while the other views need neither.
_AUTH_MIXINS = frozenset({"AsyncLoginRequiredMixin", "AsyncPermissionRequiredMixin"})


def __getattr__(name: str) -> Any:
    """Import the auth mixins when first asked for (PEP 562 module ``__getattr__``).

    :raise AttributeError: for any other missing name.
    """
    if name in _AUTH_MIXINS:
        from asgishift.django_integration.views import auth

        return getattr(auth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
