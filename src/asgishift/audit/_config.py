"""Read ``[tool.asgishift.audit]`` from ``pyproject.toml`` into an :class:`AuditConfig`.

The table is found the way ruff and mypy find theirs: ``--config PATH`` when given,
otherwise the nearest ``pyproject.toml`` walking upward from the first audited path.
The directory holding that file is the *project root*: every path in findings,
baselines, SARIF ``artifactLocation.uri`` and config globs is relative to it. Without a
``pyproject.toml`` the root is the common parent of the audited paths.

Keys are kebab-case, as in ``[tool.ruff]``::

    [tool.asgishift.audit]
    select = ["ASH1", "ASH201"]
    ignore = ["ASH105"]
    per-file-ignores = { "tests/**" = ["ASH1"] }
    exclude = ["**/migrations/**"]
    extra-blocking = ["shop.legacy.fetch_rates"]
    extra-safe = ["shop.utils.run_in_thread"]
    respect-gitignore = true
    max-file-bytes = 2097152
    jobs = 0
    cache-dir = ".asgishift_cache"

A key this module does not know is an error (:class:`ConfigError`), never silently
ignored: a typo such as ``ignroe`` would otherwise switch a rule back on unnoticed.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgishift.audit._model import SYNTAX_CHECKS, AuditConfig
from asgishift.audit._regular import NotRegularFile, open_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 CI corner
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

logger = logging.getLogger("asgishift.audit")

TABLE = "[tool.asgishift.audit]"


class ConfigError(Exception):
    """A configuration file or value that cannot be used; the CLI exits with status 2.

    :param source: the file (or ``"command line"``) the bad value came from.
    :param message: what is wrong and how to fix it.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


@dataclass
class LoadedConfig:
    """The outcome of :func:`load_config`.

    :param config: the settings, with ``cache_dir`` made absolute.
    :param root: the project root (absolute).
    :param source: the ``pyproject.toml`` read, or ``None`` when there was none.
    """

    config: AuditConfig
    root: Path
    source: Path | None


