"""Serve WSGI and ASGI applications on uvicorn, hypercorn, daphne or granian.

``asgishift serve module:app`` on the command line, :func:`run` from Python;
both take one :class:`ServeConfig`. WSGI applications are detected
(:func:`detect_interface`) and wrapped in :class:`asgishift.bridge.WSGIToASGI`;
mounts and lifespan hooks go through :class:`asgishift.bridge.HybridRouter`;
:func:`build_app` returns that ASGI app without serving it. The server is
started through its own Python API. Importing this package imports no
server: each is imported only when it is started.
"""

from __future__ import annotations

from asgishift.serve._build import build_app
from asgishift.serve._config import ServeConfig
from asgishift.serve._detect import Detection, detect_interface
from asgishift.serve._errors import (
    AppImportError,
    AppInterfaceError,
    AppNotFoundError,
    PortInUseError,
    ServeConfigError,
    ServeError,
    ServerNotInstalledError,
)
from asgishift.serve._loader import import_app
from asgishift.serve._run import ServePlan, prepare, run
from asgishift.serve._servers import LOG_LEVELS, SERVERS

__all__ = [
    "LOG_LEVELS",
    "SERVERS",
    "AppImportError",
    "AppInterfaceError",
    "AppNotFoundError",
    "Detection",
    "PortInUseError",
    "ServeConfig",
    "ServeConfigError",
    "ServeError",
    "ServePlan",
    "ServerNotInstalledError",
    "build_app",
    "detect_interface",
    "import_app",
    "prepare",
    "run",
]
