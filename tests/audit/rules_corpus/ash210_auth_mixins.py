"""ASH210 sync-auth-mixin-in-async-view: Django's sync auth mixins on async class-based views."""

from django.contrib.auth import mixins
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.mixins import PermissionRequiredMixin as NeedsPermission
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.generic import FormView, TemplateView

from ash210_access import LoginRequiredMixin as ReExported
from ash210_access import ProtectedView, StaffRequiredMixin
from asgishift.django_integration.views import AsyncLoginRequiredMixin, AsyncView


class Dashboard(LoginRequiredMixin, View):  # error: ASH210:1
    async def get(self, request):
        return HttpResponse("hello")

    async def post(self, request):
        return HttpResponse("posted")


class Reports(NeedsPermission, View):  # error: ASH210:1
    permission_required = "reports.view_report"

    async def get(self, request):
        return HttpResponse("reports")


class Moderation(mixins.UserPassesTestMixin, View):  # error: ASH210:1
    def test_func(self):
        return self.request.user.is_staff

    async def get(self, request):
        return HttpResponse("queue")


class Inbox(ReExported, View):  # error: ASH210:1
    async def get(self, request):
        return HttpResponse("inbox")


class Account(ProtectedView):  # error: ASH210:1
    async def get(self, request):
        return HttpResponse("account")


class StaffOnly(StaffRequiredMixin, View):  # error: ASH210:1
    async def get(self, request):
        return HttpResponse("staff")


class Landing(LoginRequiredMixin, TemplateView):  # error: ASH210:1
    template_name = "landing.html"

    async def get(self, request, *args, **kwargs):
        return HttpResponse("landing")


class Audited(LoginRequiredMixin, View):  # error: ASH210:1
    async def dispatch(self, request, *args, **kwargs):
        request.audited = True
        return await super().dispatch(request, *args, **kwargs)

    async def get(self, request):
        return HttpResponse("audited")


class SyncDashboard(LoginRequiredMixin, View):  # ok: a sync view runs dispatch in a thread
    def get(self, request):
        return HttpResponse("hello")


class Mixed(LoginRequiredMixin, View):  # error: ASH306:1 (not ASH210: as_view() refuses it)
    async def get(self, request):
        return HttpResponse("read")

    def post(self, request):
        return HttpResponse("write")


class Contact(LoginRequiredMixin, FormView):  # error: ASH306:1 (FormView's post, put: mixed)
    async def get(self, request, *args, **kwargs):
        return HttpResponse("form")


class Twin(AsyncLoginRequiredMixin, AsyncView):  # ok: asgishift's async twin
    async def get(self, request):
        return HttpResponse("twin")


class Decorated(View):  # ok: Django's decorator wraps the async dispatch (Django 5.0+)
    @method_decorator(login_required)
    async def dispatch(self, request, *args, **kwargs):
        return await super().dispatch(request, *args, **kwargs)

    async def get(self, request):
        return HttpResponse("decorated")


class OwnCheck(LoginRequiredMixin, View):  # ok: its async dispatch never calls the mixin's
    async def dispatch(self, request, *args, **kwargs):
        user = await request.auser()
        if not user.is_authenticated:
            return HttpResponse(status=401)
        return await View.dispatch(self, request, *args, **kwargs)

    async def get(self, request):
        return HttpResponse("own")


@method_decorator(login_required, name="dispatch")
class ClassDecorated(View):  # error: ASH210:1
    async def get(self, request):
        return HttpResponse("wraps the inherited sync View.dispatch")


class DecoratedSyncDispatch:
    @method_decorator(login_required)
    def dispatch(self, *args, **kwargs):
        return super().dispatch(*args, **kwargs)


class Orders(DecoratedSyncDispatch, View):  # error: ASH210:1
    async def get(self, request):
        return HttpResponse("orders")


@method_decorator(login_required, name="dispatch")
class ClassDecoratedAsync(View):  # ok: the decorator wraps an async dispatch (Django 5.0+)
    async def dispatch(self, request, *args, **kwargs):
        return await super().dispatch(request, *args, **kwargs)

    async def get(self, request):
        return HttpResponse("ok")
