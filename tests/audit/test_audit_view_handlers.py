"""ASH306: class-based views with both sync and ``async def`` handlers.

``rules_corpus/ash306_view_handlers.py`` marks the findings and their negative
controls; these tests hold the rule to what the installed Django does (the
classes it reports are the leaf views whose ``as_view()`` raises), and check
the message a user reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from audit_project import findings_of
from django.core.exceptions import ImproperlyConfigured

from asgishift.audit._model import Finding
from asgishift.audit.rules import get_rule

#: Views over Django's own classes only, so the module can be imported and asked.
VIEWS = """
from django.http import HttpResponse
from django.views import View
from django.views.generic import (
    DeleteView, DetailView, FormView, ListView, RedirectView, TemplateView, UpdateView,
)


class Mixed(View):
    async def get(self, request):
        return HttpResponse()

    def post(self, request):
        return HttpResponse()


class AllAsync(View):
    async def get(self, request):
        return HttpResponse()

    async def put(self, request):
        return HttpResponse()


class AllSync(View):
    def get(self, request):
        return HttpResponse()

    def trace(self, request):
        return HttpResponse()


class OptionsOnly(View):
    def options(self, request, *args, **kwargs):
        return HttpResponse()

    async def patch(self, request):
        return HttpResponse()


class Page(TemplateView):
    async def post(self, request):
        return HttpResponse()


class PageGet(TemplateView):
    async def get(self, request, *args, **kwargs):
        return HttpResponse()


class Form(FormView):
    async def get(self, request, *args, **kwargs):
        return HttpResponse()

    async def post(self, request, *args, **kwargs):
        return HttpResponse()

    async def put(self, request, *args, **kwargs):
        return HttpResponse()


class Listing(ListView):
    async def head(self, request, *args, **kwargs):
        return HttpResponse()


class Detail(DetailView):
    async def get(self, request, *args, **kwargs):
        return HttpResponse()


class Edit(UpdateView):
    async def get(self, request, *args, **kwargs):
        return HttpResponse()


class Remove(DeleteView):
    async def get(self, request, *args, **kwargs):
        return HttpResponse()

    async def post(self, request, *args, **kwargs):
        return HttpResponse()

    async def delete(self, request, *args, **kwargs):
        return HttpResponse()


class Redirect(RedirectView):
    async def get(self, request, *args, **kwargs):
        return HttpResponse()


class ReadOnly(View):
    http_method_names = ["GET", "options"]

    async def get(self, request):
        return HttpResponse()

    def post(self, request):
        return HttpResponse()


class ReadOnlyPage(TemplateView):
    http_method_names = ("post",)

    async def post(self, request):
        return HttpResponse()


class NarrowedStillMixed(View):
    http_method_names = ["get", "post"]

    async def get(self, request):
        return HttpResponse()

    def post(self, request):
        return HttpResponse()


class ReadOnlyBase(View):
    http_method_names = ["get"]

    async def get(self, request):
        return HttpResponse()

    def post(self, request):
        return HttpResponse()


class InheritsTheNarrowing(ReadOnlyBase):
    def delete(self, request):
        return HttpResponse()


class ReopensIt(ReadOnlyBase):
    http_method_names = View.http_method_names


class ReopensItByCall(ReadOnlyBase):
    http_method_names = list(View.http_method_names)
