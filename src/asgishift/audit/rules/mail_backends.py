"""``ASH110`` and mail backends that send nothing: ``get_connection("...locmem...")``.

``django.core.mail.get_connection()`` returns the backend ``EMAIL_BACKEND``
names, which the audit cannot read: the tables type its result as
``BaseEmailBackend``, whose ``send_messages()`` is an ``ASH110`` call. When
the call names the backend itself with a string literal, the backend is known:
the in-memory (``locmem``), ``dummy`` and ``console`` backends keep, drop or
print the messages and never wait on a mail server, so the variable bound to
such a connection is typed as that backend and its ``send_messages()`` is no
``ASH110`` call. The ``filebased`` and ``smtp`` backends, any other string and
any non-literal argument keep the default typing.

The hook is part of the blocking family (:mod:`asgishift.audit.rules.blocking`).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgishift.audit._walk import WalkerBase

#: Mail backends that neither touch the network nor write files.
QUIET_BACKENDS = frozenset(
    {
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
        "django.core.mail.backends.console.EmailBackend",
    }
)
_GET_CONNECTION = "django.core.mail.get_connection"


def quiet_backend(walker: WalkerBase, value: ast.expr) -> str | None:
    """Return the backend ``value`` builds when it is a quiet one, else ``None``.

    :param walker: the walker, inside a function body.
    :param value: an expression; a call of ``get_connection`` whose first
        positional argument or ``backend=`` keyword is a string literal in
        :data:`QUIET_BACKENDS` gives that string.
    """
    if type(value) is not ast.Call or walker.target(value.func) != _GET_CONNECTION:
        return None
    arg = value.args[0] if value.args else None
    if arg is None:
        arg = next((kw.value for kw in value.keywords if kw.arg == "backend"), None)
    if type(arg) is ast.Constant and arg.value in QUIET_BACKENDS:
        return str(arg.value)
    return None


def on_bind(walker: WalkerBase, name: str, value: ast.expr) -> bool:
    """``conn = get_connection("django.core.mail.backends.locmem.EmailBackend")``.

    :param walker: the walker, inside a function body.
    :param name: the variable bound.
    :param value: the value bound to it.
    :return: ``True`` when it typed ``name`` as a quiet backend (the walk
        then types it no further).
    """
    backend = quiet_backend(walker, value)
    if backend is None:
        return False
    scope = walker.scope
    assert scope is not None  # bind hooks run inside a function body
    scope.types[name] = backend
    return True


__all__ = ["QUIET_BACKENDS", "on_bind", "quiet_backend"]
