"""Serve a request without the Flask contexts of the request whose task started it.

An ASGI server may start the next request of a keep-alive connection from
inside the previous request's last ``send()`` (uvicorn and daphne do for a
request already waiting on the connection: pipelined, or sent as soon as the
last body byte arrived). asyncio copies the running task's
:mod:`contextvars` into a task created there, so the new request's task
starts with the previous request's Flask application and request contexts
still set: Flask's ``RequestContext.push`` then reuses that application
context instead of pushing a new one, and the request sees the other one's
``g`` (Flask-Login's user, Flask-SQLAlchemy's session, which is scoped to the
application context). Such a call is run in a task whose context holds every
variable but Flask's and this package's.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any

from flask import has_app_context, has_request_context

__all__ = ["in_fresh_context", "inherited_flask_context"]

#: The names of the context variables a request must not inherit: Flask's
#: (``flask.globals``) and this package's (``_loop``).
_REQUEST_SCOPED_PREFIXES = ("flask.", "asgishift_flask_")


def inherited_flask_context() -> bool:
    """Return whether the running task carries a Flask application or request context.

    A server's fresh connection or request task has none: one that does was
    started from inside another request.
    """
    return has_app_context() or has_request_context()


def _fresh_context() -> contextvars.Context:
    """Return a copy of the current context without the request-scoped variables."""
    fresh = contextvars.Context()
    for var, value in contextvars.copy_context().items():
        if not var.name.startswith(_REQUEST_SCOPED_PREFIXES):
            fresh.run(var.set, value)
    return fresh


async def in_fresh_context(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` in a task of its own whose context lacks Flask's variables.

    Cancelling the caller cancels that task (``await`` on a task forwards it).

    :raise Exception: whatever ``coro`` raises.
    """
    task = _fresh_context().run(asyncio.ensure_future, coro)
    await task
