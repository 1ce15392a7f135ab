"""Tell ``asgishift serve`` why the app's lifespan startup failed, whichever process ran it.

The servers stop differently when an app's startup fails (uvicorn exits with
status 3, hypercorn raises, granian exits with 1, the supervisors of
``--workers`` exit with 0), and only the process that ran the lifespan sees
why. So every process serving the app wraps it in
:func:`report_startup_failure`, which writes the ``lifespan.startup.failed``
message (ASGI lifespan spec) to the file the ``asgishift serve`` process names
in :data:`REPORT_ENV`; worker processes inherit the variable. Once the server
has stopped, :meth:`StartupReport.raise_failure` turns a written message into
one :class:`~asgishift.serve._errors.StartupError`, whatever the server did.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from asgishift._types import ASGIApp, Message, Receive, Scope, Send
from asgishift.serve._errors import StartupError

#: Environment variable naming the file a failed lifespan startup is written to.
REPORT_ENV = "ASGISHIFT_SERVE_STARTUP_REPORT"

logger = logging.getLogger("asgishift.serve")


def _one_line(message: object) -> str:
    """Return the last non-blank line of a ``lifespan.startup.failed`` message.

    Frameworks often send a whole traceback; its last line names the exception.
    """
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "the app gave no reason (see the log above)"


def _append_line(path: str, line: str) -> None:
    """Append ``line`` to the file ``path``; a write that fails is dropped.

    Blocking, but once, for one short line, while the app fails to start and
    serves nothing.
    """
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")


def report_startup_failure(app: ASGIApp, path: str) -> ASGIApp:
    """Return ``app`` writing why its lifespan startup failed to ``path`` (other scopes pass).

    :param app: the ASGI 3 app a server runs.
    :param path: the file to append the message to, one line per failure
        (one per worker process).
    """

    async def reporting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def reporting_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                _append_line(path, _one_line(message.get("message")))
            await send(message)

        await app(scope, receive, reporting_send)

    return reporting


@dataclass(frozen=True)
class StartupReport:
    """The file a serving process writes a failed lifespan startup to.

    :param path: the file, named in :data:`REPORT_ENV` while the server runs.
    """

    path: str

    def raise_failure(self) -> None:
        """Raise if an app's lifespan startup failed in any process; else return.

        :raise StartupError: naming the first failure (exit status 3).
        """
        try:
            with open(self.path, encoding="utf-8") as file:
                first = file.readline().strip()
        except OSError:
            return
        if first:
            raise StartupError(f"the app's lifespan startup failed: {first}")


@contextlib.contextmanager
def stop_on_startup_failure(path: str, interval: float = 0.2) -> Iterator[None]:
    """While the block runs, send this process SIGTERM once a failed startup is reported.

    uvicorn's ``--workers`` supervisor before 0.50 starts a new worker whenever
    one exits, also one whose lifespan startup failed: with an ``--on-startup``
    hook that always fails, ``asgishift serve`` then never ended. The
    supervisor, running in this process, stops its workers on SIGTERM; the
    caller then raises the reported failure (exit status 3).

    :param path: the report file (:data:`REPORT_ENV`), read every ``interval``
        seconds by a daemon thread that ends with the block.
    """
    done = threading.Event()
    lock = threading.Lock()

    def watch() -> None:
        while not done.wait(interval):
            if os.path.exists(path) and os.path.getsize(path):
                with lock:
                    if not done.is_set():
                        logger.error("a worker's lifespan startup failed: stopping the server")
                        os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, name="asgishift-startup-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with lock:
            done.set()
        thread.join()


@contextlib.contextmanager
def startup_report() -> Iterator[StartupReport]:
    """Create an empty report file, name it in :data:`REPORT_ENV`, and remove both afterwards.

    :raise OSError: when no temporary file can be created.
    """
    fd, path = tempfile.mkstemp(prefix="asgishift-startup-", suffix=".txt")
    os.close(fd)
    previous = os.environ.get(REPORT_ENV)
    os.environ[REPORT_ENV] = path
    try:
        yield StartupReport(path)
    finally:
        if previous is None:
            os.environ.pop(REPORT_ENV, None)
        else:
            os.environ[REPORT_ENV] = previous
        with contextlib.suppress(OSError):
            os.unlink(path)


__all__ = [
    "REPORT_ENV",
    "StartupReport",
    "report_startup_failure",
    "startup_report",
    "stop_on_startup_failure",
]
