"""``manage.py runasgi [addrport]``: Django's ``runserver``, served over ASGI.

Subclasses the ``runserver`` command (the staticfiles variant, so
``--nostatic`` and ``--insecure`` work as there) and keeps its arguments,
checks, migration warning, banner and autoreloader. It adds ``--server``,
``--wsgi``, ``--max-threads`` and ``--shutdown-timeout`` (``asgishift serve``'s
flag, declared once in :func:`asgishift.serve._cli.add_bridge_flag`), and serves:

- ``ASGI_APPLICATION`` when it is set (a Channels ``ProtocolTypeRouter``
  works unchanged);
- else, with ``--wsgi``, ``WSGI_APPLICATION`` through
  :class:`asgishift.bridge.WSGIToASGI`;
- else asgishift's bounded handler
  (:func:`asgishift.django_integration.get_asgi_application`), so a project
  without ``asgi.py`` works.

The server runs in a thread (:mod:`asgishift.serve._embedded`). When the
autoreloader decides to restart for a changed file, the server is first stopped
gracefully (open connections finish, at most ``RELOAD_GRACE`` seconds, and
lifespan shutdown runs), then Django restarts the process; a template or
translation edit, which Django picks up in place, leaves it serving.
Ctrl+C, SIGTERM and SIGHUP (a closed terminal, ``kill -HUP``; as under
``asgishift serve``) stop it the same way, on a thread of their own: the signal
handler only queues the signal (``queue.SimpleQueue.put`` is safe there), since
a handler that stopped the server itself would run on top of whatever the main
thread was doing, and could wait for a lock that thread holds or write to
stdout in the middle of one of its writes.
"""

from __future__ import annotations

import _thread
import errno
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import datetime
from typing import Any, Literal

from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import (
    Command as RunserverCommand,
)
from django.core.management.base import CommandError, CommandParser
from django.db import connections
from django.utils import autoreload
from django.utils.module_loading import import_string

from asgishift._types import ASGIApp
from asgishift.bridge import BridgeOptions
from asgishift.django_integration._executors import DEFAULT_MAX_THREADS
from asgishift.django_integration.checks import is_thread_count
from asgishift.serve import PortInUseError, ServeConfig, ServeError, build_app
from asgishift.serve._cli import add_bridge_flag
from asgishift.serve._embedded import EmbeddedServer
from asgishift.serve._errors import AddressUnavailableError
from asgishift.serve._servers import SERVERS, check_server_installed

#: The signals that stop the server gracefully (lifespan shutdown runs): Ctrl+C,
#: SIGTERM and, where the platform has it, SIGHUP. Without a handler SIGHUP (a
#: closed terminal, ``kill -HUP``) ended the process at once, with no lifespan
#: shutdown, and under the autoreloader killed the reloading parent only, leaving
#: its serving child orphaned on the port.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: The signals the reloading parent passes on to its serving child.
FORWARDED_SIGNALS = tuple(signum for signum in STOP_SIGNALS if signum != signal.SIGINT)


