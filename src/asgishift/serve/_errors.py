"""Errors ``asgishift serve`` reports as one line naming the fix.

Exception tree::

    ServeError                  exit code 1 unless stated
    ├── AppNotFoundError        the module or attribute of ``module:attr`` is missing
    ├── AppImportError          the app's own module or factory raised
    ├── AppInterfaceError       WSGI or ASGI cannot be told apart (exit code 2)
    ├── ServerNotInstalledError the chosen server's extra is not installed
    ├── PortInUseError          another socket holds ``--host``/``--port``
    ├── ServeConfigError        a flag combination the server cannot honour (exit code 2)
    │   └── AddressUnavailableError  ``--host``/``--port`` cannot be bound here (not an
    │                                address of this machine, or no permission)
    └── StartupError            the app's lifespan startup failed, or an embedded
                                server stopped before it listened (exit code 3)

The command line prints ``str(error)`` after ``asgishift serve: error:`` and
exits with :attr:`ServeError.exit_code`, without a traceback: every message
already says what to change.
"""

from __future__ import annotations


class ServeError(Exception):
    """Report a problem that stops ``asgishift serve`` before the server starts.

    :param message: one line that names the cause and the fix.
    """

    #: The process exit status the command line uses for this error.
    exit_code: int = 1


class AppNotFoundError(ServeError):
    """Report that ``module:attribute`` does not name an importable object."""


class AppImportError(ServeError):
    """Report that importing the app's module, or calling its factory, raised.

    The original exception is the ``__cause__``.

    :param message: one line naming the exception and where it was raised.
    :param details: the traceback of the app's own code, without the frames of
        asgishift and importlib (``str``, lines ending in newlines), printed
        above the one-line error.
    """

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


class AppInterfaceError(ServeError):
    """Report that the app is neither recognisably WSGI nor ASGI; pass ``--interface``."""

    exit_code = 2


class ServerNotInstalledError(ServeError):
    """Report that the server chosen with ``--server`` is not importable."""


class PortInUseError(ServeError):
    """Report that the address to listen on is taken by another socket."""


class ServeConfigError(ServeError):
    """Report a flag combination the chosen server cannot honour."""

    exit_code = 2


class AddressUnavailableError(ServeConfigError):
    """Report that ``host:port`` cannot be bound for a reason other than another socket
    holding it (``bind(2)``: ``EADDRNOTAVAIL``, ``EACCES``, ...).

    :param message: the one-line report.
    :param host: the address that was to be bound.
    :param port: the TCP port.
    :param error: the ``OSError`` ``bind`` raised (``errno``, ``strerror``).
    """

    def __init__(self, message: str, host: str, port: int, error: OSError) -> None:
        super().__init__(message)
        self.host = host
        self.port = port
        self.error = error


__all__ = [
    "AddressUnavailableError",
    "AppImportError",
    "AppInterfaceError",
    "AppNotFoundError",
    "PortInUseError",
    "ServeConfigError",
    "ServeError",
    "ServerNotInstalledError",
    "StartupError",
]


class StartupError(ServeError):
    """The server stopped before it listened (lifespan startup failed, bind failed, ...)."""

    exit_code = 3
