"""asgishift's system checks: each fires on the problem it names and stays quiet otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from asgishift.django_integration.checks import CHECKS
from asgishift.django_integration.lifespan import hooks

OURS = "django_support.asgi_apps.ours"
STOCK = "django_support.asgi_apps.stock"


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return sorted(m.id for m in messages if (m.id or "").startswith("asgishift."))


def run_checks(tags: tuple[str, ...] = ()) -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(tags=list(tags) or None) if m.id.startswith("asgishift")]


@pytest.mark.urls("django_support.clean_urls")
def test_stock_handler_middleware_named_with_hop_costs(settings: Any) -> None:
    settings.ASGI_APPLICATION = STOCK
    [warning] = run_checks()
    assert warning.id == "asgishift.W001"
    assert "django.contrib.sessions.middleware.SessionMiddleware (2)" in warning.msg
    assert "django.middleware.csrf.CsrfViewMiddleware (3)" in warning.msg
    assert "get_asgi_application" in warning.hint


@pytest.mark.urls("django_support.clean_urls")
def test_our_handler_is_quiet_with_conn_max_age(settings: Any) -> None:
    settings.ASGI_APPLICATION = OURS
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    try:
        assert run_checks() == []
        settings.ASGI_APPLICATION = STOCK
        assert ids(run_checks()) == ["asgishift.W001", "asgishift.W002"]
    finally:
        settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.mark.urls("django_support.clean_urls")
def test_asgi_py_beside_a_settings_package_is_found(settings: Any) -> None:
    """DJANGO_SETTINGS_MODULE = "config.settings.production" (a settings package, as
    cookiecutter-django and many older projects have): the project's asgi.py is
    config/asgi.py, and the stock handler there is reported; before, only
    config/settings/asgi.py was looked at and every stock-handler check stayed quiet."""
    settings.ASGI_APPLICATION = None
    settings.SETTINGS_MODULE = "django_support.split_layout.settings.production"
    [warning] = run_checks()
    assert warning.id == "asgishift.W001"
    assert warning.msg.startswith("django_support.split_layout.asgi.application is")


@pytest.mark.urls("django_support.clean_urls")
def test_stock_handler_inside_a_channels_router_is_reported(settings: Any) -> None:
    """ASGI_APPLICATION = a Channels ProtocolTypeRouter whose "http" is Django's stock
    handler (the Channels docs' asgi.py): HTTP runs on that handler, so W001 applies;
    before, a router was not looked into and the checks stayed quiet."""
    pytest.importorskip("channels")
    settings.ASGI_APPLICATION = "django_support.channels_asgi.application"
    [warning] = run_checks()
    assert warning.id == "asgishift.W001"
    assert "django_support.channels_asgi.application ('http' of its router)" in warning.msg
    settings.ASGI_APPLICATION = "django_support.channels_asgi.ours_application"
    assert run_checks() == []


@pytest.mark.urls("django_support.download_urls")
def test_file_response_is_reported_under_the_stock_handler(settings: Any) -> None:
    """FileResponse iterates its file synchronously, so Django's stock ASGI handler reads
    the whole file into memory before sending (Django warns "StreamingHttpResponse must
    consume synchronous iterators" at run time); before, W004 named only
    StreamingHttpResponse calls and said nothing about downloads."""
    settings.ASGI_APPLICATION = STOCK
    [warning] = [m for m in run_checks() if m.id == "asgishift.W004"]
    assert "django_support/download_urls.py:" in warning.msg.replace("\\", "/")
    assert "FileResponse" in warning.msg
    line = int(warning.msg.split("download_urls.py:")[1].split(":")[0])
    from django_support import download_urls

    source = Path(download_urls.__file__).read_text().splitlines()
    assert "FileResponse(open(" in source[line - 1]
    settings.ASGI_APPLICATION = OURS
    assert [m for m in run_checks() if m.id == "asgishift.W004"] == []


def test_atomic_requests_with_async_views(settings: Any) -> None:
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        found = [m for m in run_checks() if m.id == "asgishift.W003"]
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
    assert len(found) == 1
    assert "async/" in found[0].msg
    assert "items/" not in found[0].msg


@pytest.mark.urls("django_support.non_atomic_urls")
def test_atomic_requests_per_alias(settings: Any) -> None:
    """Django refuses an async view for each alias with ATOMIC_REQUESTS that the view is
    not ``non_atomic_requests`` for; a view opted out for ``default`` alone still fails
    when another alias has it on."""
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        assert [m for m in run_checks() if m.id == "asgishift.W003"] == []
        settings.DATABASES["other"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        settings.DATABASES["other"]["ATOMIC_REQUESTS"] = True
        [warning] = [m for m in run_checks() if m.id == "asgishift.W003"]
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
        settings.DATABASES.pop("other", None)
    assert warning.msg.endswith("these views are async: default/.")


def test_sync_iterator_streaming_is_found_with_file_and_line(settings: Any) -> None:
    settings.ASGI_APPLICATION = STOCK
    found = [m for m in run_checks() if m.id == "asgishift.W004"]
    assert len(found) == 1
    assert "django_support/testapp/views.py:" in found[0].msg.replace("\\", "/")
    line = int(found[0].msg.split("views.py:")[1].split(":")[0])
    from django_support.testapp import views

    source = Path(views.__file__).read_text().splitlines()
    assert "StreamingHttpResponse(chunks()" in source[line - 1]


@pytest.mark.urls("django_support.shadow_urls")
def test_sync_generator_names_resolve_per_scope(settings: Any) -> None:
    from django_support import shadow_urls

    settings.ASGI_APPLICATION = STOCK
    source = Path(shadow_urls.__file__).read_text().splitlines()
    marked = [n for n, line in enumerate(source, 1) if line.endswith("# W004")]
    found = [m.msg.replace("\\", "/") for m in run_checks() if m.id == "asgishift.W004"]
    lines = sorted(int(msg.split("shadow_urls.py:")[1].split(":")[0]) for msg in found)
    assert len(marked) == 2
    assert lines == marked


def test_sync_iterator_streaming_is_fine_with_our_handler_or_wsgi(settings: Any) -> None:
    """asgishift's handler streams a sync iterator one part per hop (docs/django.md,
    "The bounded handler"), and WSGI servers stream it too: only Django's stock ASGI
    handler reads it whole, so only that handler gets asgishift.W004."""
    settings.ASGI_APPLICATION = OURS
    assert [m for m in run_checks() if m.id == "asgishift.W004"] == []
    del settings.ASGI_APPLICATION  # no asgi.py: runasgi serves asgishift's handler
    assert [m for m in run_checks() if m.id == "asgishift.W004"] == []
    settings.ASGI_APPLICATION = STOCK
    assert len([m for m in run_checks() if m.id == "asgishift.W004"]) == 1


@pytest.mark.urls("django_support.clean_urls")
def test_missing_server_and_unknown_server(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DEBUG = True  # a development setup, where runasgi is used
    settings.ASGISHIFT_RUNASGI_SERVER = "granian"
    assert run_checks() == []
    monkeypatch.setitem(sys.modules, "granian", None)
    [warning] = run_checks()
    assert warning.id == "asgishift.W005"
    assert "asgishift[granian]" in warning.msg
    settings.ASGISHIFT_RUNASGI_SERVER = "gunicorn"
    [error] = run_checks()
    assert (error.id, error.level) == ("asgishift.E001", checks.ERROR)


@pytest.mark.urls("django_support.clean_urls")
def test_missing_dev_server_is_not_reported_with_debug_off(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production settings file (DEBUG off) on a machine without runasgi's server, e.g.
    one that serves with granian or gunicorn and has no uvicorn: runasgi is not used
    there, so ``check --deploy`` (and every migrate) says nothing about it; before, W005
    was reported there."""
    settings.DEBUG = False
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    out, err = StringIO(), StringIO()
    call_command("check", "--deploy", stdout=out, stderr=err)
    assert "asgishift" not in out.getvalue() + err.getvalue()
    settings.ASGISHIFT_RUNASGI_SERVER = "gunicorn"  # a wrong name is still an error
    assert ids(run_checks()) == ["asgishift.E001"]


@pytest.mark.urls("django_support.clean_urls")
def test_check_deploy_is_quiet_about_asgishift() -> None:
    out, err = StringIO(), StringIO()
    call_command("check", "--deploy", stdout=out, stderr=err)
    assert "asgishift" not in out.getvalue() + err.getvalue()
    assert "security.W" in out.getvalue() + err.getvalue()  # the command did run the checks


@contextlib.asynccontextmanager
async def good_hook(state: Any) -> AsyncIterator[None]:
    yield


async def undecorated_hook(state: Any) -> AsyncIterator[None]:  # no @asynccontextmanager
    yield


async def coroutine_hook(state: Any) -> None:
    return None


NOT_A_HOOK = {"a": 1}


@pytest.mark.urls("django_support.clean_urls")
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([f"{__name__}.good_hook", "django_support.no_such_module.hook"], "cannot be imported"),
        ([f"{__name__}.no_such_hook"], "cannot be imported"),
        (f"{__name__}.good_hook", "must be a list or tuple of dotted paths, not str"),
        ([good_hook], "is not a dotted path (a string)"),
        ([f"{__name__}.NOT_A_HOOK"], "is not callable"),
        ([f"{__name__}.undecorated_hook"], "contextlib.asynccontextmanager"),
        ([f"{__name__}.coroutine_hook"], "contextlib.asynccontextmanager"),
    ],
)
def test_bad_lifespan_setting_is_a_check_error(settings: Any, value: Any, says: str) -> None:
    """A typo in ASGISHIFT_LIFESPAN is reported by ``manage.py check`` (so runasgi, migrate
    and check --deploy stop on it), naming the setting, the entry and the fix; before, it
    showed only when a server started (lifespan startup failed with an ImportError)."""
    settings.ASGISHIFT_LIFESPAN = value
    [error] = run_checks()
    assert (error.id, error.level) == ("asgishift.E002", checks.ERROR)
    assert error.msg.startswith("ASGISHIFT_LIFESPAN")
    assert says in error.msg
    assert "dotted path" in error.hint
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemCheckError, match=r"asgishift\.E002"):
        call_command("check", stdout=out, stderr=err)
    with pytest.raises(ImproperlyConfigured, match=r"^ASGISHIFT_LIFESPAN"):
        hooks()  # what a server without the checks meets at lifespan startup


