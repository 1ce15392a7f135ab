"""Import the application named ``module:attribute`` from ``--app-dir``.

The rules follow uvicorn's, so commands move over unchanged: ``--app-dir`` is
put first on :data:`sys.path`, ``module`` is imported, ``attribute`` may be
dotted (``pkg.wsgi:application.app``), and ``--factory`` calls the object
with no arguments to get the app.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from asgishift.serve._errors import AppNotFoundError, ServeConfigError

# Attribute names people give their application, offered when the one asked
# for is missing.
_COMMON_NAMES = ("app", "application", "create_app", "make_app", "get_app", "api", "asgi_app")


def split_app_spec(spec: str) -> tuple[str, str]:
    """Split ``"module:attribute"`` into its two halves.

    :param spec: the ``APP`` argument, e.g. ``"myproject.wsgi:application"``.
    :return: ``(module, attribute)``.
    :raise ServeConfigError: when the colon or either half is missing.
    """
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ServeConfigError(
            f"APP must look like module:attribute (e.g. app:app or mysite.wsgi:application), "
            f"got {spec!r}"
        )
    return module, attr


def _module_location(module: ModuleType) -> str:
    return str(getattr(module, "__file__", None) or module.__name__)


def _import_module(module_name: str, app_dir: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise AppNotFoundError(
                f"cannot import module {module_name!r}: no {missing!r} in --app-dir "
                f"{os.path.abspath(app_dir)!r} or on sys.path; check the spelling or pass "
                "--app-dir with the directory that contains it"
            ) from None
        raise AppNotFoundError(
            f"importing {module_name!r} failed because it imports {missing!r}, which is not "
            f"installed in {sys.prefix}; install it (pip install {missing.split('.')[0]})"
        ) from None


def import_app(spec: str, *, app_dir: str = ".", factory: bool = False) -> object:
    """Import and return the application object named by ``spec``.

    :param spec: ``"module:attribute"``; the attribute may be dotted.
    :param app_dir: directory put first on :data:`sys.path` (as a resolved
        absolute path) before importing; ``"."`` is the current directory.
    :param factory: call the attribute with no arguments and return the result
        (an application factory such as Flask's ``create_app``).
    :return: the object; whether it is WSGI or ASGI is decided later by
        :func:`asgishift.serve.detect_interface`.
    :raise ServeConfigError: for a malformed ``spec``.
    :raise AppNotFoundError: when the module or attribute does not exist, or
        the module imports a package that is not installed. Other exceptions
        raised by the application's own import or factory propagate unchanged,
        with their traceback, because they are bugs in that code.
    """
    module_name, attr_path = split_app_spec(spec)
    directory = os.path.abspath(app_dir)
    if not os.path.isdir(directory):
        raise AppNotFoundError(f"--app-dir {directory!r} is not a directory")
    # First on sys.path, like uvicorn's --app-dir, so the app's modules win
    # over same-named ones elsewhere.
    if not sys.path or sys.path[0] != directory:
        sys.path.insert(0, directory)
    module = _import_module(module_name, app_dir)
    obj: object = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            present = [name for name in _COMMON_NAMES if hasattr(module, name)]
            hint = f"; it defines {', '.join(present)}" if present else ""
            raise AppNotFoundError(
                f"module {module_name!r} ({_module_location(module)}) has no attribute "
                f"{attr_path!r}{hint}; fix the name after the colon"
            ) from None
    if factory:
        if not callable(obj):
            raise ServeConfigError(
                f"--factory was given but {spec} is a {type(obj).__name__}, not a callable; "
                "drop --factory or point at the factory function"
            )
        obj = obj()
    return obj


__all__ = ["import_app", "split_app_spec"]
