"""Unit tests for WSGI/ASGI detection (the heuristic in ``asgishift.serve._detect``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from typing import Any

import pytest
from flask import Flask

from asgishift.serve import AppInterfaceError, Detection, detect_interface


def wsgi_function(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("204 No Content", [])
    return []


async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    return None


def asgi_returning_awaitable(scope: Any, receive: Any, send: Any) -> Any:
    return asgi_function(scope, receive, send)


class AsyncCallable:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


class SyncCallable:
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return []


class Middleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, *args: Any) -> Any:
        return self.app(*args)


def marked(*args: Any) -> Any:
    return None


if hasattr(inspect, "markcoroutinefunction"):  # Python >= 3.12
    inspect.markcoroutinefunction(marked)


@pytest.mark.parametrize(
    ("app", "interface", "reason"),
    [
        pytest.param(Flask("detect"), "wsgi", "Flask app (has wsgi_app)", id="flask"),
        pytest.param(wsgi_function, "wsgi", "callable(environ, start_response)", id="wsgi-func"),
        pytest.param(SyncCallable(), "wsgi", "callable(environ, start_response)", id="wsgi-obj"),
        pytest.param(asgi_function, "asgi", "async function", id="async-func"),
        pytest.param(AsyncCallable(), "asgi", "async __call__", id="async-obj"),
        pytest.param(
            functools.partial(asgi_function), "asgi", "async function", id="partial-async"
        ),
        pytest.param(
            asgi_returning_awaitable, "asgi", "callable(scope, receive, send)", id="three-args"
        ),
    ],
)
def test_detects_interface(app: object, interface: str, reason: str) -> None:
    detection = detect_interface(app)
    assert detection.interface == interface
    assert detection.reason == reason


@pytest.mark.parametrize(
    ("module", "name", "interface", "reason"),
    [
        pytest.param("wsgi", "WSGIHandler", "wsgi", "Django WSGIHandler", id="django-wsgi"),
        pytest.param("asgi", "ASGIHandler", "asgi", "async __call__", id="django-asgi"),
    ],
)
def test_detects_django_handlers(module: str, name: str, interface: str, reason: str) -> None:
    handlers = pytest.importorskip(f"django.core.handlers.{module}")
    cls = getattr(handlers, name)
    # Built without __init__, which would need configured settings; the
    # class's attributes and __call__ are what detection looks at.
    handler = cls.__new__(cls)
    assert detect_interface(handler) == Detection(interface, reason)


@pytest.mark.skipif(not hasattr(inspect, "markcoroutinefunction"), reason="Python >= 3.12")
def test_markcoroutinefunction_counts_as_asgi() -> None:
    assert detect_interface(marked).interface == "asgi"


@pytest.mark.parametrize(
    ("app", "fix"),
    [
        pytest.param(AsyncCallable, "point at an instance", id="class"),
        pytest.param({"a": 1}, "not callable", id="not-callable"),
        pytest.param(lambda: None, "add --factory", id="factory-like"),
        pytest.param(Middleware(wsgi_function), "--interface wsgi", id="varargs"),
        pytest.param(lambda a: a, "pass --interface", id="one-arg"),
    ],
)
def test_undecidable_apps_name_the_fix(app: object, fix: str) -> None:
    with pytest.raises(AppInterfaceError, match=fix) as info:
        detect_interface(app)
    assert info.value.exit_code == 2
