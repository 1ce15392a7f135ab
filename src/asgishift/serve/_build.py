"""Turn a :class:`~asgishift.serve.ServeConfig` into the ASGI app a server runs.

The same configuration builds the app in the ``asgishift serve`` process and,
through an environment variable, in every worker process a server spawns for
``--workers`` or ``--reload`` (see :mod:`asgishift.serve._worker`), so all of
them serve the same stack::

    server -> [BlockingDetectorMiddleware] -> [RootPathMiddleware]
           -> [HybridRouter: mounts, hooks] -> WSGIToASGI -> app   (or the ASGI app)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from asgishift._types import ASGIApp, Receive, Scope, Send, WSGIApp
from asgishift.bridge import BridgeOptions
from asgishift.serve._config import ServeConfig
from asgishift.serve._detect import Detection, detect_interface
from asgishift.serve._errors import (
    AppImportError,
    AppInterfaceError,
    ServeConfigError,
    ServeError,
)
from asgishift.serve._loader import import_app

#: Key under a Flask app's ``extensions`` where asgishift's Flask extension
#: registers itself (duck-typed: this package never imports Flask).
EXTENSION_KEY = "asgishift"


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


@dataclass(frozen=True)
class BuiltApp:
    """The ASGI app built from a configuration, and how.

    :param app: the ASGI 3 app to serve.
    :param detection: WSGI or ASGI for the main app, and why.
    :param wrapping: how the main app became ASGI, for the start-up banner,
        e.g. ``"WSGI app through WSGIToASGI, 40 threads"``.
    """

    app: ASGIApp
    detection: Detection
    wrapping: str


def _blocking_detector(app: ASGIApp, lag_threshold_ms: float, full_stack: bool) -> ASGIApp:
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
    return cast(ASGIApp, middleware(app, lag_threshold_ms=lag_threshold_ms, full_stack=full_stack))


def extension_bridge(app: object, options: BridgeOptions) -> ASGIApp | None:
    """Return the ASGI app a framework extension builds for ``app``, or ``None``.

    The contract with asgishift's Flask extension (duck-typed, so Flask is
    never imported here): ``app.extensions["asgishift"]`` has a callable
    ``asgi_app_for(options)`` returning the ASGI app to serve. That app may
    differ from ``options`` (the Flask app's ``ASGISHIFT_*`` config fills the
    fields left at their defaults); it says what it uses in an ``options``
    attribute (a :class:`BridgeOptions`), which the banner reports.

    :param app: the loaded WSGI application.
    :param options: the bridge options from the configuration.
    """
    extensions = getattr(app, "extensions", None)
    if not isinstance(extensions, Mapping):
        return None
    extension = extensions.get(EXTENSION_KEY)
    build = getattr(extension, "asgi_app_for", None)
    if extension is None or not callable(build):
        return None
    return cast(ASGIApp, build(options))


def _check_override(app: object, interface: str) -> None:
    """Refuse ``--interface`` when the app is recognisably the other interface.

    An async callable cannot answer WSGI, nor a Flask app, a Django handler or a
    ``(environ, start_response)`` function ASGI: every request would fail with a
    ``500``. The override stands when detection cannot tell.

    :raise AppInterfaceError: naming what the app was recognised as.
    """
    try:
        detected = detect_interface(app)
    except AppInterfaceError:
        return
    if detected.interface != interface:
        raise AppInterfaceError(
            f"--interface {interface} contradicts the app, which is "
            f"{detected.interface.upper()} ({detected.reason}); drop --interface"
        )


def as_asgi(app: object, interface: str, options: BridgeOptions) -> tuple[ASGIApp, Detection, str]:
    """Return ``app`` as an ASGI app, with its :class:`Detection` and a banner phrase.

    WSGI apps go through their framework extension when it offers one
    (:func:`extension_bridge`), else through a new
    :class:`~asgishift.bridge.WSGIToASGI` with ``options``; ASGI apps are
    returned as they are.

    :param interface: ``"auto"`` (detect), ``"wsgi"`` or ``"asgi"``.
    :raise AppInterfaceError: when ``"auto"`` cannot tell, or when ``interface``
        contradicts what the app is recognisably.
    """
    if interface == "auto":
        detection = detect_interface(app)
    else:
        _check_override(app, interface)
        detection = Detection(cast(Any, interface), "set by --interface")
    if detection.interface == "asgi":
        return cast(ASGIApp, app), detection, "ASGI app"
    extended = extension_bridge(app, options)
    if extended is not None:
        used = getattr(extended, "options", None)
        workers = used.max_workers if isinstance(used, BridgeOptions) else options.max_workers
        return (
            extended,
            detection,
            f"WSGI app through its asgishift extension, {workers} threads",
        )
    from asgishift.bridge import WSGIToASGI

    return (
        WSGIToASGI(cast(WSGIApp, app), options),
        detection,
        f"WSGI app through WSGIToASGI, {options.max_workers} threads",
    )


def _load(spec: object, config: ServeConfig, *, factory: bool = False) -> object:
    if isinstance(spec, str):
        return import_app(spec, app_dir=config.app_dir, factory=factory)
    return spec() if factory and callable(spec) else spec


def _renamed(error: ServeError, label: str) -> ServeError:
    """Return ``error`` again with its message prefixed by ``label`` (the flag and value);
    raise it ``from`` its ``__cause__`` (the app's exception, or ``None``)."""
    message = f"{label}: {error}"
    if isinstance(error, AppImportError):
        renamed: ServeError = AppImportError(message, error.details)
    else:
        renamed = type(error)(message)
    renamed.__cause__ = error.__cause__
    return renamed


def _hook(spec: object, config: ServeConfig, flag: str) -> Callable[[], Any]:
    """Load one ``--on-startup``/``--on-shutdown`` hook; its errors name the flag."""
    try:
        hook = _load(spec, config)
    except ServeError as exc:
        label = spec if isinstance(spec, str) else f"<{type(spec).__name__} object>"
        renamed = _renamed(exc, f"{flag} {label}")
        raise renamed from renamed.__cause__
    if not callable(hook):
        raise ServeConfigError(
            f"{flag} {spec} is a {type(hook).__name__}, not a function; point it at a function "
            "taking no arguments"
        )
    return cast(Callable[[], Any], hook)


def bridge_options(config: ServeConfig) -> BridgeOptions:
    """Return the bridge options of ``config``, with what serve knows filled in.

    ``multiprocess`` (the environ's ``wsgi.multiprocess``, PEP 3333 "environ
    Variables"), when not given, is whether ``config.workers`` is above 1: a
    reloader runs one serving process at a time.
    """
    if config.bridge.multiprocess is None:
        return config.bridge.replace(multiprocess=config.workers > 1)
    return config.bridge


def _mounted(prefix: str, spec: object, config: ServeConfig) -> ASGIApp:
    """Load and wrap one ``--mount``; its errors name the mount."""
    try:
        return as_asgi(_load(spec, config), "auto", bridge_options(config))[0]
    except ServeError as exc:
        label = spec if isinstance(spec, str) else f"<{type(spec).__name__} object>"
        renamed = _renamed(exc, f"--mount {prefix}={label}")
        raise renamed from renamed.__cause__


def build(config: ServeConfig) -> BuiltApp:
    """Load the app, mounts and hooks named in ``config`` and wrap them for a server.

    :raise ServeError: any of the loader's errors (missing module or
        attribute), :class:`~asgishift.serve.AppInterfaceError` when WSGI or
        ASGI cannot be told, or :class:`~asgishift.serve.ServeConfigError` for
        a hook that is not callable or ``detect_blocking`` without the runtime
        middleware.
    """
    loaded = _load(config.app, config, factory=config.factory)
    app, detection, wrapping = as_asgi(loaded, config.interface, bridge_options(config))
    if config.mounts or config.on_startup or config.on_shutdown:
        from asgishift.bridge import HybridRouter

        mounts = [(prefix, _mounted(prefix, spec, config)) for prefix, spec in config.mounts]
        app = HybridRouter(
            app,
            mounts,
            on_startup=[_hook(spec, config, "--on-startup") for spec in config.on_startup],
            on_shutdown=[_hook(spec, config, "--on-shutdown") for spec in config.on_shutdown],
        )
    if config.root_path:
        app = RootPathMiddleware(app, config.root_path)
    if config.detect_blocking:
        app = _blocking_detector(app, config.loop_lag_ms, config.full_stack)
    return BuiltApp(app, detection, wrapping)


def build_app(config: ServeConfig) -> ASGIApp:
    """Return the ASGI app ``asgishift serve`` would serve for ``config`` (load + detect + wrap).

    For reuse by other launchers (Django's ``runasgi``) and tests.

    :param config: :attr:`ServeConfig.app` is an import string or the
        loaded WSGI/ASGI application.
    :return: an ASGI 3 app.
    :raise ServeError: see :func:`build`.
    """
    return build(config).app


__all__ = [
    "EXTENSION_KEY",
    "BuiltApp",
    "RootPathMiddleware",
    "as_asgi",
    "build",
    "build_app",
    "extension_bridge",
]
