"""Whether the bridge may use its optional C extensions (``setup.py`` builds them).

Each C extension (``_cenviron.c``, ``_cresponse.c``) is a shortcut for the common
case of one pure Python function, which stays the definition and takes every
other case. They are compiled at install time where a C compiler is found.
Setting the environment variable ``ASGISHIFT_NO_EXTENSIONS`` to a non-empty
value skips the build and, read once at import, turns them off at run time.
"""

from __future__ import annotations

import importlib
import os
from typing import Final, TypeVar, cast

__all__ = ["EXTENSIONS", "accelerated"]

#: ``False`` when ``ASGISHIFT_NO_EXTENSIONS`` is set: use the Python code only.
EXTENSIONS: Final = not os.environ.get("ASGISHIFT_NO_EXTENSIONS")

_F = TypeVar("_F")


def accelerated(extension: str, definition: _F, *state: object) -> _F:
    """Return the C build of ``definition`` from ``extension``, or ``definition`` itself.

    The C build is the extension's function of the same name as ``definition``
    without its ``python_`` prefix. It is given ``definition`` (to hand every
    case it does not take back to) and ``state`` (the caches it shares with the
    Python code) through the extension's ``configure()``.

    :param extension: the module's name in ``asgishift.bridge`` (``"_cenviron"``).
    :param definition: the pure Python function, named ``python_<name>``.
    :param state: more arguments for ``configure()``, in its order.
    :return: ``definition`` when ``ASGISHIFT_NO_EXTENSIONS`` is set or the
        extension was not built (no C compiler at install time).
    """
    if not EXTENSIONS:
        return definition
    try:
        module = importlib.import_module(f"asgishift.bridge.{extension}")
    except ImportError:
        return definition
    module.configure(definition, *state)
    name = getattr(definition, "__name__", "").removeprefix("python_")
    return cast(_F, getattr(module, name))