class Command(RunserverCommand):
    """The ``runasgi`` management command (see the module documentation)."""

    help = (
        "Starts an ASGI development server (uvicorn, hypercorn, daphne or granian) with "
        "autoreload and static files, serving ASGI_APPLICATION or asgishift's handler."
    )
    server: EmbeddedServer | None = None
    #: Seconds the thread serving waits, once a signal stopped the server, for the
    #: signal thread to finish (its last line, "stopped.").
    SIGNAL_STOP_TIMEOUT = 60.0
    #: Seconds requests in flight get at a file change (or ``--shutdown-timeout``
    #: when shorter) before the process restarts without them: an endless
    #: request (an EventSource stream, a long poll) would otherwise hold every
    #: reload for the whole ``--shutdown-timeout``.
    RELOAD_GRACE = 3.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server_lock = threading.Lock()
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._signal_taken = threading.Event()  # the signal thread began to stop the server
        self._signal_done = threading.Event()  # ... and has finished
        self._main_is_reloader = False

    def add_arguments(self, parser: CommandParser) -> None:
        """Add ``--server``, ``--wsgi``, ``--max-threads`` and ``--shutdown-timeout`` to
        runserver's arguments."""
        super().add_arguments(parser)
        parser.add_argument(
            "--server",
            choices=SERVERS,
            default=None,  # ASGISHIFT_RUNASGI_SERVER, checked in handle() with its name
            help="ASGI server to run (default: ASGISHIFT_RUNASGI_SERVER, else uvicorn).",
        )
        parser.add_argument(
            "--wsgi",
            action="store_true",
            help="Serve WSGI_APPLICATION through asgishift's WSGIToASGI bridge instead of "
            "the ASGI handler.",
        )
        parser.add_argument(
            "--max-threads",
            type=int,
            default=None,  # ASGISHIFT_MAX_THREADS, checked in handle() with its name
            help="Threads running sync code (default: ASGISHIFT_MAX_THREADS, else "
            f"{DEFAULT_MAX_THREADS}).",
        )
        add_bridge_flag(
            parser,
            "shutdown_timeout",
            dest="shutdown_timeout",
            default=BridgeOptions().shutdown_timeout,
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Fill in ``--server`` and ``--max-threads`` from their settings, install graceful
        handling of :data:`STOP_SIGNALS` in the serving process, then run.

        :raise CommandError: for a bad ``--max-threads``, or a bad
            ``ASGISHIFT_RUNASGI_SERVER`` / ``ASGISHIFT_MAX_THREADS`` standing in for
            a flag not given (naming the setting), or a server not installed.
        """
        if options["server"] is None:
            server = getattr(settings, "ASGISHIFT_RUNASGI_SERVER", SERVERS[0])
            if server not in SERVERS:
                raise CommandError(
                    f"ASGISHIFT_RUNASGI_SERVER = {server!r}, the default of --server, is none "
                    f"of {', '.join(SERVERS)}; fix the setting or pass --server"
                )
            options["server"] = server
        if options["max_threads"] is None:
            setting = getattr(settings, "ASGISHIFT_MAX_THREADS", DEFAULT_MAX_THREADS)
            if not is_thread_count(setting):
                raise CommandError(
                    f"ASGISHIFT_MAX_THREADS = {setting!r}, the default of --max-threads, must "
                    "be a whole number of 1 or more; fix the setting or pass --max-threads"
                )
            options["max_threads"] = setting
        if options["max_threads"] < 1:
            raise CommandError(f"--max-threads must be at least 1, got {options['max_threads']}")
        if not options["use_threading"]:
            self.stderr.write(
                "Warning: --nothreading has no effect under runasgi (the ASGI server runs one "
                "event loop); --max-threads 1 runs sync code on one thread."
            )
        try:
            # Before the reloader starts: no file change can install a server.
            check_server_installed(options["server"])
        except ServeError as exc:
            raise CommandError(str(exc)) from None
        if not options["use_reloader"]:
            self._install_signal_handlers()
        elif os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true":
            # The main thread runs the reloader; this command serves from another.
            self._main_is_reloader = True
            # The reloader installs its own SIGTERM handler (sys.exit) first;
            # autoreload_started is sent afterwards, from the main thread.
            autoreload.autoreload_started.connect(self._install_signal_handlers, weak=False)
            autoreload.autoreload_started.connect(self._stop_before_reloads, weak=False)
        super().handle(*args, **options)

    def run(self, **options: Any) -> None:
        """Serve, under the autoreloader unless ``--noreload`` (as runserver).

        :raise CommandError: for port 0 or one above 65535 (runserver takes 0 as
            "any free port"; the embedded servers need the port before they start).
        """
        if not 1 <= int(self.port) <= 65535:
            raise CommandError(
                f"runasgi needs a port from 1 to 65535, got {self.port}; "
                "e.g. manage.py runasgi 8000"
            )
        if options["use_reloader"] and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            sys.exit(_reloading_parent())
        super().run(**options)

    def _install_signal_handlers(self, **kwargs: Any) -> None:
        """Start the signal thread and route :data:`STOP_SIGNALS` to it (call on the main
        thread)."""
        threading.Thread(
            target=self._stop_on_signal, name="asgishift-runasgi-signals", daemon=True
        ).start()
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Queue the signal for the signal thread; exit once that thread is done.

        Runs on the main thread between two bytecodes of whatever it was doing,
        so it takes no lock and writes nothing: ``SimpleQueue.put`` is reentrant
        and ``Event.is_set`` reads a flag.
        """
        if self._signal_done.is_set():  # sent by _stop_on_signal() to end the reloader
            sys.exit(0)
        self._signals.put(signum)

    def _stop_on_signal(self) -> None:
        """Body of the signal thread: stop the server gracefully at the first signal.

        A second SIGINT while the graceful stop waits (a second Ctrl+C) ends the
        process at once (:meth:`_exit_on_second_interrupt`); later SIGTERMs and SIGHUPs
        (the reloading parent forwards them, and a closed terminal sends SIGHUP to
        both) change nothing. Under the autoreloader
        the main thread runs Django's reloader loop; it is interrupted once the
        server has stopped, and :meth:`_on_signal` ends it. Without the reloader
        the main thread serves and returns by itself (:meth:`inner_run`).
        """
        signum = self._signals.get()
        self._signal_taken.set()
        threading.Thread(
            target=self._exit_on_second_interrupt, name="asgishift-runasgi-force", daemon=True
        ).start()
        stopped = False
        try:
            stopped = self.stop_server(f"received {signal.Signals(signum).name}")
        finally:
            self._signal_done.set()
        if self._main_is_reloader or not stopped:
            # No server was serving (still checking, or between reloads): the
            # main thread is not waiting for one, so end it from its handler.
            _thread.interrupt_main(signal.Signals(signum))

    def _exit_on_second_interrupt(self) -> None:
        """Wait for a SIGINT after the first signal; end the process at once with status 1
        unless the graceful stop is done by then.

        As uvicorn run on its own: the first Ctrl+C lets requests in flight finish
        (at most ``--shutdown-timeout``), the second does not wait for them.
        Lifespan shutdown does not run then; the database server closes the
        connections the process held.
        """
        while True:
            signum = self._signals.get()
            if self._signal_done.is_set():
                return
            if signum == signal.SIGINT:
                self.stderr.write(
                    "received SIGINT again; exiting at once without waiting for the "
                    "requests in flight or lifespan shutdown"
                )
                os._exit(1)

    def stop_server(self, why: str) -> bool:
        """Stop the running server gracefully (lifespan shutdown runs), logging why.

        Safe to call from several threads (a file change and a signal at once):
        only the first call stops the server.

        :return: whether a server was running (and is stopped now).
        """
        with self._server_lock:
            server = self.server
            self.server = None
        if server is None:
            return False
        self.stdout.write(f"{why}; stopping {server.server} gracefully (lifespan shutdown)...")
        server.stop()
        self.stdout.write(f"{server.server} stopped.")
        return True

    def _stop_before_reloads(self, sender: Any, **kwargs: Any) -> None:
        """``autoreload_started`` receiver: make the reloader (``sender``) stop the server
        gracefully before each restart, and only then.

        Django's ``notify_file_changed`` restarts unless a ``file_changed`` receiver
        handled the change in place (templates reset their loaders, translations
        reload, both returning ``True``). Its decision is taken the same way here,
        and the server is stopped between the decision and the restart; a receiver
        of ``file_changed`` itself could not tell, and stopped the server for a
        template edit that Django then did not restart for.
        """
        reloader = sender

        def notify_file_changed(path: Any) -> None:
            results = autoreload.file_changed.send(sender=reloader, file_path=path)
            if not any(result for _receiver, result in results):
                self._on_file_changed(reloader, path)
                autoreload.trigger_reload(path)

        reloader.notify_file_changed = notify_file_changed

    def _on_file_changed(self, sender: Any, file_path: Any, **kwargs: Any) -> None:
        """Stop the server for a reload (on the reloader's main thread, once Django has
        decided to restart); returning lets the reloader restart the process.

        The graceful stop (``--shutdown-timeout`` still cuts requests when it is
        shorter) gets :attr:`RELOAD_GRACE` seconds; if the server has not stopped
        by then, the process ends at once with status 3, which the reloading
        parent restarts. Lifespan shutdown does not run then (the database server
        closes the connections).
        """
        stopped = threading.Event()

        def stop() -> None:
            self.stop_server(f"{file_path} changed")
            stopped.set()

        threading.Thread(target=stop, name="asgishift-runasgi-reload", daemon=True).start()
        if stopped.wait(self.RELOAD_GRACE):
            return
        self.stderr.write(
            f"the server did not stop within {self.RELOAD_GRACE:g} s (requests still running, "
            "or a slow lifespan shutdown); restarting without waiting "
            "(--shutdown-timeout applies to Ctrl+C and SIGTERM)"
        )
        os._exit(3)  # the reloading parent (_reloading_parent) restarts on status 3

    def serve_config(self, **options: Any) -> tuple[ServeConfig, str]:
        """Return the :class:`~asgishift.serve.ServeConfig` to serve (holding the loaded
        application) and a phrase describing the application for the banner."""
        max_threads = options["max_threads"]
        host = self.addr if self.addr != "0" else "0.0.0.0"
        app: object
        interface: Literal["wsgi", "asgi"]
        if options["wsgi"]:
            from django.core.servers.basehttp import get_internal_wsgi_application

            app, interface = get_internal_wsgi_application(), "wsgi"
            what = f"WSGI_APPLICATION through WSGIToASGI, {max_threads} threads"
        elif getattr(settings, "ASGI_APPLICATION", None):
            app, interface = import_string(settings.ASGI_APPLICATION), "asgi"
            what = f"ASGI_APPLICATION {settings.ASGI_APPLICATION}"
        else:
            from asgishift.django_integration.handler import BoundedASGIHandler

            app, interface = BoundedASGIHandler(max_threads=max_threads), "asgi"
            what = f"asgishift's Django handler, {max_threads} threads"
        config = ServeConfig(
            app=app,
            server=options["server"],
            interface=interface,
            host=host,
            port=int(self.port),
            bridge=BridgeOptions(
                max_workers=max_threads, shutdown_timeout=options["shutdown_timeout"]
            ),
        )
        return config, what

    def get_application(self, config: ServeConfig, **options: Any) -> tuple[ASGIApp, str]:
        """Return the ASGI app for ``config`` (:func:`asgishift.serve.build_app`), wrapped
        to serve static files as runserver does (not when ``STATIC_URL`` names another
        host), and a banner suffix."""
        app = build_app(config)
        what = ""
        if (
            options["use_static_handler"]
            and (settings.DEBUG or options["insecure_serving"])
            and apps.is_installed("django.contrib.staticfiles")
        ):
            from asgishift.django_integration.static import staticfiles_app

            served = staticfiles_app(app)
            if served is not app:  # not when STATIC_URL is on another host
                app, what = served, ", static files"
        return app, what

    def inner_run(self, *args: Any, **options: Any) -> None:
        """Checks, migration warning, banner; then serve until stopped."""
        autoreload.raise_last_exception()
        _log_to_console()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()
        try:
            config, what = self.serve_config(**options)
            app, static = self.get_application(config, **options)
            server = EmbeddedServer(config, app)
            self.server = server
            server.start()
        except PortInUseError:
            self.stderr.write(
                f"Error: port {self.port} on {config.host} is already in use; stop the process "
                f"holding it or choose another, e.g. manage.py runasgi {int(self.port) + 1}"
            )
            os._exit(1)  # sys.exit does not end the process from the reloader's thread
        except AddressUnavailableError as exc:
            # As runserver: no file change can make the address bindable, so exit.
            self.stderr.write(f"Error: {_address_fix(exc)}")
            os._exit(1)
        except ServeError as exc:
            self.server = None
            if self._signal_taken.is_set():  # stopped by a signal while starting
                self._signal_done.wait(self.SIGNAL_STOP_TIMEOUT)
                return
            self.stderr.write(f"Error: {exc}")
            if not options["use_reloader"]:
                os._exit(1)
            self.stderr.write("Waiting for a file change to restart.")
            return
        self._banner(options["server"], what + static)
        server.wait()
        if self._signal_taken.is_set():
            # Stopped by a signal: let the signal thread write its last line
            # before this thread (or, without the reloader, the process) ends.
            self._signal_done.wait(self.SIGNAL_STOP_TIMEOUT)

    def _banner(self, server: str, what: str) -> None:
        addr = f"[{self.addr}]" if self._raw_ipv6 else self.addr
        addr = "0.0.0.0" if addr == "0" else addr
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        now = datetime.now().strftime("%B %d, %Y - %X")
        self.stdout.write(
            f"{now}\n"
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI development server ({server}; {what}) at "
            f"http://{addr}:{self.port}/\n"
            f"Quit the server with {quit_command}."
        )
        if os.environ.get("DJANGO_RUNSERVER_HIDE_WARNING") == "true":  # as runserver (5.2+)
            return
        self.stdout.write(
            self.style.WARNING(
                "WARNING: This is a development server. Do not use it in a production "
                "setting; see docs/django.md of asgishift for production commands."
            )
        )


def _reloading_parent() -> int:
    """The reloader's parent process (``django.utils.autoreload.restart_with_reloader``'s
    loop), which lets the serving child stop gracefully.

    Django's own parent kills the child at once when it is interrupted. This one
    ignores Ctrl+C (the terminal sends it to the child as well) and forwards
    SIGTERM and SIGHUP (:data:`FORWARDED_SIGNALS`) to the child, then waits; it
    restarts the child while it exits with status 3 (a reload) and returns any
    other status.
    """
    environ = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    argv = autoreload.get_child_arguments()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        child = subprocess.Popen(argv, env=environ, close_fds=False)

        def forward(signum: int, frame: Any, child: subprocess.Popen[bytes] = child) -> None:
            child.send_signal(signum)

        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, forward)
        returncode = child.wait()
        if returncode != 3:
            return returncode


def _address_fix(exc: AddressUnavailableError) -> str:
    """The line naming why ``exc.host:exc.port`` cannot be bound and the ``runasgi``
    argument that fixes it (``bind(2)``'s ``EACCES``: a port below 1024; else an address
    of another machine)."""
    host = f"[{exc.host}]" if ":" in exc.host else exc.host
    where = f"cannot listen on {host}:{exc.port} ({exc.error.strerror})"
    if exc.error.errno == errno.EACCES:
        return f"{where}; choose a port of 1024 or above, e.g. manage.py runasgi {host}:8000"
    loopback = "[::1]" if ":" in exc.host else "127.0.0.1"
    return (
        f"{where}; give runasgi an address of this machine, "
        f"e.g. manage.py runasgi {loopback}:{exc.port}"
    )


def _log_to_console() -> None:
    """Show asgishift's info lines (lifespan, shutdown) when nothing else shows them."""
    logger = logging.getLogger("asgishift")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
