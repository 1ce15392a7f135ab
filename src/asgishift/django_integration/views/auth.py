"""Async twins of Django's ``LoginRequiredMixin`` and ``PermissionRequiredMixin``.

Django's mixins check ``request.user`` in a sync ``dispatch()``, which in an
async view loads the user on the event loop (``SynchronousOnlyOperation``).
Here the check moves into :meth:`AsyncViewMixin.check_access`, so it runs on
the worker thread in the same hop as the view's handler. Use them in front of
one of asgishift's async views, as with Django's::

    class Drafts(AsyncLoginRequiredMixin, AsyncListView): ...

Attributes and hooks are Django's (``login_url``, ``raise_exception``,
``permission_required``, ``has_permission``, ``handle_no_permission``, ...).

See https://docs.djangoproject.com/en/stable/topics/auth/default/#the-loginrequiredmixin-mixin
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ImproperlyConfigured

from asgishift.django_integration._hops import run
from asgishift.django_integration.views.base import AsyncViewMixin


def _check_order(cls: type, twin: type) -> None:
    """Refuse a view class that puts ``twin`` after an asgishift async view in its bases.

    There the view's ``dispatch`` and ``check_access`` come first in the method
    resolution order, so the twin's check would never run: every request would be let
    through. Django's own auth mixins have the same rule (leftmost), unenforced.

    :raise ImproperlyConfigured: naming the class and the fix.
    """
    mro = cls.__mro__
    if AsyncViewMixin in mro and mro.index(twin) > mro.index(AsyncViewMixin):
        view = next(base for base in mro if AsyncViewMixin in base.__mro__)
        raise ImproperlyConfigured(
            f"{cls.__module__}.{cls.__qualname__}: {twin.__name__} comes after "
            f"{view.__name__} in its bases, where its access check would never run; "
            f"put {twin.__name__} first, e.g. class {cls.__name__}({twin.__name__}, "
            f"{view.__name__})"
        )


class AsyncLoginRequiredMixin(LoginRequiredMixin):
    """Deny anonymous users (Django's ``LoginRequiredMixin``, for async views).

    In front of one of asgishift's async views (:class:`AsyncViewMixin`) the check
    runs in the handler's thread hop; in front of Django's plain ``View`` with
    ``async def`` handlers it runs in a hop of its own before the handler.

    :raise ImproperlyConfigured: at class creation, when a subclass lists it after an
        asgishift async view in its bases (the check would be skipped).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_order(cls, AsyncLoginRequiredMixin)

    async def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Check the user unless the view's :meth:`check_access` hop will, then dispatch."""
        if not isinstance(self, AsyncViewMixin):
            denied = await run(self.access_denied, (), {})
            if denied is not None:
                return denied
        return await super(LoginRequiredMixin, self).dispatch(request, *args, **kwargs)

    def access_denied(self) -> Any:
        """Return the response that denies an anonymous user, or ``None`` (worker thread).

        The login redirect, or ``PermissionDenied`` raised with ``raise_exception``, as
        Django's mixin does (``handle_no_permission``).
        """
        if not self.request.user.is_authenticated:
            return self.handle_no_permission()
        return None

    def check_access(self) -> Any:
        """Redirect to the login page (or raise ``PermissionDenied``) for anonymous users."""
        denied = self.access_denied()
        if denied is not None:
            return denied
        return super().check_access()


class AsyncPermissionRequiredMixin(PermissionRequiredMixin):
    """Require ``permission_required`` (Django's ``PermissionRequiredMixin``, for async views).

    Runs its check as :class:`AsyncLoginRequiredMixin` does.

    :raise ImproperlyConfigured: at class creation, when a subclass lists it after an
        asgishift async view in its bases (the check would be skipped).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_order(cls, AsyncPermissionRequiredMixin)

    async def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Check the permission unless the view's :meth:`check_access` hop will, then dispatch."""
        if not isinstance(self, AsyncViewMixin):
            denied = await run(self.access_denied, (), {})
            if denied is not None:
                return denied
        return await super(PermissionRequiredMixin, self).dispatch(request, *args, **kwargs)

    def access_denied(self) -> Any:
        """Return the response that denies a user without the permission, or ``None``.

        Runs on a worker thread; raises ``PermissionDenied`` with ``raise_exception``.
        """
        if not self.has_permission():
            return self.handle_no_permission()
        return None

    def check_access(self) -> Any:
        """Deny when :meth:`has_permission` is false, as Django's mixin does."""
        denied = self.access_denied()
        if denied is not None:
            return denied
        return super().check_access()
