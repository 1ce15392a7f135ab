"""Turn a loaded application into the ASGI app a server runs.

The same :class:`AppSettings` build the app in the ``asgishift serve``
process and, through an environment variable, in every worker process a
server spawns for ``--workers`` or ``--reload`` (see
:mod:`asgishift.serve._worker`), so all of them serve the same stack:

    server -> [BlockingDetectorMiddleware] -> [RootPathMiddleware] -> [WSGIToASGI] -> app
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from dataclasses import dataclass
from typing import Literal, cast

from asgishift._types import ASGIApp, Receive, Scope, Send, WSGIApp
from asgishift.serve._detect import Detection, detect_interface
from asgishift.serve._errors import ServeConfigError
from asgishift.serve._loader import import_app

#: Environment variable carrying :class:`AppSettings` (as JSON) to worker processes.
SETTINGS_ENV = "ASGISHIFT_SERVE_SETTINGS"


@dataclass(frozen=True)
class AppSettings:
    """Everything needed to rebuild the served ASGI app in another process.

    :param app: ``"module:attribute"``.
    :param app_dir: directory to import ``app`` from.
    :param factory: call the attribute to get the app.
    :param interface: ``"auto"`` (detect), ``"wsgi"`` or ``"asgi"``.
    :param max_workers: threads in the bridge's pool (WSGI apps only).
    :param root_path: mount prefix, ``""`` or ``"/prefix"`` without a trailing slash.
    :param detect_blocking: wrap the app in ``BlockingDetectorMiddleware``.
    :param loop_lag_ms: event-loop lag in milliseconds the detector reports.
    """

    app: str
    app_dir: str = "."
    factory: bool = False
    interface: Literal["auto", "wsgi", "asgi"] = "auto"
    max_workers: int = 40
    root_path: str = ""
    detect_blocking: bool = False
    loop_lag_ms: float = 100.0

    def to_env(self) -> str:
        """Serialise for :data:`SETTINGS_ENV`; :meth:`from_env` reverses it."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, value: str) -> AppSettings:
        """Rebuild settings from :meth:`to_env` output.

        :raise ValueError: when ``value`` is not such output.
        """
        data = json.loads(value)
        if not isinstance(data, dict):
            raise ValueError(f"{SETTINGS_ENV} must hold a JSON object, got {value!r}")
        return cls(**data)


class RootPathMiddleware:
    """Serve the app below ``root_path``, the way a stripping reverse proxy expects.

    Sets ``scope["root_path"]`` and prefixes ``path`` (and ``raw_path``) with
    it, as the ASGI HTTP scope requires (``path`` includes ``root_path``; a
    WSGI bridge derives ``SCRIPT_NAME``/``PATH_INFO`` by stripping it). Done
    here rather than through each server's own option because uvicorn,
    hypercorn, daphne and granian disagree on whether ``path`` is prefixed.

    :param app: the ASGI app to call.
    :param root_path: ``"/prefix"``, no trailing slash.
    """

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path
        self._raw_root = root_path.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Adjust HTTP and WebSocket scopes, pass every other scope through unchanged."""
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            scope["root_path"] = self.root_path
            scope["path"] = self.root_path + scope["path"]
            raw_path = scope.get("raw_path")
            if raw_path is not None:
                scope["raw_path"] = self._raw_root + raw_path
        await self.app(scope, receive, send)


def normalise_root_path(root_path: str) -> str:
    """Return ``root_path`` as ``""`` or ``"/prefix"`` (leading slash, none trailing).

    :raise ServeConfigError: when it contains a query string or fragment.
    """
    if "?" in root_path or "#" in root_path:
        raise ServeConfigError(f"--root-path must be a path such as /api, got {root_path!r}")
    stripped = root_path.strip("/")
    return f"/{stripped}" if stripped else ""


def _blocking_detector(app: ASGIApp, lag_threshold_ms: float) -> ASGIApp:
    # Imported by name so a build without the runtime package fails with a
    # message instead of at import time.
    try:
        runtime = importlib.import_module("asgishift.runtime")
        middleware = runtime.BlockingDetectorMiddleware
    except (ImportError, AttributeError):
        raise ServeConfigError(
            "--detect-blocking needs asgishift.runtime.BlockingDetectorMiddleware, which this "
            "asgishift installation lacks; upgrade asgishift or drop --detect-blocking"
        ) from None
    return cast(ASGIApp, middleware(app, lag_threshold_ms=lag_threshold_ms))


def build_asgi_app(app: object, settings: AppSettings) -> tuple[ASGIApp, Detection]:
    """Wrap a loaded application into the ASGI app to serve.

    :param app: the object :func:`asgishift.serve._loader.import_app` returned.
    :param settings: how to wrap it.
    :return: the ASGI 3 app and the :class:`Detection` that chose the interface.
    :raise AppInterfaceError: when the interface is ``"auto"`` and cannot be
        detected.
    :raise ServeConfigError: when ``detect_blocking`` is set but the runtime
        middleware is missing.
    """
    if settings.interface == "auto":
        detection = detect_interface(app)
    else:
        detection = Detection(settings.interface, "set by --interface")
    if detection.interface == "wsgi":
        from asgishift.bridge import WSGIToASGI

        asgi_app: ASGIApp = WSGIToASGI(cast(WSGIApp, app), max_workers=settings.max_workers)
    else:
        asgi_app = cast(ASGIApp, app)
    if settings.root_path:
        asgi_app = RootPathMiddleware(asgi_app, settings.root_path)
    if settings.detect_blocking:
        asgi_app = _blocking_detector(asgi_app, settings.loop_lag_ms)
    return asgi_app, detection


def load_from_settings(settings: AppSettings) -> tuple[ASGIApp, Detection]:
    """Import the app named in ``settings`` and wrap it; see :func:`build_asgi_app`.

    :raise ServeError: any of the loader's or builder's errors.
    """
    loaded = import_app(settings.app, app_dir=settings.app_dir, factory=settings.factory)
    return build_asgi_app(loaded, settings)


def settings_from_environ() -> AppSettings:
    """Read :class:`AppSettings` from :data:`SETTINGS_ENV` in ``os.environ``.

    :raise RuntimeError: when the variable is missing: the worker entry point
        was started by something other than ``asgishift serve``.
    """
    value = os.environ.get(SETTINGS_ENV)
    if value is None:
        raise RuntimeError(
            f"{SETTINGS_ENV} is not set: asgishift.serve._worker is the entry point "
            "`asgishift serve` gives servers for --workers/--reload; run `asgishift serve "
            "module:app` instead of pointing a server at it directly"
        )
    return AppSettings.from_env(value)


__all__ = [
    "SETTINGS_ENV",
    "AppSettings",
    "RootPathMiddleware",
    "build_asgi_app",
    "load_from_settings",
    "normalise_root_path",
    "settings_from_environ",
]
