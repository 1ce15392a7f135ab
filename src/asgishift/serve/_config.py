"""The one declaration of what ``asgishift serve`` does: :class:`ServeConfig`.

The command line (``asgishift.serve._cli``), :func:`asgishift.serve.run`, the
worker processes a server spawns (through :meth:`ServeConfig.to_env`) and
Django's ``runasgi`` all build one :class:`ServeConfig` and pass it on. Each
field carries its documentation (the string under it) and, in its metadata, a
:class:`Flag` saying how it appears on the command line; the bridge's own
options come from :class:`~asgishift.bridge.BridgeOptions` the same way. A
new option is therefore one field here (or in ``BridgeOptions``): its flag,
``--help`` text, docs page entry, validation and worker hand-over follow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from asgishift.bridge import BridgeOptions
from asgishift.bridge._router import normalise_prefix
from asgishift.serve._errors import ServeConfigError
from asgishift.serve._proxy import check_forwarded_allow_ips
from asgishift.serve._servers import LOG_LEVELS, SERVERS

#: Environment variable carrying a :class:`ServeConfig` (as JSON) to worker processes.
CONFIG_ENV = "ASGISHIFT_SERVE_CONFIG"


@dataclass(frozen=True)
class Flag:
    """How one :class:`ServeConfig` field appears on the command line.

    :param convert: turns the flag's text into the field's value; raises
        :class:`ValueError` with a message for bad text. ``None`` keeps the text.
    :param check: raises :class:`ValueError` when a value is out of range; run
        both by the parser and by :meth:`ServeConfig.__post_init__`.
    :param metavar: the placeholder shown in ``--help``.
    :param choices: the accepted words, when the value is one of a few.
    :param repeat: the flag may be given several times (a tuple field).
    :param positional: the field is a positional argument, not a ``--flag``.
    :param requires: the name of a switch field this flag only applies with.
    :param expand: the field is an options dataclass whose fields each get a flag.
    :param name: the flag when it is not derived from the field name
        (``mounts`` is given one at a time as ``--mount``).
    """

    convert: Callable[[str], Any] | None = None
    check: Callable[[Any], None] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False
    positional: bool = False
    requires: str | None = None
    expand: bool = False
    name: str | None = None


def _flag(**kwargs: Any) -> dict[str, Flag]:
    return {"flag": Flag(**kwargs)}


def _at_least(minimum: int) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")

    return check


def _check_port(value: Any) -> None:
    if not 0 < value < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {value}")


def _check_loop_lag_ms(value: Any) -> None:
    """Apply the blocking-detector middleware's rule for its lag threshold (milliseconds).

    Imported when used: without the ``asgishift.runtime`` package the value is not
    checked here, and ``--detect-blocking`` fails with its own message when the app
    is built.
    """
    try:
        from asgishift.runtime._middleware import check_lag_threshold_ms
    except ImportError:
        return
    check_lag_threshold_ms(value)


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def _forwarded_allow_ips_default() -> str:
    """Return ``$FORWARDED_ALLOW_IPS`` or ``"127.0.0.1"`` (uvicorn's default and variable)."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def parse_mount(text: str) -> tuple[str, str]:
    """Split ``--mount PREFIX=module:app`` into ``(prefix, "module:app")``.

    :param text: e.g. ``"/api=api:app"``.
    :return: the normalised prefix (see
        :func:`asgishift.bridge._router.normalise_prefix`) and the import string.
    :raise ValueError: when ``=`` or either half is missing, or the prefix is
        not a path such as ``/api``.
    """
    prefix, sep, spec = text.partition("=")
    if not sep or not prefix or ":" not in spec:
        raise ValueError(f"expected PREFIX=module:app such as /api=api:app, got {text!r}")
    return normalise_prefix(prefix), spec


def _import_string(text: str) -> str:
    module, sep, attr = text.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"expected module:function such as app:connect_db, got {text!r}")
    return text


