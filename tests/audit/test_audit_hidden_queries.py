"""Hazards behind sync Django APIs, and what is not one (the corpus files have the rest).

``rules_corpus/ash110_mail.py``, ``ash207_sites.py``, ``ash208_request_user.py``,
``ash209_session.py`` and the SQLModel part of ``ash107_database.py`` mark the
findings and their negative controls; these tests cover what a one-project
corpus cannot: modules that do not use Django, the message a user reads, and
the names the runtime detector would patch.
"""

from __future__ import annotations

import re
from pathlib import Path

from asgishift.audit._model import AuditConfig, Finding
from asgishift.audit.engine import audit_paths
from asgishift.audit.rules import get_rule

CONFIG = AuditConfig(cache_dir=None)
DOC = Path(__file__).resolve().parents[2] / "docs" / "django_async_views.md"
DOC_SECTION = "5. The user, the session, mail and the current site"


def _audit(tmp_path: Path, source: str) -> list[Finding]:
    (tmp_path / "views.py").write_text(source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    assert result.errors == []
    return list(result.findings)


def _message(finding: Finding) -> str:
    return get_rule(finding.code).message.format(**finding.args)


def test_a_starlette_request_user_is_no_query(tmp_path: Path) -> None:
    source = (
        "from starlette.responses import PlainTextResponse\n\n\n"
        "async def homepage(request):\n"
        "    if request.user.is_authenticated:\n"
        "        return PlainTextResponse(request.user.display_name)\n"
        '    return PlainTextResponse(request.session.get("name", ""))\n'
    )
    assert _audit(tmp_path, source) == []


def test_an_annotated_non_django_request_is_no_query_in_a_django_module(tmp_path: Path) -> None:
    source = (
        "from django.conf import settings\nfrom starlette.requests import Request\n\n\n"
        "async def homepage(request: Request):\n"
        '    return request.user.username, request.session["name"], settings.DEBUG\n'
    )
    assert _audit(tmp_path, source) == []


def test_the_same_view_in_a_django_module_is_reported(tmp_path: Path) -> None:
    source = (
        "from django.http import HttpResponse\n\n\n"
        "async def homepage(request):\n"
        '    return HttpResponse(request.user.username + request.session["name"])\n'
    )
    assert sorted(f.code for f in _audit(tmp_path, source)) == ["ASH208", "ASH209"]


def test_self_request_outside_a_django_module_is_no_query(tmp_path: Path) -> None:
    source = (
        "from starlette.endpoints import HTTPEndpoint\n\n\n"
        "class Home(HTTPEndpoint):\n"
        "    async def get(self, request):\n"
        "        return self.request.user.display_name, self.request.session.get('k')\n"
    )
    assert _audit(tmp_path, source) == []


def test_self_request_user_message_names_self_request_auser(tmp_path: Path) -> None:
    source = (
        "from django.views import View\n\n\n"
        "class Home(View):\n"
        "    async def get(self, *args):\n"
        "        return self.request.user.email\n"
    )
    (finding,) = _audit(tmp_path, source)
    assert _message(finding) == (
        "Reading self.request.user.email loads the user (session and database queries) in "
        "async code; use `user = await self.request.auser()` (Django 5.0+) and read `user.email`"
    )


def test_a_stored_user_stops_counting_once_request_is_rebound(tmp_path: Path) -> None:
    source = (
        "from django.http import HttpResponse\n\n\n"
        "async def view(request, factory, user):\n"
        "    request.user = user\n"
        "    name = request.user.username\n"
        "    request = factory.wrapped\n"
        "    return HttpResponse(name + request.user.username)\n"
    )
    (finding,) = _audit(tmp_path, source)
    assert (finding.code, finding.line) == ("ASH208", 8)


def test_a_rest_framework_request_has_its_user_loaded_but_not_its_session(
    tmp_path: Path,
) -> None:
    # DRF's Request proxies .session to Django's; its .user comes from the
    # view's authenticators, which run before the handler
    source = (
        "from rest_framework.request import Request\n\n\n"
        "async def handler(request: Request):\n"
        '    return request.user.username, request.session["cart"]\n'
    )
    assert [(f.code, f.line) for f in _audit(tmp_path, source)] == [("ASH209", 5)]


def test_request_user_message_names_the_async_accessor(tmp_path: Path) -> None:
    source = (
        "from django.http import HttpRequest\n\n\n"
        "async def who(req: HttpRequest):\n    return req.user.username\n"
    )
    (finding,) = _audit(tmp_path, source)
    assert _message(finding) == (
        "Reading req.user.username loads the user (session and database queries) in async "
        "code; use `user = await req.auser()` (Django 5.0+) and read `user.username`"
    )


def test_session_message_names_the_async_twin_of_each_access(tmp_path: Path) -> None:
    source = (
        "from django.http import HttpResponse\n\n\n"
        "async def cart(request):\n"
        '    request.session["n"] += 1\n'
        '    request.session.setdefault("seen", True)\n'
        "    return HttpResponse()\n"
    )
    messages = sorted(_message(f) for f in _audit(tmp_path, source))
    assert messages == [
        "request.session.setdefault() loads the session from its store in async code; use "
        "`await request.session.asetdefault(...)` (Django 5.1+) or `sync_to_async`",
        "request.session[...] loads the session from its store in async code; use "
        "`await request.session.aset(...)` (Django 5.1+) or `sync_to_async`",
    ]


def test_a_sync_closure_in_an_async_view_is_not_reported(tmp_path: Path) -> None:
    source = (
        "from asgiref.sync import sync_to_async\nfrom django.http import HttpResponse\n\n\n"
        "async def view(request):\n"
        "    def name():\n        return request.user.username\n\n"
        "    return HttpResponse(await sync_to_async(name)())\n"
    )
    assert _audit(tmp_path, source) == []


def test_sqlmodel_exec_is_reported_under_its_importable_name(tmp_path: Path) -> None:
    source = (
        "from sqlmodel import Session, select\n\n\n"
        "async def heroes(engine, Hero):\n"
        "    with Session(engine) as session:\n"
        "        return session.exec(select(Hero)).all()\n"
    )
    (finding,) = _audit(tmp_path, source)
    assert (finding.code, finding.args["call"]) == ("ASH107", "sqlmodel.Session.exec")
    assert "sqlmodel.Session.exec" in get_rule("ASH107").calls


def test_sqlalchemy_session_execute_is_still_sqlalchemys(tmp_path: Path) -> None:
    source = (
        "from sqlmodel import Session\n\n\n"
        "async def heroes(engine, statement):\n"
        "    with Session(engine) as session:\n"
        "        return session.execute(statement)\n"
    )
    (finding,) = _audit(tmp_path, source)
    assert finding.args["call"] == "sqlalchemy.orm.Session.execute"


def test_mail_from_a_helper_is_reported_with_its_chain(tmp_path: Path) -> None:
    source = (
        "from django.core.mail import get_connection\n\n\n"
        "def flush_outbox(messages):\n"
        "    with get_connection() as connection:\n"
        "        connection.send_messages(messages)\n\n\n"
        "async def checkout(messages):\n    flush_outbox(messages)\n"
    )
    (finding,) = _audit(tmp_path, source)
    assert finding.code == "ASH110"
    assert finding.args["call"] == "django.core.mail.backends.base.BaseEmailBackend.send_messages"
    assert [hop.function for hop in finding.chain] == ["views.checkout", "views.flush_outbox"]


def test_the_async_views_guide_shows_what_the_audit_reports_and_a_clean_fix(
    tmp_path: Path,
) -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {DOC_SECTION}\n", 1)[1].split("\n## ", 1)[0]
    before, after = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    shown = re.findall(r"^  (\d+):(\d+)  (ASH\d+)", section, re.MULTILINE)
    assert len(shown) == 5
    found = _audit(tmp_path, before)
    assert [(str(f.line), str(f.col), f.code) for f in found] == shown
    assert _audit(tmp_path, after) == []


PROJECT_TYPES = """from django.http import HttpRequest as DjangoRequest
from django.http import HttpRequest  # re-exported for the views


class AuthenticatedRequest(DjangoRequest):
    pass


class NotARequest:
    pass
"""
PROJECT_BASE = """from adrf.views import APIView


class BaseAPIView(APIView):
    pass
"""
PROJECT_VIEWS = """from django.views import View

from app.base import BaseAPIView
from app.types import AuthenticatedRequest, HttpRequest, NotARequest


async def typed(request: AuthenticatedRequest):
    return request.user.email, request.session["k"]


async def reexported(request: HttpRequest):
    return request.user.email


async def other(request: NotARequest):
    return request.user.email, request.session["k"]


class Api(BaseAPIView):
    async def get(self, request):
        return request.user.email, self.request.user.email, request.session.get("k")


class Page(View):
    async def get(self, request):
        return request.user.email
"""


def test_project_request_types_and_view_bases_are_resolved_across_modules(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "types.py").write_text(PROJECT_TYPES, encoding="utf-8")
    (app / "base.py").write_text(PROJECT_BASE, encoding="utf-8")
    (app / "views.py").write_text(PROJECT_VIEWS, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    assert result.errors == []
    assert [(f.line, f.code) for f in result.findings] == [
        (8, "ASH208"),  # a project subclass of HttpRequest
        (8, "ASH209"),
        (12, "ASH208"),  # Django's HttpRequest re-exported by a project module
        # line 16: NotARequest is no request
        (21, "ASH209"),  # an adrf view (through BaseAPIView): only the session
        (26, "ASH208"),  # a plain Django View
    ]


def test_mail_reached_only_from_tests_is_left_out_by_exclude_not_per_file_ignores(
    tmp_path: Path,
) -> None:
    """What ASH110's text and docs/django_async_views.md §5 advise for test suites."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "tests" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "shop" / "mail.py").write_text(
        "from django.core.mail import send_mail\n\n\n"
        'def notify(user):\n    send_mail("Hi", "Body", "f@example.com", [user])\n',
        encoding="utf-8",
    )
    (tmp_path / "tests" / "test_mail.py").write_text(
        'from shop.mail import notify\n\n\nasync def test_notify():\n    notify("a@example.com")\n',
        encoding="utf-8",
    )
    ignored = AuditConfig(cache_dir=None, per_file_ignores={"tests/**": ["ASH110"]})
    found = audit_paths([tmp_path], root=tmp_path, config=ignored).findings
    assert [(f.path, f.code) for f in found] == [("shop/mail.py", "ASH110")]
    excluded = AuditConfig(cache_dir=None, exclude=["tests/**"])
    assert audit_paths([tmp_path], root=tmp_path, config=excluded).findings == []
