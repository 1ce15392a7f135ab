"""The ``asgishift serve`` sub-command, derived from :class:`~asgishift.serve.ServeConfig`.

Every flag comes from a field of :class:`~asgishift.serve.ServeConfig` (and,
for the bridge, of :class:`~asgishift.bridge.BridgeOptions`): its name, type,
choices, default and ``help=`` text (the field's docstring). ``--help`` and
the CLI docs page are generated from this parser, so a new option is one new
field. Flags follow uvicorn's names so commands carry over.

Exit codes: ``0`` after the server stops normally (SIGTERM, SIGHUP or Ctrl+C
included); ``1`` when the app cannot be imported, the server's extra is not
installed or the port is taken; ``2`` for usage errors (bad flag values or
combinations, an app that is neither recognisably WSGI nor ASGI); ``3`` when
the app's lifespan startup fails (an ``--on-startup`` hook raised), on every
server. Errors print one line, ``asgishift serve: error: ...``, naming the
fix, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Final

from asgishift.bridge import BridgeOptions
from asgishift.serve._config import Flag, ServeConfig, flag_name
from asgishift.serve._errors import AppImportError, ServeConfigError, ServeError
from asgishift.serve._fields import field_docs, plain_text
from asgishift.serve._run import prepare

#: Namespace attribute prefix of the bridge's flags (``bridge.max_workers``).
_BRIDGE = "bridge."
#: BridgeOptions fields that ``asgishift serve`` sets itself, so they get no flag:
#: ``multiprocess`` follows ``--workers`` (:func:`asgishift.serve._build.bridge_options`).
SET_BY_SERVE: Final = frozenset({"multiprocess"})


def _argument_type(
    convert: Callable[[str], Any] | None, check: Callable[[Any], None] | None
) -> Callable[[str], Any]:
    """Return the argparse ``type=`` running a field's ``convert`` then ``check``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text) if convert is not None else text
            if check is not None:
                check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return parse


def _bridge_type(name: str, annotation: Any) -> Callable[[str], Any]:
    """Return the parser of a BridgeOptions field: its type, ``none`` when optional, its range."""
    args = typing.get_args(annotation)
    optional = isinstance(annotation, types.UnionType) and type(None) in args
    base = next(arg for arg in args if arg is not type(None)) if optional else annotation

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            value: Any = None
        else:
            try:
                value = base(text)
            except ValueError:
                kind = "whole number" if base is int else "number"
                raise argparse.ArgumentTypeError(f"expected a {kind}, got {text!r}") from None
        try:
            BridgeOptions().replace(**{name: value})
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return parse


def _default_text(value: object) -> str:
    if value is None:
        return "none"
    if value is False or value == ():
        return ""
    if value == "":
        return "none"
    return str(value)


def _help(doc: str, default: object) -> str:
    text = plain_text(doc).replace("%", "%%")
    shown = _default_text(default)
    return f"{text} (default: {shown})" if shown else text


@functools.cache
def _bridge_docs() -> dict[str, str]:
    """The docstrings of :class:`~asgishift.bridge.BridgeOptions`' fields (read once)."""
    return field_docs(BridgeOptions)


def add_bridge_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    *,
    dest: str,
    default: Any = argparse.SUPPRESS,
) -> None:
    """Add the flag of the :class:`~asgishift.bridge.BridgeOptions` field ``name`` to
    ``parser``: ``--name-with-dashes``, parsed and range-checked as the field is (``none``
    for an optional one), its help the field's docstring and default.

    The one declaration of these flags, for ``asgishift serve`` and for commands that
    take some of them (``manage.py runasgi --shutdown-timeout``).

    :param parser: a parser or an argument group.
    :param name: the field, e.g. ``"shutdown_timeout"``.
    :param dest: the namespace attribute.
    :param default: the value when the flag is absent (by default no attribute at all).
    :raise KeyError: when ``BridgeOptions`` has no field ``name``.
    """
    hint = typing.get_type_hints(BridgeOptions)[name]
    optional = type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    metavar = ("N" if base is int else "SECONDS") + ("|none" if optional else "")
    parser.add_argument(
        flag_name(name),
        dest=dest,
        type=_bridge_type(name, hint),
        metavar=metavar,
        default=default,
        help=_help(_bridge_docs().get(name, ""), getattr(BridgeOptions(), name)),
    )


