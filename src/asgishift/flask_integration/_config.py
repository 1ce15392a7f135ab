"""Flask config keys for the bridge options: ``ASGISHIFT_<FIELD>`` per field.

The keys are derived from :class:`asgishift.bridge.BridgeOptions`, so a new
bridge option is a new config key with no change here
(``ASGISHIFT_MAX_WORKERS`` → ``max_workers``, and so on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from asgishift.bridge import BridgeOptions

__all__ = ["CONFIG_PREFIX", "config_keys", "merge_options", "options_from_config"]

#: Prefix of every config key the extension reads (Flask's extension guide).
CONFIG_PREFIX = "ASGISHIFT_"


def config_keys() -> dict[str, str]:
    """Return ``{config key: BridgeOptions field name}`` for every field."""
    return {
        CONFIG_PREFIX + field.name.upper(): field.name
        for field in dataclasses.fields(BridgeOptions)
    }


def _changes(config: Mapping[str, Any]) -> dict[str, Any]:
    return {name: config[key] for key, name in config_keys().items() if key in config}


def _config_error(config: Mapping[str, Any], exc: ValueError) -> ValueError:
    """Return ``exc`` restated with the config key at fault, when one key alone is.

    Each ``ASGISHIFT_*`` value present is tried on its own against the defaults;
    the first one refused is named (``ASGISHIFT_MAX_WORKERS = 0``). When every
    value passes alone (a combination is refused), the message names none.
    """
    for key, name in config_keys().items():
        if key in config:
            try:
                BridgeOptions(**{name: config[key]})
            except ValueError as alone:
                return ValueError(f"invalid {key} = {config[key]!r} in the Flask config: {alone}")
    return ValueError(f"invalid {CONFIG_PREFIX}* settings in the Flask config: {exc}")


def options_from_config(config: Mapping[str, Any]) -> BridgeOptions:
    """Build the bridge options from an app's config.

    :param config: ``app.config``; keys missing keep :class:`BridgeOptions`' defaults.
    :raise ValueError: naming the config key (``ASGISHIFT_MAX_WORKERS``) when a
        value is out of range.
    """
    try:
        return BridgeOptions(**_changes(config))
    except ValueError as exc:
        raise _config_error(config, exc) from None


def merge_options(given: BridgeOptions, config: Mapping[str, Any]) -> BridgeOptions:
    """Combine the options a launcher passes with the app's config.

    A field the launcher left at its default takes the app's config value; a
    field the launcher changed (``asgishift serve --max-workers 8``) wins.

    :param given: the launcher's options.
    :param config: ``app.config``.
    :raise ValueError: naming the config key when a config value is out of range.
    """
    default = BridgeOptions()
    changes = {
        name: value
        for name, value in _changes(config).items()
        if getattr(given, name) == getattr(default, name)
    }
    try:
        return dataclasses.replace(given, **changes) if changes else given
    except ValueError as exc:
        raise _config_error(config, exc) from None
