"""Import the application named ``module:attribute`` from ``--app-dir``.

The rules follow uvicorn's, so commands move over unchanged: ``--app-dir`` is
put first on :data:`sys.path`, ``module`` is imported, ``attribute`` may be
dotted (``pkg.wsgi:application.app``), and ``--factory`` calls the object
with no arguments to get the app.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from types import ModuleType, TracebackType

import asgishift
from asgishift.serve._errors import AppImportError, AppNotFoundError, ServeConfigError

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


#: Frames of these files are cut from the traceback of a failing app import.
_MACHINERY = os.path.join(os.path.dirname(os.path.abspath(asgishift.__file__)), "")
_IMPORTLIB = os.path.join(os.path.dirname(os.path.abspath(importlib.__file__)), "")


def _is_machinery(filename: str) -> bool:
    """Return whether ``filename`` belongs to asgishift or the import system."""
    return filename.startswith(("<frozen importlib", _MACHINERY, _IMPORTLIB))


def _app_traceback(exc: BaseException) -> TracebackType | None:
    """Return ``exc``'s traceback from its first frame outside asgishift and importlib."""
    tb = exc.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _where(exc: BaseException, tb: TracebackType | None) -> str:
    """Return ``"file, line N"`` of the innermost app frame (or of a syntax error)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}"
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return "the app's code"
    return f"{last.tb_frame.f_code.co_filename}, line {last.tb_lineno}"


def _import_failure(what: str, exc: Exception) -> AppImportError:
    """Return the :class:`AppImportError` for ``exc``, raised by the app's own code.

    :param what: what was being done, e.g. ``"importing module 'app'"``.
    """
    tb = _app_traceback(exc)
    details = "".join(traceback.format_exception(type(exc), exc, tb))
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return AppImportError(
        f"{what} raised {summary}, at {_where(exc, tb)}; fix that code",
        details,
    )


def _check_no_arguments_needed(factory: object, spec: str) -> None:
    """Refuse a ``--factory`` that cannot be called without arguments.

    :raise ServeConfigError: naming the parameters it requires.
    """
    try:
        signature = inspect.signature(factory)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # a builtin or C callable: let the call tell
    try:
        signature.bind()
    except TypeError:
        required = [
            name
            for name, param in signature.parameters.items()
            if param.default is param.empty
            and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        ]
        raise ServeConfigError(
            f"--factory {spec} requires arguments ({', '.join(required)}) but is called with "
            "none; give them defaults, or point at a function taking no arguments that "
            "calls it"
        ) from None


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
    except Exception as exc:
        raise _import_failure(f"importing module {module_name!r}", exc) from exc


def import_app(spec: str, *, app_dir: str = ".", factory: bool = False) -> object:
    """Import and return the application object named by ``spec``.

    :param spec: ``"module:attribute"``; the attribute may be dotted.
    :param app_dir: directory put first on :data:`sys.path` (as a resolved
        absolute path) before importing; ``"."`` is the current directory.
    :param factory: call the attribute with no arguments and return the result
        (an application factory such as Flask's ``create_app``).
    :return: the object; whether it is WSGI or ASGI is decided later by
        :func:`asgishift.serve.detect_interface`.
    :raise ServeConfigError: for a malformed ``spec``, one calling a factory
        (``app:create_app()``; pass ``factory=True`` instead), or one naming a file
        (``app.py:app``) rather than a module.
    :raise AppNotFoundError: when the module or attribute does not exist, or
        the module imports a package that is not installed.
    :raise AppImportError: when the application's own module or factory raises
        (a bug in that code); that exception is its ``__cause__``, and its
        ``details`` hold the traceback of the app's frames only.
    """
    module_name, attr_path = split_app_spec(spec)
    if attr_path.endswith(")"):
        name = attr_path.partition("(")[0]
        raise ServeConfigError(
            f"APP {spec!r} calls a factory; name it without the call and add --factory: "
            f"--factory {module_name}:{name} (the factory is called with no arguments)"
        )
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        directory_part, _, file_part = os.path.normpath(module_name).rpartition(os.sep)
        fix = f"{file_part.removesuffix('.py')}:{attr_path}"
        if directory_part:
            fix += f" --app-dir {directory_part}"
        raise ServeConfigError(
            f"APP {spec!r} names a file; name the module instead, as Python imports it: {fix}"
        )
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
        _check_no_arguments_needed(obj, spec)
        try:
            obj = obj()
        except Exception as exc:
            raise _import_failure(f"calling the factory {spec}", exc) from exc
    return obj


__all__ = ["import_app", "split_app_spec"]