@pytest.mark.urls("django_support.clean_urls")
def test_good_lifespan_setting_is_quiet(settings: Any) -> None:
    settings.ASGISHIFT_LIFESPAN = (f"{__name__}.good_hook",)
    assert run_checks() == []
    settings.ASGISHIFT_LIFESPAN = [f"{__name__}.good_hook", f"{__name__}.nope"]
    assert ids(run_checks()) == ["asgishift.E002"]


def test_every_check_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "django.md").read_text()
    for info in CHECKS:
        assert info.id in docs, info.id


@pytest.mark.urls("django_support.clean_urls")
@pytest.mark.parametrize("name", ["ASGISHIFT_MAX_THREADS", "ASGISHIFT_ORM_THREADS"])
@pytest.mark.parametrize("value", [0, -2, 2.5, "8", True, None])
def test_thread_count_setting_that_is_no_positive_int_is_an_error(
    settings: Any, name: str, value: Any
) -> None:
    """ASGISHIFT_MAX_THREADS = 2.5 stopped runasgi with a traceback naming max_workers,
    and ASGISHIFT_ORM_THREADS = 0 showed only at the first ORM call outside a request;
    now ``manage.py check`` names the setting."""
    setattr(settings, name, value)
    [error] = run_checks()
    assert (error.id, error.level) == ("asgishift.E003", checks.ERROR)
    assert error.msg == f"{name} = {value!r}; it must be a whole number of 1 or more."
    setattr(settings, name, 4)
    assert run_checks() == []


