"""Tell a WSGI application from an ASGI one.

Heuristic, first match wins (``--interface`` skips it entirely):

1. A class (not an instance) is rejected: ASGI 2 "double callable" classes
   are not supported, and a class is usually a mistake for an instance.
2. The callable, or its ``__call__`` for instances, is a coroutine function
   (``inspect.iscoroutinefunction``, which also sees
   ``inspect.markcoroutinefunction`` marks) -> **ASGI**. This covers
   Starlette, Quart, FastAPI and Django's ``ASGIHandler``.
3. Known WSGI frameworks, recognised by attribute rather than by import so
   that neither Flask nor Django is imported here: a Flask/Werkzeug app has a
   ``wsgi_app`` method; a Django ``WSGIHandler`` has ``get_response`` and
   ``request_class`` and a synchronous ``__call__`` -> **WSGI**.
4. The number of positional parameters the callable needs: 2
   (``environ, start_response``, PEP 3333) -> **WSGI**; 3
   (``scope, receive, send``, ASGI 3) -> **ASGI** (a plain function that
   returns an awaitable).
5. A callable that takes no argument looks like an app factory: the error
   says to add ``--factory``. Anything else is an :class:`AppInterfaceError`
   asking for ``--interface``.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Literal

from asgishift.serve._errors import AppInterfaceError

Interface = Literal["wsgi", "asgi"]


@dataclass(frozen=True)
class Detection:
    """The interface of an application and why it was chosen.

    :param interface: ``"wsgi"`` or ``"asgi"``.
    :param reason: a few words for the start-up banner and error messages,
        e.g. ``"Flask app"`` or ``"async __call__"``.
    """

    interface: Interface
    reason: str


def _call_target(app: object) -> object:
    """Return the function whose signature decides: ``app`` or its bound ``__call__``."""
    if (
        inspect.isfunction(app)
        or inspect.ismethod(app)
        or inspect.isbuiltin(app)
        or isinstance(app, functools.partial)
    ):
        return app
    call = getattr(app, "__call__", None)  # noqa: B004 - we want the attribute itself
    return app if call is None else call


def _positional_arity(func: object) -> int | None:
    """Return how many positional arguments ``func`` needs, or ``None`` when unknowable."""
    try:
        signature = inspect.signature(func)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    count = 0
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _article(noun: str) -> str:
    """Return ``"an"`` before a vowel (``an int``), ``"a"`` otherwise (``a dict``)."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def detect_interface(app: object) -> Detection:
    """Decide whether ``app`` speaks WSGI (PEP 3333) or ASGI 3.

    Follows the heuristic in this module's docstring.

    :param app: the object named by ``module:attribute`` (after calling the
        factory, if any).
    :return: a :class:`Detection`.
    :raise AppInterfaceError: when ``app`` is a class, is not callable, looks
        like a factory, or matches neither interface; the message names the
        flag that fixes it (``--factory`` or ``--interface``).
    """
    if inspect.isclass(app):
        raise AppInterfaceError(
            f"{app.__qualname__} is a class, not an application instance; point at an "
            "instance, or at a function returning one with --factory"
        )
    if not callable(app):
        raise AppInterfaceError(
            f"the object is {_article(type(app).__name__)} {type(app).__name__}, which is not "
            "callable; point "
            "module:attribute at the WSGI or ASGI application"
        )
    target = _call_target(app)
    if inspect.iscoroutinefunction(target):
        return Detection("asgi", "async __call__" if target is not app else "async function")
    if callable(getattr(app, "wsgi_app", None)):
        return Detection("wsgi", f"{type(app).__name__} app (has wsgi_app)")
    if hasattr(app, "get_response") and hasattr(app, "request_class"):
        return Detection("wsgi", f"Django {type(app).__name__}")
    arity = _positional_arity(target)
    if arity == 2:
        return Detection("wsgi", "callable(environ, start_response)")
    if arity == 3:
        return Detection("asgi", "callable(scope, receive, send)")
    if arity == 0:
        raise AppInterfaceError(
            "the object takes no arguments, so it looks like an app factory; add --factory "
            "to call it, or point at the application it returns"
        )
    raise AppInterfaceError(
        "cannot tell whether the application is WSGI or ASGI (it takes "
        f"{'a variable number of' if arity is None else arity} positional arguments); "
        "pass --interface wsgi or --interface asgi"
    )


__all__ = ["Detection", "Interface", "detect_interface"]
