"""The ``asgishift`` command line: ``asgishift serve`` and ``asgishift audit``.

Argument parsing uses :mod:`argparse`; each sub-command declares its own flags
in its package (``asgishift.serve._cli``, ``asgishift.audit._cli``) through an
``add_parser(subparsers)`` function, and those declarations are the single
source of the ``--help`` text and of the generated CLI docs page.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from asgishift import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered.

    :return: an :class:`argparse.ArgumentParser` whose parsed namespace carries
        a ``handler`` attribute: a callable taking the namespace and returning
        the process exit code (``int``).
    """
    from asgishift.audit._cli import add_parser as add_audit_parser
    from asgishift.serve._cli import add_parser as add_serve_parser

    parser = argparse.ArgumentParser(
        prog="asgishift",
        description="Run WSGI apps on ASGI servers and audit code for event-loop blockers.",
    )
    parser.add_argument("--version", action="version", version=f"asgishift {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(subparsers)
    add_audit_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code.

    :param argv: the arguments after the program name; ``None`` reads
        :data:`sys.argv`.
    :return: ``0`` on success; sub-commands document their own codes. Usage
        errors exit with status ``2`` through :mod:`argparse`.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args))


__all__ = ["build_parser", "main"]