def normalise_root_path(root_path: str) -> str:
    """Return ``root_path`` as ``""`` or ``"/prefix"`` (leading slash, none trailing).

    :raise ValueError: when it contains a query string or fragment.
    """
    if "?" in root_path or "#" in root_path:
        raise ValueError(f"must be a path such as /api, got {root_path!r}")
    stripped = root_path.strip("/")
    return f"/{stripped}" if stripped else ""


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``asgishift serve`` needs to build and serve an application.

    Frozen; derive a changed copy with :func:`dataclasses.replace`. Values are
    normalised and checked on construction. Pass it to
    :func:`asgishift.serve.run` (serve it), :func:`asgishift.serve.prepare`
    (check and build, serve later) or :func:`asgishift.serve.build_app` (just
    the ASGI app). Each field below is also a command-line flag.

    :raise ServeConfigError: for a value out of range or a combination the
        chosen server cannot honour (the message names the flag).
    """

    app: object = field(metadata=_flag(positional=True, metavar="APP"))
    """The application as ``module:attribute``, e.g. ``app:app`` or
    ``mysite.wsgi:application`` (the attribute may be dotted); from Python also the loaded
    WSGI or ASGI application object itself."""

    server: str = field(default="uvicorn", metadata=_flag(choices=SERVERS))
    """The ASGI server to run on; each needs its extra, e.g. ``pip install
    'asgishift[granian]'``."""

    interface: Literal["auto", "wsgi", "asgi"] = field(
        default="auto", metadata=_flag(choices=("auto", "wsgi", "asgi"))
    )
    """The interface APP speaks; ``auto`` detects it. Needed only for apps detection cannot
    classify: a value contradicting an app that detection recognises is refused."""

    host: str = field(default="127.0.0.1", metadata=_flag())
    """Address to bind."""

    port: int = field(default=8000, metadata=_flag(convert=_whole_number, check=_check_port))
    """TCP port to bind."""

    workers: int = field(
        default=1, metadata=_flag(convert=_whole_number, check=_at_least(1), metavar="N")
    )
    """Worker processes, each importing APP anew; not available with daphne, nor with
    ``--reload`` on uvicorn."""

    reload: bool = field(default=False, metadata=_flag())
    """Restart the server when a file under ``--app-dir`` changes (development only; not
    available with daphne; granian needs ``granian[reload]``)."""

    root_path: str = field(default="", metadata=_flag(convert=normalise_root_path))
    """URL prefix the app is mounted at behind a proxy that strips it, e.g. ``/api``; WSGI
    apps see it as ``SCRIPT_NAME`` and build URLs with it."""

    forwarded_allow_ips: str = field(
        default_factory=_forwarded_allow_ips_default,
        metadata=_flag(check=check_forwarded_allow_ips, metavar="IPS"),
    )
    """Comma-separated addresses or networks of the reverse proxies whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` headers set the client address and
    scheme the app sees (``REMOTE_ADDR`` and ``wsgi.url_scheme`` for WSGI apps), e.g.
    ``10.0.0.0/8``; ``*`` trusts every peer, ``""`` none. The same on every server. By
    default the ``FORWARDED_ALLOW_IPS`` environment variable, else ``127.0.0.1``, as
    uvicorn."""

    factory: bool = field(default=False, metadata=_flag())
    """Treat APP as a function taking no arguments that returns the application, e.g.
    ``app:create_app``."""

    log_level: str = field(default="info", metadata=_flag(choices=LOG_LEVELS))
    """Server log level."""

    app_dir: str = field(default=".", metadata=_flag())
    """Directory put first on ``sys.path`` to import APP, mounts and hooks from."""

    bridge: BridgeOptions = field(default_factory=BridgeOptions, metadata=_flag(expand=True))
    """Options of the WSGIToASGI bridge that runs a WSGI app (each is its own flag)."""

    mounts: tuple[tuple[str, object], ...] = field(
        default=(),
        metadata=_flag(
            convert=parse_mount, repeat=True, metavar="PREFIX=MODULE:APP", name="--mount"
        ),
    )
    """Serve the ASGI app ``module:app`` under ``PREFIX`` (whole path segments) beside APP,
    which gets every other path, through ``HybridRouter``; repeatable; from Python a mapping
    of prefix to import string or app object."""

    on_startup: tuple[object, ...] = field(
        default=(), metadata=_flag(convert=_import_string, repeat=True, metavar="MODULE:FUNC")
    )
    """Call this function (sync or async, no arguments) at lifespan startup, before the app
    serves; repeatable, run in order. If it raises, the server does not start."""

    on_shutdown: tuple[object, ...] = field(
        default=(), metadata=_flag(convert=_import_string, repeat=True, metavar="MODULE:FUNC")
    )
    """Call this function (sync or async, no arguments) at lifespan shutdown, after running
    requests finished; repeatable, run in order."""

    detect_blocking: bool = field(default=False, metadata=_flag())
    """Log requests during which the event loop was blocked (wraps the app in
    ``asgishift.runtime.BlockingDetectorMiddleware``)."""

    loop_lag_ms: float = field(
        default=100.0,
        metadata=_flag(
            convert=_number,
            check=_check_loop_lag_ms,
            requires="detect_blocking",
            metavar="MS",
        ),
    )
    """With ``--detect-blocking``: event-loop lag in milliseconds worth reporting; ``0``
    turns the loop-lag monitor off (blocking calls are still reported)."""

    full_stack: bool = field(default=False, metadata=_flag(requires="detect_blocking"))
    """With ``--detect-blocking``: print every frame of each reported stack; by default
    runs of standard-library, installed-package and asgishift frames are folded into one
    line (``… 7 library frames …``) so the application's frames stand out."""

    def __post_init__(self) -> None:
        """Normalise ``root_path``, ``mounts`` and the hooks; check every field.

        :raise ServeConfigError: naming the flag of the first bad value.
        """
        mounts: Any = self.mounts
        pairs = mounts.items() if isinstance(mounts, Mapping) else mounts
        try:
            normalised = tuple((normalise_prefix(prefix), app) for prefix, app in pairs)
        except ValueError as exc:
            raise ServeConfigError(f"--mount: {exc}") from None
        prefixes = [prefix for prefix, _ in normalised]
        for prefix in prefixes:
            if prefixes.count(prefix) > 1:
                raise ServeConfigError(f"--mount: prefix {prefix!r} is given twice; keep one")
        object.__setattr__(self, "mounts", normalised)
        try:
            object.__setattr__(self, "root_path", normalise_root_path(self.root_path))
        except ValueError as exc:
            raise ServeConfigError(f"--root-path {exc}") from None
        object.__setattr__(self, "on_startup", tuple(self.on_startup))
        object.__setattr__(self, "on_shutdown", tuple(self.on_shutdown))
        for spec in dataclasses.fields(self):
            flag: Flag = spec.metadata["flag"]
            value = getattr(self, spec.name)
            if flag.choices is not None and value not in flag.choices:
                raise ServeConfigError(
                    f"{flag_name(spec.name)} must be one of {', '.join(flag.choices)}, "
                    f"got {value!r}"
                )
            if flag.check is not None:
                try:
                    flag.check(value)
                except ValueError as exc:
                    raise ServeConfigError(f"{flag_name(spec.name)} {exc}") from None
        if not isinstance(self.bridge, BridgeOptions):
            raise ServeConfigError(
                f"bridge must be an asgishift.bridge.BridgeOptions, got {type(self.bridge)}"
            )
        if self.server == "daphne" and self.needs_import_string:
            raise ServeConfigError(
                "daphne runs a single process without a reloader; drop --workers/--reload or "
                "use --server uvicorn, hypercorn or granian"
            )
        if self.server == "uvicorn" and self.reload and self.workers > 1:
            raise ServeConfigError(
                "uvicorn runs a single worker process with --reload (it would ignore "
                "--workers); drop --workers, or use --server hypercorn or granian"
            )

    @property
    def by_name(self) -> bool:
        """Return whether :attr:`app` is an import string (worker processes can rebuild it)."""
        return isinstance(self.app, str)

    @property
    def app_label(self) -> str:
        """Return :attr:`app` for messages: the import string or ``<type object>``."""
        return self.app if isinstance(self.app, str) else f"<{type(self.app).__name__} object>"

    @property
    def needs_import_string(self) -> bool:
        """Return whether worker processes must import the app by name (workers, reload)."""
        return self.workers > 1 or self.reload

    @property
    def reload_dirs(self) -> tuple[str, ...]:
        """Return the directories ``reload`` watches: :attr:`app_dir`, absolute."""
        return (os.path.abspath(self.app_dir),)

    def url(self) -> str:
        """Return the ``http://host:port/root_path`` URL clients use."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.root_path}"

    def to_env(self) -> str:
        """Serialise for :data:`CONFIG_ENV`; :meth:`from_env` reverses it.

        :raise ServeConfigError: when the app, a mount or a hook is an object
            rather than an import string (another process cannot rebuild it).
        """
        named = [self.app, *(app for _, app in self.mounts), *self.on_startup, *self.on_shutdown]
        if not all(isinstance(item, str) for item in named):
            raise ServeConfigError(
                "workers > 1 and reload start the app in new processes, which import it by "
                "name; pass the app, mounts and hooks as 'module:attribute' strings"
            )
        data = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        data["bridge"] = dataclasses.asdict(self.bridge)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_env(cls, value: str) -> ServeConfig:
        """Rebuild a configuration from :meth:`to_env` output.

        :raise ValueError: when ``value`` is not such output.
        """
        data = json.loads(value)
        if not isinstance(data, dict):
            raise ValueError(f"{CONFIG_ENV} must hold a JSON object, got {value!r}")
        data["bridge"] = BridgeOptions(**data["bridge"])
        data["mounts"] = tuple(tuple(pair) for pair in data["mounts"])
        return cls(**data)


def flag_name(name: str) -> str:
    """Return the command-line flag of field ``name``: ``max_workers`` -> ``--max-workers``.

    The flag a :class:`Flag` names itself (``mounts`` -> ``--mount``) wins.
    """
    for spec in dataclasses.fields(ServeConfig):
        if spec.name == name and spec.metadata["flag"].name:
            return str(spec.metadata["flag"].name)
    return "--" + name.replace("_", "-")


def config_from_environ() -> ServeConfig:
    """Read the :class:`ServeConfig` a worker process was started with.

    :raise RuntimeError: when :data:`CONFIG_ENV` is missing: the worker entry
        point was started by something other than ``asgishift serve``.
    """
    value = os.environ.get(CONFIG_ENV)
    if value is None:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set: asgishift.serve._worker is the entry point "
            "`asgishift serve` gives servers for --workers/--reload; run `asgishift serve "
            "module:app` instead of pointing a server at it directly"
        )
    return ServeConfig.from_env(value)


__all__ = [
    "CONFIG_ENV",
    "Flag",
    "ServeConfig",
    "config_from_environ",
    "flag_name",
    "normalise_root_path",
    "parse_mount",
]
