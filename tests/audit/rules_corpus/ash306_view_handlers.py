"""ASH306 mixed-sync-async-view-handlers: class-based views that as_view() refuses."""

from django.http import HttpResponse
from django.views import View
from django.views.generic import FormView, RedirectView, TemplateView
from django.views.generic.edit import CreateView
from rest_framework.views import APIView

from asgishift.django_integration.views import AsyncTemplateView, AsyncView


class Articles(View):  # error: ASH306:1
    async def get(self, request):
        return HttpResponse("list")

    def post(self, request):
        return HttpResponse("created")


class Contact(TemplateView):  # error: ASH306:1
    template_name = "contact.html"

    async def post(self, request):
        return HttpResponse("sent")


class Signup(FormView):  # error: ASH306:1
    async def get(self, request, *args, **kwargs):
        return HttpResponse("form")


class NewNote(CreateView):  # error: ASH306:1
    async def post(self, request, *args, **kwargs):
        return HttpResponse("created")


class Away(RedirectView):  # error: ASH306:1
    url = "/elsewhere"

    async def get(self, request, *args, **kwargs):
        return HttpResponse("moved")


class Ping(APIView):  # error: ASH306:1
    async def get(self, request):
        return HttpResponse("pong")

    def delete(self, request):
        return HttpResponse("gone")


class ReadWriteBase(View):  # ok: a base class; each subclass is checked
    async def get(self, request):
        return HttpResponse("read")

    def post(self, request):
        return HttpResponse("write")


class ReadWrite(ReadWriteBase):  # ok: it settles the handlers: all async
    async def post(self, request):
        return HttpResponse("write")


class StillMixed(ReadWriteBase):  # error: ASH306:1
    async def head(self, request):
        return HttpResponse("")


class AllAsync(View):  # ok: every handler async
    async def get(self, request):
        return HttpResponse("read")

    async def post(self, request):
        return HttpResponse("write")


class AsyncOptions(View):  # ok: options does not count
    def options(self, request, *args, **kwargs):
        return HttpResponse("")

    async def get(self, request):
        return HttpResponse("read")


class AsyncContact(AsyncTemplateView):  # ok: asgishift's async generic view
    template_name = "contact.html"

    async def post(self, request):
        return HttpResponse("sent")


class Plain(AsyncView):  # ok: asgishift's async views take both kinds
    async def get(self, request):
        return HttpResponse("read")

    def post(self, request):
        return HttpResponse("write")


class NotAView:  # ok: no Django view among its bases
    async def get(self, request):
        return HttpResponse("read")

    def post(self, request):
        return HttpResponse("write")


class ReadOnlyNotes(View):  # ok: http_method_names leaves the sync handler out
    http_method_names = ["get", "head", "options"]

    async def get(self, request):
        return HttpResponse("read")

    def post(self, request):
        return HttpResponse("write")


class ReadWriteNotes(View):  # error: ASH306:1
    http_method_names = ("GET", "POST")

    async def get(self, request):
        return HttpResponse("read")

    def post(self, request):
        return HttpResponse("write")
