"""Each generic view twice: Django's sync class and the asgishift async class.

The twins differ only in their base class, which is the conversion the
docs promise; ``tests/django_views/test_async_views_twins.py`` compares their
output.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import HttpResponse
from django.urls import reverse_lazy
from django.views import generic

from asgishift.django_integration import views as async_views
from asgishift.django_integration.db import aget_user, db_sync_to_async
from django import forms
from django_views.viewsapp.models import Post


class ContactForm(forms.Form):
    """A form with no model."""

    email = forms.EmailField()
    message = forms.CharField(max_length=100)


class ListOptions:
    """The list twins' shared configuration."""

    model = Post
    paginate_by = 3
    extra_context: ClassVar[dict[str, str]] = {"extra": "yes"}

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("author")  # type: ignore[misc]


class SyncList(ListOptions, generic.ListView):
    """Django's ListView."""


class AsyncList(ListOptions, async_views.AsyncListView):
    """The async twin."""


class AsyncListWithAsyncHooks(async_views.AsyncListView):
    """Async twin whose hooks are coroutines (same output as SyncList)."""

    model = Post
    paginate_by = 3
    extra_context: ClassVar[dict[str, str]] = {"extra": "yes"}

    async def get_queryset(self) -> Any:
        queryset = await db_sync_to_async(super().get_queryset)()
        return queryset.select_related("author")

    async def get_context_data(self, **kwargs: Any) -> Any:
        return await db_sync_to_async(super().get_context_data)(**kwargs)


class SyncDetail(generic.DetailView):
    """Django's DetailView."""

    model = Post


class AsyncDetail(async_views.AsyncDetailView):
    """The async twin."""

    model = Post


class Editing:
    """The editing twins' shared configuration."""

    model = Post
    fields = ("title", "body", "author", "tags")


class SyncCreate(Editing, generic.CreateView):
    """Django's CreateView."""


class AsyncCreate(Editing, async_views.AsyncCreateView):
    """The async twin."""


class SyncUpdate(Editing, generic.UpdateView):
    """Django's UpdateView."""


class AsyncUpdate(Editing, async_views.AsyncUpdateView):
    """The async twin."""


class SyncDelete(generic.DeleteView):
    """Django's DeleteView."""

    model = Post
    success_url = reverse_lazy("sync-list")


class AsyncDelete(async_views.AsyncDeleteView):
    """The async twin."""

    model = Post
    success_url = reverse_lazy("sync-list")


class About:
    """The template twins' shared configuration."""

    template_name = "viewsapp/about.html"

    def get_context_data(self, **kwargs: Any) -> Any:
        context = super().get_context_data(**kwargs)  # type: ignore[misc]
        context.update(greeting="hello", posts=Post.objects.count())
        return context


class SyncAbout(About, generic.TemplateView):
    """Django's TemplateView."""


class AsyncAbout(About, async_views.AsyncTemplateView):
    """The async twin (its sync hook queries the database on the worker thread)."""


class Greeting(async_views.AsyncTemplateView):
    """A template view without the database, for the cache test."""

    template_name = "viewsapp/about.html"

    def get_context_data(self, **kwargs: Any) -> Any:
        return {**super().get_context_data(**kwargs), "greeting": "cached"}


class Contact:
    """The form twins' shared configuration."""

    form_class = ContactForm
    template_name = "viewsapp/contact.html"
    success_url = "/thanks/"


class SyncContact(Contact, generic.FormView):
    """Django's FormView."""


class AsyncContact(Contact, async_views.AsyncFormView):
    """The async twin."""


class SyncRedirect(generic.RedirectView):
    """Django's RedirectView to a named URL."""

    pattern_name = "sync-detail"
    query_string = True


class AsyncRedirect(async_views.AsyncRedirectView):
    """The async twin."""

    pattern_name = "sync-detail"
    query_string = True


class SyncFirstPost(generic.RedirectView):
    """A RedirectView whose hook queries the database."""

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str | None:
        post = Post.objects.order_by("id").first()
        return None if post is None else post.get_absolute_url()


class AsyncFirstPost(async_views.AsyncRedirectView):
    """The async twin (sync hook: one hop)."""

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str | None:
        post = Post.objects.order_by("id").first()
        return None if post is None else post.get_absolute_url()


class SyncPrivate(LoginRequiredMixin, SyncList):
    """A login-required list."""


class AsyncPrivate(async_views.AsyncLoginRequiredMixin, AsyncList):
    """The async twin."""


class PlainPrivate(async_views.AsyncLoginRequiredMixin, generic.View):
    """The login twin in front of Django's plain ``View`` with an async handler."""

    async def get(self, request: Any) -> HttpResponse:
        user = await aget_user(request)  # Django 4.2 has no request.auser()
        return HttpResponse(f"user={user.get_username()}")


class PlainPermitted(async_views.AsyncPermissionRequiredMixin, generic.View):
    """The permission twin in front of Django's plain ``View`` with an async handler."""

    permission_required = "viewsapp.view_post"
    raise_exception = True

    async def get(self, request: Any) -> HttpResponse:
        return HttpResponse("permitted")


class SyncPermitted(PermissionRequiredMixin, SyncList):
    """A list needing ``viewsapp.view_post``."""

    permission_required = "viewsapp.view_post"
    raise_exception = True


class AsyncPermitted(async_views.AsyncPermissionRequiredMixin, AsyncList):
    """The async twin."""

    permission_required = "viewsapp.view_post"
    raise_exception = True


class LazyDetail(async_views.AsyncView):
    """A hand-written async handler touching a lazy relation: explained error."""

    async def get(self, request: Any, pk: int) -> Any:
        from django.http import HttpResponse

        post = await Post.objects.aget(pk=pk)
        return HttpResponse(post.author.name)


class Mixed(async_views.AsyncView):
    """An async GET and a sync POST on one view (Django's View refuses the mix)."""

    async def get(self, request: Any) -> Any:
        from django.http import HttpResponse

        return HttpResponse(f"get {await Post.objects.acount()}")

    def post(self, request: Any) -> Any:
        from django.http import HttpResponse

        return HttpResponse(f"post {Post.objects.count()}")  # on the worker thread


#: Set by ``slow_report`` once its transaction holds an uncommitted row (the test makes
#: a new event on its own event loop).
INSERTED: asyncio.Event | None = None


async def slow_report(request: Any) -> Any:
    """Insert a row inside ``aatomic``, then wait (for the client to go away)."""
    from django.http import HttpResponse

    from asgishift.django_integration.db import aatomic
    from django_support.testapp.models import Item

    async with aatomic(request.GET.get("using")):
        await Item.objects.acreate(name="uncommitted")
        if INSERTED is not None:
            INSERTED.set()
        await asyncio.sleep(30)
    return HttpResponse("done")