"""


def _audit(tmp_path: Path, files: dict[str, str]) -> list[Finding]:
    return findings_of(tmp_path, files, "ASH306")


def test_the_views_reported_are_the_ones_djangos_as_view_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported = {f.args["call"] for f in _audit(tmp_path, {"shopviews.py": VIEWS})}
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shopviews", raising=False)
    import shopviews  # type: ignore[import-not-found]

    refused = set()
    for name in dir(shopviews):
        cls = getattr(shopviews, name)
        if isinstance(cls, type) and cls.__module__ == "shopviews":
            try:
                cls.as_view()
            except ImproperlyConfigured as exc:
                says_why = "must either be all sync or all async" in str(exc)
                refused.add((f"shopviews.{name}", says_why))
    assert refused == {
        ("shopviews.Mixed", True),
        ("shopviews.Page", True),
        ("shopviews.Listing", True),
        ("shopviews.Edit", True),
        ("shopviews.Redirect", True),
        ("shopviews.NarrowedStillMixed", True),
        ("shopviews.ReopensIt", True),
        ("shopviews.ReopensItByCall", True),
    }
    assert reported == {name for name, _ in refused}


def test_the_message_names_each_handler_and_where_an_inherited_one_comes_from(
    tmp_path: Path,
) -> None:
    source = (
        "from django.http import HttpResponse\n"
        "from django.views.generic import TemplateView\n\n\n"
        "class Contact(TemplateView):\n"
        "    async def post(self, request):\n        return HttpResponse()\n\n"
        "    async def put(self, request):\n        return HttpResponse()\n"
    )
    (finding,) = _audit(tmp_path, {"views.py": source})
    message = get_rule("ASH306").message.format(**finding.args)
    assert message.startswith(
        "views.Contact has async handlers (post, put) and sync ones (get from TemplateView): "
    )
    assert "as_view() raises ImproperlyConfigured" in message
    assert (finding.path, finding.line) == ("views.py", 5)


def test_a_mixed_base_is_reported_through_its_leaf_in_another_module(tmp_path: Path) -> None:
    files = {
        "core/__init__.py": "",
        "core/base.py": (
            "from django.http import HttpResponse\nfrom django.views import View\n\n\n"
            "class Base(View):\n"
            "    async def get(self, request):\n        return HttpResponse()\n\n"
            "    def post(self, request):\n        return HttpResponse()\n"
        ),
        "shop/views.py": (
            "from django.http import HttpResponse\n\nfrom core.base import Base\n\n\n"
            "class Cart(Base):\n    pass\n\n\n"
            "class Orders(Base):\n"
            "    async def post(self, request):\n        return HttpResponse()\n"
        ),
    }
    found = _audit(tmp_path, files)
    assert [(f.path, f.args["call"], f.args["sync_handlers"]) for f in found] == [
        ("shop/views.py", "shop.views.Cart", "post from Base")
    ]


_MIXED_BASE = {
    "core/__init__.py": "",
    "core/views.py": (
        "from django.http import HttpResponse\nfrom django.views import View\n\n\n"
        "class Base(View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n"
        "    def post(self, request):\n        return HttpResponse()\n\n\n"
        "class Settled(Base):\n"
        "    async def post(self, request):\n        return HttpResponse()\n"
    ),
}


@pytest.mark.parametrize(
    "urls",
    [
        pytest.param(
            "from django.urls import path\n\nfrom core.views import Base, Settled\n\n"
            'urlpatterns = [path("a/", Base.as_view()), path("b/", Settled.as_view())]\n',
            id="imported-name",
        ),
        pytest.param(
            "from django.urls import include, path\n\nfrom core import views\n\n"
            "urlpatterns = [\n"
            '    path("shop/", include([path("", views.Base.as_view(), name="base")])),\n'
            "]\n"
            'urlpatterns += [path("b/", views.Settled.as_view())]\n',
            id="module-attribute-nested",
        ),
    ],
)
def test_a_mixed_base_that_a_urlconf_routes_itself_is_reported(tmp_path: Path, urls: str) -> None:
    # Base has a subclass that settles its handlers, so alone it is skipped
    # (see the next test); routed by as_view() it fails the URLconf's import.
    found = _audit(tmp_path, {**_MIXED_BASE, "core/urls.py": urls})
    assert [(f.path, f.args["call"], f.args["sync_handlers"]) for f in found] == [
        ("core/views.py", "core.views.Base", "post")
    ]


def test_a_mixed_base_no_urlconf_routes_is_not_reported(tmp_path: Path) -> None:
    urls = (
        "from django.urls import path\n\nfrom core.views import Settled\n\n"
        'urlpatterns = [path("b/", Settled.as_view())]\n'
    )
    assert _audit(tmp_path, {**_MIXED_BASE, "core/urls.py": urls}) == []


def test_a_mixed_base_routed_inside_a_method_is_reported(tmp_path: Path) -> None:
    # A ModelAdmin's get_urls() routes a view as a URLconf does, one call deeper.
    admin = (
        "from django.contrib import admin\nfrom django.urls import path\n\n"
        "from core.views import Base\n\n\n"
        "class ShopAdmin(admin.ModelAdmin):\n"
        "    def get_urls(self):\n"
        '        return [path("report/", self.admin_site.admin_view(Base.as_view()))]\n'
    )
    found = _audit(tmp_path, {**_MIXED_BASE, "core/admin.py": admin})
    assert [(f.path, f.args["call"]) for f in found] == [("core/views.py", "core.views.Base")]
