"""Fixtures for the runtime tests: pytester, and a small rule list independent of the catalogue."""

from __future__ import annotations

import pytest

from asgishift.audit._model import Rule


def pytest_configure(config: pytest.Config) -> None:
    """Load pytester for the plugin tests.

    ``pytest_plugins = ["pytester"]`` is refused in a conftest below the
    rootdir when the whole suite runs, so the plugin is imported here (a no-op
    when ``-p pytester`` or the top-level conftest already loaded it).
    """
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


def _rule(code: str, message: str, calls: tuple[str, ...]) -> Rule:
    return Rule(
        code=code,
        name=f"test-{code.lower()}",
        summary=message,
        message=message,
        why="",
        example="",
        fixed="",
        calls=calls,
    )


@pytest.fixture
def rules() -> tuple[Rule, ...]:
    """Three rules naming calls the tests make: sleep, file, socket."""
    return (
        _rule("ASH101", "Blocking call {call}() stops the event loop", ("time.sleep",)),
        _rule(
            "ASH103",
            "Blocking socket call {call}()",
            ("socket.create_connection", "socket.socket.connect"),
        ),
        _rule(
            "ASH105",
            "Blocking file I/O {call}()",
            ("builtins.open", "pathlib.Path.read_text", "threading.Lock.acquire"),
        ),
    )
