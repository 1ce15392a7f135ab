"""``flask run-asgi``: serve the app on an ASGI server through ``asgishift.serve``.

Registered through the ``flask.commands`` entry point (Flask's "Command Line
Interface" page, "Plugins"), so ``flask --app notesapp run-asgi`` works once
asgishift is installed. The options mirror ``flask run``'s. The server is
started by :func:`asgishift.serve.run`, which serves the app through the
extension when it is installed (async views on the loop, WebSockets, lifespan
hooks) and through the plain WSGI bridge otherwise.
"""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo, pass_script_info

from asgishift.serve import SERVERS

__all__ = ["load_app", "run_asgi_command"]

#: Environment variable carrying ``--app`` to the processes ``--reload`` starts.
APP_ENV = "ASGISHIFT_FLASK_APP"


def load_app() -> Flask:
    """Load the app the way ``flask --app`` does.

    The factory ``asgishift serve --factory`` calls in each process that
    ``--reload`` starts; the app import path comes from :data:`APP_ENV`.

    :raise flask.cli.NoAppException: when no app can be found (Flask's message).
    """
    info = ScriptInfo(app_import_path=os.environ.get(APP_ENV) or None)
    return info.load_app()


@click.command("run-asgi", short_help="Run the app on an ASGI server (asgishift).")
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default="uvicorn",
    show_default=True,
    help="The ASGI server to run.",
)
@click.option(
    "--host", "-h", default="127.0.0.1", show_default=True, help="The interface to bind to."
)
@click.option("--port", "-p", default=5000, show_default=True, help="The port to bind to.")
@click.option(
    "--reload/--no-reload",
    default=None,
    help="Restart when files change. Default: on when debug mode is on.",
)
@pass_script_info
def run_asgi_command(
    info: ScriptInfo, server: str, host: str, port: int, reload: bool | None
) -> None:
    """Serve the app on uvicorn, hypercorn, daphne or granian (like ``flask run``).

    Async views run on the server's event loop, WebSocket routes and
    before_serving/after_serving hooks work when the app installs
    asgishift.flask_integration.ASGI.
    """
    from asgishift.serve import ServeError

    app = info.load_app()
    if reload is None:
        reload = bool(app.debug)
    try:
        if reload:
            if info.app_import_path:
                os.environ[APP_ENV] = info.app_import_path
            _serve(
                "asgishift.flask_integration._cli:load_app",
                factory=True,
                server=server,
                host=host,
                port=port,
                reload=True,
                app_dir=os.getcwd(),
            )
        else:
            _serve(app, server=server, host=host, port=port)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None


def _serve(target: object, **settings: Any) -> None:
    """Start :func:`asgishift.serve.run` with ``target`` and ``settings``.

    :param settings: :class:`asgishift.serve.ServeConfig` fields (``server``, ``port``...).
    """
    from asgishift.serve import ServeConfig, run

    run(ServeConfig(app=target, **settings))
