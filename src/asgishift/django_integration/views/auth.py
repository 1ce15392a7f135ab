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


class AsyncLoginRequiredMixin(LoginRequiredMixin):
    """Deny anonymous users (Django's ``LoginRequiredMixin``, for async views)."""

    async def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Skip Django's sync check; :meth:`check_access` runs it in the view's hop."""
        return await super(LoginRequiredMixin, self).dispatch(request, *args, **kwargs)

    def check_access(self) -> Any:
        """Redirect to the login page (or raise ``PermissionDenied``) for anonymous users."""
        if not self.request.user.is_authenticated:
            return self.handle_no_permission()
        return super().check_access()


class AsyncPermissionRequiredMixin(PermissionRequiredMixin):
    """Require ``permission_required`` (Django's ``PermissionRequiredMixin``, for async views)."""

    async def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Skip Django's sync check; :meth:`check_access` runs it in the view's hop."""
        return await super(PermissionRequiredMixin, self).dispatch(request, *args, **kwargs)

    def check_access(self) -> Any:
        """Deny when :meth:`has_permission` is false, as Django's mixin does."""
        if not self.has_permission():
            return self.handle_no_permission()
        return super().check_access()
