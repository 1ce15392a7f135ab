"""The ``asgishift serve`` sub-command.

Flags follow uvicorn's names so commands carry over. Each flag's ``help=``
text is the single source of its documentation (``--help`` and the CLI docs
page are generated from this parser).

Exit codes: ``0`` after the server stops normally; ``1`` when the app cannot
be imported, the server's extra is not installed or the port is taken; ``2``
for usage errors (bad flag values or combinations, an app that is neither
recognisably WSGI nor ASGI). Errors print one line, ``asgishift serve:
error: ...``, naming the fix, without a traceback.
"""

from __future__ import annotations

import argparse
import sys

from asgishift.serve._errors import ServeError
from asgishift.serve._run import prepare
from asgishift.serve._servers import LOG_LEVELS, SERVERS


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return number


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
            "send) is ASGI. --interface overrides the detection."
        ),
        epilog=(
            "exit status: 0 when the server stops, 1 when the app cannot be imported, the "
            "server is not installed or the port is taken, 2 for usage errors."
        ),
    )
    parser.add_argument(
        "app",
        metavar="APP",
        help="the application as module:attribute, e.g. app:app or mysite.wsgi:application; "
        "the attribute may be dotted",
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="uvicorn",
        help="the ASGI server to run on; each needs its extra, e.g. pip install "
        "'asgishift[granian]' (default: %(default)s)",
    )
    parser.add_argument(
        "--interface",
        choices=("auto", "wsgi", "asgi"),
        default="auto",
        help="the interface APP speaks; 'auto' detects it (default: %(default)s)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="TCP port to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes, each importing APP anew; not available with daphne "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart the server when a file under --app-dir changes (development only; not "
        "available with daphne; granian needs 'granian[reload]')",
    )
    parser.add_argument(
        "--root-path",
        default="",
        help="URL prefix the app is mounted at behind a proxy that strips it, e.g. /api; WSGI "
        "apps see it as SCRIPT_NAME and build URLs with it (default: none)",
    )
    parser.add_argument(
        "--factory",
        action="store_true",
        help="treat APP as a function taking no arguments that returns the application, "
        "e.g. app:create_app",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="server log level (default: %(default)s)",
    )
    parser.add_argument(
        "--app-dir",
        default=".",
        help="directory put first on sys.path to import APP from (default: the current directory)",
    )
    parser.add_argument(
        "--max-workers",
        type=_positive_int,
        default=40,
        help="threads in the bridge's pool that run a WSGI app, per worker process; the most "
        "WSGI requests handled at once (default: %(default)s)",
    )
    parser.add_argument(
        "--detect-blocking",
        action="store_true",
        help="log requests during which the event loop was blocked (wraps the app in "
        "asgishift.runtime.BlockingDetectorMiddleware)",
    )
    parser.add_argument(
        "--loop-lag-ms",
        type=_positive_float,
        default=None,
        help="with --detect-blocking: event-loop lag in milliseconds worth reporting "
        "(default: 100)",
    )
    parser.set_defaults(handler=handle)


def _error(message: str) -> None:
    print(f"asgishift serve: error: {message}", file=sys.stderr, flush=True)


def handle(args: argparse.Namespace) -> int:
    """Run ``asgishift serve`` with parsed arguments.

    :param args: the namespace from the parser :func:`add_parser` built.
    :return: the exit status (see the module docstring).
    """
    if args.loop_lag_ms is not None and not args.detect_blocking:
        _error("--loop-lag-ms only applies with --detect-blocking; add --detect-blocking")
        return 2
    try:
        plan = prepare(
            args.app,
            server=args.server,
            host=args.host,
            port=args.port,
            interface=args.interface,
            factory=args.factory,
            app_dir=args.app_dir,
            workers=args.workers,
            reload=args.reload,
            root_path=args.root_path,
            log_level=args.log_level,
            max_workers=args.max_workers,
            detect_blocking=args.detect_blocking,
            loop_lag_ms=100.0 if args.loop_lag_ms is None else args.loop_lag_ms,
        )
    except ServeError as exc:
        _error(str(exc))
        return exc.exit_code
    print(plan.describe(), file=sys.stderr, flush=True)
    plan.start()
    return 0


__all__ = ["add_parser", "handle"]
