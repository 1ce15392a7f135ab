"""ASH210 helpers: a project module re-exporting Django's mixin, a base view, a custom mixin."""

from django.contrib.auth.mixins import AccessMixin, LoginRequiredMixin
from django.views import View

__all__ = ["LoginRequiredMixin", "ProtectedView", "StaffRequiredMixin"]


class ProtectedView(LoginRequiredMixin, View):  # ok: no handlers, not a view by itself
    pass


class StaffRequiredMixin(AccessMixin):  # ok: a mixin, not a view
    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_staff:
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)
