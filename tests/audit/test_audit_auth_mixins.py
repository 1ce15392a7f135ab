"""ASH210: Django's sync auth mixins in front of async class-based views.

``rules_corpus/ash210_auth_mixins.py`` (with ``ash210_access.py``) marks the
findings on views with ``async def`` handlers and their negative controls;
these tests cover what the corpus cannot (its sync-only rewrite must stay
silent, and asgishift's async views are async without an ``async def``), the
message a user reads, packages re-exporting a mixin, and the rule's tables
against the installed Django and asgishift.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import django.views.generic as generic
import pytest
from audit_project import CONFIG, findings_of
from django.views.generic import dates, detail, edit
from django.views.generic import list as list_views

import asgishift.django_integration.views as async_views
from asgishift.audit._model import Finding
from asgishift.audit.engine import audit_paths
from asgishift.audit.rules import get_rule
from asgishift.audit.rules.auth_mixins import (
    ASYNC_TWINS,
    ASYNC_VIEWS,
    DJANGO_VIEW_HANDLERS,
    HANDLERS,
    KNOWN_BASES,
    SYNC_AUTH_MIXINS,
)

HEAD = (
    "from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin\n"
    "from django.http import HttpResponse\n"
    "from django.views import View\n"
    "from asgishift.django_integration.views import (\n"
    "    AsyncListView, AsyncPermissionRequiredMixin, AsyncTemplateView, AsyncView,\n"
    ")\n\n\n"
)


def _audit(tmp_path: Path, files: dict[str, str]) -> list[Finding]:
    return findings_of(tmp_path, files, "ASH210")


def _views(tmp_path: Path, body: str) -> list[str]:
    findings = _audit(tmp_path, {"views.py": HEAD + body})
    return sorted(f.args["call"] for f in findings)


def test_django_mixin_before_an_asgishift_async_view_is_reported(tmp_path: Path) -> None:
    body = (
        "class Drafts(LoginRequiredMixin, AsyncListView):\n    paginate_by = 20\n\n\n"
        "class Home(PermissionRequiredMixin, AsyncTemplateView):\n"
        '    template_name = "home.html"\n'
    )
    assert _views(tmp_path, body) == ["views.Drafts", "views.Home"]


def test_mixins_after_a_view_never_run_and_twins_check_in_a_thread(tmp_path: Path) -> None:
    body = (
        "class After(AsyncTemplateView, LoginRequiredMixin):\n"
        '    template_name = "x.html"\n\n\n'
        "class AfterView(View, LoginRequiredMixin):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class Twin(AsyncPermissionRequiredMixin, AsyncView):\n"
        '    permission_required = "a.b"\n\n'
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class NotAView(LoginRequiredMixin):\n"
        "    async def get(self, request):\n        return HttpResponse()\n"
    )
    assert _views(tmp_path, body) == []


def test_a_mixin_re_exported_by_a_package_and_a_base_in_another_module(tmp_path: Path) -> None:
    files = {
        "core/__init__.py": "from core.auth import Protected, Required\n",
        "core/auth.py": (
            "from django.contrib.auth.mixins import LoginRequiredMixin as Required\n"
            "from django.views import generic\n\n\n"
            "class Protected(Required, generic.View):\n    pass\n"
        ),
        "shop/views.py": (
            "from django.http import HttpResponse\nfrom django.views import View\n\n"
            "import core\n\n\n"
            "class Cart(core.Required, View):\n"
            "    async def get(self, request):\n        return HttpResponse()\n\n\n"
            "class Orders(core.Protected):\n"
            "    async def get(self, request):\n        return HttpResponse()\n\n"
            "    async def delete(self, request):\n        return HttpResponse()\n"
        ),
    }
    found = _audit(tmp_path, files)
    assert sorted((f.path, f.args["call"], f.args["mixin"]) for f in found) == [
        ("shop/views.py", "shop.views.Cart", "LoginRequiredMixin"),
        ("shop/views.py", "shop.views.Orders", "LoginRequiredMixin"),
    ]


def test_the_message_names_the_async_twin_or_the_decorator(tmp_path: Path) -> None:
    body = (
        "from django.contrib.auth.mixins import UserPassesTestMixin\n\n\n"
        "class A(LoginRequiredMixin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class B(PermissionRequiredMixin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class C(UserPassesTestMixin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n"
    )
    findings = _audit(tmp_path, {"views.py": HEAD + body})
    messages = {f.args["call"]: get_rule("ASH210").message.format(**f.args) for f in findings}
    assert "AsyncLoginRequiredMixin" in messages["views.A"]
    assert "method_decorator(login_required)" in messages["views.A"]
    assert "AsyncPermissionRequiredMixin" in messages["views.B"]
    assert "UserPassesTestMixin checks request.user in a sync dispatch()" in messages["views.C"]
    assert "user_passes_test" in messages["views.C"]
    assert messages["views.A"].startswith("views.A is an async view, but LoginRequiredMixin ")


def test_a_custom_access_mixin_without_super_is_reported_by_name(tmp_path: Path) -> None:
    body = (
        "from django.contrib.auth.mixins import AccessMixin\n"
        "from django.core.exceptions import PermissionDenied\n\n\n"
        "class StaffOnly(AccessMixin):\n"
        "    def dispatch(self, request, *args, **kwargs):\n"
        "        if not request.user.is_staff:\n            raise PermissionDenied\n"
        "        return View.dispatch(self, request, *args, **kwargs)\n\n\n"
        "class Panel(StaffOnly, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class Passthrough:\n"
        "    def dispatch(self, request, *args, **kwargs):\n"
        "        return super().dispatch(request, *args, **kwargs)\n\n\n"
        "class Chained(Passthrough, LoginRequiredMixin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n"
    )
    findings = _audit(tmp_path, {"views.py": HEAD + body})
    assert sorted((f.args["call"], f.args["mixin"]) for f in findings) == [
        ("views.Chained", "LoginRequiredMixin"),
        ("views.Panel", "views.StaffOnly"),
    ]


def _django_class(name: str) -> type:
    for module in (generic, dates, detail, edit, list_views):
        found = getattr(module, name, None)
        if isinstance(found, type):
            return found
    raise AssertionError(f"django.views.generic has no {name}")


@pytest.mark.parametrize("name", sorted(DJANGO_VIEW_HANDLERS))
def test_the_handler_table_matches_the_installed_django(name: str) -> None:
    cls = _django_class(name)
    handlers = {h for h in HANDLERS if hasattr(cls, h)}
    assert handlers == set(DJANGO_VIEW_HANDLERS[name])
    assert not any(inspect.iscoroutinefunction(getattr(cls, h)) for h in handlers)


def test_the_mixin_tables_match_django_and_asgishift() -> None:
    from django.contrib.auth import mixins

    for dotted in SYNC_AUTH_MIXINS:
        mixin = getattr(mixins, dotted.rsplit(".", 1)[1])
        assert not inspect.iscoroutinefunction(mixin.dispatch), dotted
        assert mixins.AccessMixin in mixin.__mro__
    for twin in ASYNC_TWINS:
        cls = getattr(async_views, twin.rsplit(".", 1)[1])
        assert inspect.iscoroutinefunction(cls.dispatch)
        (base,) = KNOWN_BASES[twin]
        assert getattr(mixins, base.rsplit(".", 1)[1]) in cls.__mro__
    for name in ASYNC_VIEWS:
        view = getattr(async_views, name)
        assert view.view_is_async is True
        assert inspect.iscoroutinefunction(view.dispatch)


def test_auth_decorators_around_a_sync_dispatch_are_reported(tmp_path: Path) -> None:
    body = (
        "from django.contrib.admin.views.decorators import staff_member_required\n"
        "from django.contrib.auth.decorators import permission_required\n"
        "from django.utils.decorators import method_decorator\n\n\n"
        '@method_decorator([staff_member_required, permission_required("a.b")], name="dispatch")\n'
        "class Staff(View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        '@method_decorator(staff_member_required, name="dispatch")\n'
        "class AsyncDispatch(View):\n"
        "    async def dispatch(self, request, *args, **kwargs):\n"
        "        return await super().dispatch(request, *args, **kwargs)\n\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        '@method_decorator(staff_member_required, name="dispatch")\n'
        "class SyncView(View):\n"
        "    def get(self, request):\n        return HttpResponse()\n"
    )
    findings = _audit(tmp_path, {"views.py": HEAD + body})
    assert [(f.args["call"], f.args["mixin"]) for f in findings] == [
        ("views.Staff", "@method_decorator(staff_member_required)")
    ]
    assert "put it on an `async def dispatch`" in get_rule("ASH210").message.format(
        **findings[0].args
    )


def test_a_hand_made_async_twin_that_checks_the_user_first(tmp_path: Path) -> None:
    body = (
        "from asgiref.sync import sync_to_async\n\n\n"
        "class AuserTwin(LoginRequiredMixin):\n"
        "    async def dispatch(self, request, *args, **kwargs):\n"
        "        user = await request.auser()\n"
        "        if not user.is_authenticated:\n"
        "            return self.handle_no_permission()\n"
        "        return await super().dispatch(request, *args, **kwargs)\n\n\n"
        "class ThreadTwin(LoginRequiredMixin):\n"
        "    async def dispatch(self, request, *args, **kwargs):\n"
        "        if not await sync_to_async(lambda: request.user.is_authenticated)():\n"
        "            return HttpResponse(status=401)\n"
        "        return await super().dispatch(request, *args, **kwargs)\n\n\n"
        "class PermTwin(PermissionRequiredMixin):\n"
        "    async def dispatch(self, request, *args, **kwargs):\n"
        "        user = await request.auser()\n"
        "        if not user.is_authenticated:\n"
        "            return self.handle_no_permission()\n"
        "        return await super().dispatch(request, *args, **kwargs)\n\n\n"
        "class Logging(LoginRequiredMixin):\n"
        "    async def dispatch(self, request, *args, **kwargs):\n"
        "        request.seen = True\n"
        "        return await super().dispatch(request, *args, **kwargs)\n\n\n"
        "class One(AuserTwin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class Two(ThreadTwin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class Three(PermTwin, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n\n\n"
        "class Four(Logging, View):\n"
        "    async def get(self, request):\n        return HttpResponse()\n"
    )
    findings = _audit(tmp_path, {"views.py": HEAD + body})
    # LoginRequiredMixin's check then reads the user the twin loaded; has_perms()
    # still queries the permissions, and a dispatch that checks nothing loads nothing.
    assert sorted((f.args["call"], f.args["mixin"]) for f in findings) == [
        ("views.Four", "LoginRequiredMixin"),
        ("views.Three", "PermissionRequiredMixin"),
    ]


def test_method_decorator_gives_the_method_the_decorator_it_adapts(tmp_path: Path) -> None:
    # ASH209 skips a function whose decorator loaded the session; through
    # method_decorator the async dispatch has login_required's async wrapper.
    body = (
        "from django.contrib.auth.decorators import login_required\n"
        "from django.utils.decorators import method_decorator\n\n\n"
        "class Cart(View):\n"
        "    @method_decorator(login_required)\n"
        "    async def dispatch(self, request, *args, **kwargs):\n"
        '        request.cart = request.session.get("cart", [])\n'
        "        return await super().dispatch(request, *args, **kwargs)\n\n"
        "    async def get(self, request):\n"
        '        return HttpResponse(request.session.get("cart", []))\n'
    )
    (tmp_path / "views.py").write_text(HEAD + body, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    lines = {f.snippet for f in result.findings if f.code == "ASH209"}
    assert lines == {'return HttpResponse(request.session.get("cart", []))'}