@pytest.mark.parametrize("value", [0, 2.5, "eight"])
def test_runasgi_names_a_bad_max_threads_setting(settings: Any, value: Any) -> None:
    """runasgi's --max-threads defaults to ASGISHIFT_MAX_THREADS; a bad setting is a
    CommandError naming it (before: argparse's "invalid int value", a ValueError traceback
    about max_workers, or "--max-threads must be at least 1" for a flag never given)."""
    from django.core.management.base import CommandError

    settings.ASGISHIFT_MAX_THREADS = value
    with pytest.raises(CommandError, match=r"^ASGISHIFT_MAX_THREADS = .*, the default of"):
        call_command("runasgi", "127.0.0.1:8000", "--noreload")
    with pytest.raises(CommandError, match=r"^--max-threads must be at least 1, got 0"):
        call_command("runasgi", "127.0.0.1:8000", "--noreload", "--max-threads", "0")


def test_runasgi_names_a_bad_server_setting(settings: Any) -> None:
    """runasgi's --server defaults to ASGISHIFT_RUNASGI_SERVER; a typo there is a
    CommandError naming the setting (before: "unknown server 'uvcorn'", which named
    neither the setting nor that no --server had been given)."""
    from django.core.management.base import CommandError

    settings.ASGISHIFT_RUNASGI_SERVER = "uvcorn"
    with pytest.raises(CommandError, match=r"^ASGISHIFT_RUNASGI_SERVER = 'uvcorn', the default"):
        call_command("runasgi", "127.0.0.1:8000", "--noreload")


def test_register_refuses_what_is_no_hook() -> None:
    """``register()`` (called from AppConfig.ready()) refuses an undecorated async
    generator function or coroutine function, or a non-callable, at once, naming the
    fix; before, it was taken, and lifespan startup failed at the first server start
    with "'async_generator' object does not support the asynchronous context manager
    protocol"."""
    from asgishift.django_integration import lifespan

    for bad in (undecorated_hook, coroutine_hook, NOT_A_HOOK):
        with pytest.raises(TypeError, match=r"^register\(\) takes a lifespan hook"):
            lifespan.register(bad)  # type: ignore[arg-type]
    assert lifespan.register(good_hook) is good_hook
    lifespan._registered.remove(good_hook)
    assert all(hook not in lifespan._registered for hook in (undecorated_hook, coroutine_hook))