def _add_bridge_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "WSGI bridge options", "How WSGIToASGI runs a WSGI app (per worker process)."
    )
    for spec in dataclasses.fields(BridgeOptions):
        if spec.name not in SET_BY_SERVE:
            add_bridge_flag(group, spec.name, dest=_BRIDGE + spec.name)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` and its flags on the top-level sub-command set.

    :param subparsers: the object :meth:`argparse.ArgumentParser.add_subparsers`
        returned; the new parser sets ``handler`` to :func:`handle`.
    """
    parser = subparsers.add_parser(
        "serve",
        help="serve a WSGI or ASGI app on an ASGI server",
        description=(
            "Serve APP on an ASGI server. WSGI apps (Flask, Django's WSGIHandler, any PEP 3333 "
            "callable) run through asgishift's WSGIToASGI bridge; ASGI apps are served as they "
            "are. WSGI or ASGI is detected: an async __call__ means ASGI; a Flask app "
            "(wsgi_app attribute) or Django WSGIHandler means WSGI; otherwise a callable taking "
            "2 arguments (environ, start_response) is WSGI and one taking 3 (scope, receive, "
            "send) is ASGI. --interface overrides the detection. --mount serves ASGI apps under "
            "path prefixes beside APP (asgishift.bridge.HybridRouter)."
        ),
        epilog=(
            "exit status: 0 when the server stops (SIGTERM, SIGHUP and Ctrl+C included), 1 "
            "when the app cannot be imported, the server is not installed or the port is "
            "taken, 2 for usage errors, 3 when the app's lifespan startup fails (an "
            "--on-startup hook raised)."
        ),
    )
    docs = field_docs(ServeConfig)
    for spec in dataclasses.fields(ServeConfig):
        flag: Flag = spec.metadata["flag"]
        if flag.expand:
            _add_bridge_flags(parser)
            continue
        if flag.positional:
            # The field's docstring also covers Python callers; its first
            # sentence is the command line's part.
            text = plain_text(docs.get(spec.name, "")).split("; from Python")[0]
            parser.add_argument(spec.name, metavar=flag.metavar, help=text.replace("%", "%%"))
            continue
        default = (
            spec.default_factory()
            if spec.default is dataclasses.MISSING
            and spec.default_factory is not dataclasses.MISSING
            else spec.default
        )
        help_text = _help(docs.get(spec.name, ""), default)
        if spec.type == "bool":
            parser.add_argument(
                flag_name(spec.name), action="store_true", default=argparse.SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(
                flag_name(spec.name),
                dest=spec.name,
                type=_argument_type(flag.convert, flag.check),
                choices=flag.choices,
                metavar=flag.metavar,
                action="append" if flag.repeat else "store",
                default=argparse.SUPPRESS,
                help=help_text,
            )
    parser.set_defaults(handler=handle)


def _error(message: str) -> None:
    print(f"asgishift serve: error: {message}", file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Build the :class:`ServeConfig` of a parsed ``asgishift serve`` command line.

    Flags not given keep the field's default.

    :raise ServeConfigError: for a flag given without the one it requires
        (``--loop-lag-ms`` without ``--detect-blocking``) or a combination
        :class:`ServeConfig` rejects.
    """
    given = vars(args)
    values: dict[str, Any] = {}
    bridge: dict[str, Any] = {}
    for name, value in given.items():
        if name.startswith(_BRIDGE):
            bridge[name[len(_BRIDGE) :]] = value
    for spec in dataclasses.fields(ServeConfig):
        if spec.name not in given:
            continue
        flag: Flag = spec.metadata["flag"]
        if flag.requires is not None and not given.get(flag.requires):
            raise ServeConfigError(
                f"{flag_name(spec.name)} only applies with {flag_name(flag.requires)}; "
                f"add {flag_name(flag.requires)}"
            )
        value = given[spec.name]
        values[spec.name] = tuple(value) if flag.repeat else value
    return ServeConfig(bridge=BridgeOptions(**bridge), **values)


def handle(args: argparse.Namespace) -> int:
    """Run ``asgishift serve`` with parsed arguments.

    :param args: the namespace from the parser :func:`add_parser` built.
    :return: the exit status (see the module docstring).
    """
    try:
        plan = prepare(config_from_args(args))
    except AppImportError as exc:
        # The app's own bug: its traceback (app frames only), then the one line.
        print(exc.details, end="", file=sys.stderr)
        _error(str(exc))
        return exc.exit_code
    except ServeError as exc:
        _error(str(exc))
        return exc.exit_code
    print(plan.describe(), file=sys.stderr, flush=True)
    try:
        plan.start()
    except ServeError as exc:
        _error(str(exc))
        return exc.exit_code
    return 0


__all__ = ["add_bridge_flag", "add_parser", "config_from_args", "handle"]