def _str_list(value: object, key: str, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(source, f"{TABLE} {key} must be a list of strings, got {value!r}")
    return list(value)


def _bool(value: object, key: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(source, f"{TABLE} {key} must be true or false, got {value!r}")
    return value


def _syntax_check(value: object, key: str, source: str) -> str:
    if value not in SYNTAX_CHECKS:
        choices = " or ".join(repr(choice) for choice in SYNTAX_CHECKS)
        raise ConfigError(source, f"{TABLE} {key} must be {choices}, got {value!r}")
    return str(value)


def _non_negative_int(value: object, key: str, source: str) -> int:
    # bool is an int subclass; `jobs = true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(source, f"{TABLE} {key} must be an integer >= 0, got {value!r}")
    return value


def _positive_int(value: object, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(source, f"{TABLE} {key} must be an integer > 0, got {value!r}")
    return value


def _per_file_ignores(value: object, key: str, source: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ConfigError(
            source,
            f'{TABLE} {key} must be a table of glob = [codes], e.g. {{ "tests/**" = ["ASH1"] }}',
        )
    return {str(glob): _str_list(codes, f"{key}.{glob!r}", source) for glob, codes in value.items()}


def _cache_dir(value: object, key: str, source: str) -> str | None:
    if value is False:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(source, f"{TABLE} {key} must be a directory path or false, got {value!r}")
    return value


# key -> (AuditConfig attribute, converter). One table drives parsing and the
# "did you mean" hint for unknown keys.
_KEYS: dict[str, tuple[str, Callable[[object, str, str], Any]]] = {
    "select": ("select", _str_list),
    "ignore": ("ignore", _str_list),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "exclude": ("exclude", _str_list),
    "extra-blocking": ("extra_blocking", _str_list),
    "extra-safe": ("extra_safe", _str_list),
    "respect-gitignore": ("respect_gitignore", _bool),
    "max-file-bytes": ("max_file_bytes", _positive_int),
    "jobs": ("jobs", _non_negative_int),
    "cache-dir": ("cache_dir", _cache_dir),
    "whole-project": ("whole_project", _bool),
    "syntax-check": ("syntax_check", _syntax_check),
}

KNOWN_KEYS: tuple[str, ...] = tuple(_KEYS)
_KEY_OF = {attribute: key for key, (attribute, _) in _KEYS.items()}


def config_key(attribute: str) -> str:
    """Return the ``[tool.asgishift.audit]`` key that sets an :class:`AuditConfig` attribute.

    Messages name a setting the way users write it (``max-file-bytes``), not
    the attribute (``max_file_bytes``).

    :param attribute: an :class:`AuditConfig` field set from the table.
    :raise KeyError: for a field no key sets.
    """
    return _KEY_OF[attribute]


def parse_table(table: dict[str, Any], source: str) -> AuditConfig:
    """Convert a ``[tool.asgishift.audit]`` table into an :class:`AuditConfig`.

    :param table: the table as :mod:`tomllib` returns it.
    :param source: the file name used in error messages.
    :return: the settings; keys not in the table keep their defaults.
    :raise ConfigError: on an unknown key (with a "did you mean" hint) or a value of
        the wrong type.
    """
    config = AuditConfig()
    for key, value in table.items():
        if key not in _KEYS:
            close = difflib.get_close_matches(key.replace("_", "-"), KNOWN_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                source,
                f"unknown key {key!r} in {TABLE}{hint} (known keys: {', '.join(KNOWN_KEYS)})",
            )
        attribute, convert = _KEYS[key]
        setattr(config, attribute, convert(value, key, source))
    return config


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` in ``start`` or one of its parents.

    :param start: a file or directory; a file starts the search at its directory.
    :return: the absolute path of the file, or ``None`` when no parent has one.
    """
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
        if candidate.exists():
            # A FIFO or directory of that name is never opened (a FIFO blocks).
            logger.warning("ignoring %s: not a regular file", candidate)
    return None


def _common_parent(paths: Sequence[Path]) -> Path:
    resolved = [p.resolve() for p in paths]
    dirs = [p if p.is_dir() else p.parent for p in resolved]
    return Path(os.path.commonpath([str(d) for d in dirs]))


def load_config(paths: Sequence[Path], config_file: Path | None = None) -> LoadedConfig:
    """Find and read the audit settings for a run over ``paths``.

    :param paths: the paths given on the command line (files or directories); at
        least one.
    :param config_file: an explicit ``pyproject.toml`` (``--config``); ``None`` searches
        upward from ``paths[0]``.
    :return: the settings, the project root and the file read. A relative
        ``cache-dir`` is made absolute against the root.
    :raise ConfigError: when ``config_file`` does not exist, is not a regular file (a
        FIFO is refused, never waited on), is not valid TOML, or its
        table has an unknown key or a bad value.
    """
    source = config_file.resolve() if config_file is not None else find_pyproject(paths[0])
    config = AuditConfig()
    if source is not None:
        shown = str(config_file) if config_file is not None else str(source)
        try:
            # Never ``open()``: a FIFO named ``pyproject.toml`` would block the run.
            with open_regular(source) as handle:
                document = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(source), f"not valid TOML: {exc}") from None
        except NotRegularFile:
            raise ConfigError(shown, "not a regular file (a FIFO, socket or directory)") from None
        except FileNotFoundError:
            raise ConfigError(shown, "config file does not exist; check --config") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(shown, f"cannot read the config file: {exc}") from None
        table: Any = document
        # `tool = 3` or `[tool] asgishift = "x"` is a bad value, not a crash.
        for name in ("tool", "tool.asgishift", "tool.asgishift.audit"):
            table = table.get(name.rsplit(".", 1)[-1])
            if table is None:
                break
            if not isinstance(table, dict):
                raise ConfigError(str(source), f"[{name}] must be a table")
        if table is not None:
            config = parse_table(table, str(source))
        root = source.parent
        logger.debug("audit settings from %s (root %s)", source, root)
    else:
        root = _common_parent(paths)
        logger.debug("no pyproject.toml above %s; root is %s", paths[0], root)
    if config.cache_dir is not None:
        config.cache_dir = str((root / config.cache_dir).resolve())
    return LoadedConfig(config=config, root=root, source=source)


__all__ = [
    "KNOWN_KEYS",
    "ConfigError",
    "LoadedConfig",
    "find_pyproject",
    "load_config",
    "parse_table",
]
