"""``ASGISHIFT_TEST_SERVERS``: how ``.ci/run``'s matrix corners pick their ASGI servers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from live import (
    ASGI_SERVERS,
    REPO_ROOT,
    SERVERS_VARIABLE,
    excluded_server,
    selected_servers,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, set(ASGI_SERVERS)),
        ("", set(ASGI_SERVERS)),
        ("  ", set(ASGI_SERVERS)),
        ("uvicorn", {"uvicorn"}),
        ("hypercorn, granian,", {"hypercorn", "granian"}),
    ],
)
def test_selected_servers_parses_the_variable(value: str | None, expected: set[str]) -> None:
    assert selected_servers(value) == expected


def test_an_unknown_server_is_a_usage_error_naming_it() -> None:
    with pytest.raises(pytest.UsageError, match="gunicron"):
        selected_servers("uvicorn,gunicron")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, None),
        ({"server": "uvicorn"}, None),
        ({"server": "granian"}, "granian"),
        ({"raw_server": "daphne", "size": 10}, "daphne"),
        ({"command": "gunicorn-uvicorn-worker"}, None),
        ({"server": 3}, None),
    ],
)
def test_excluded_server(params: dict[str, object], expected: str | None) -> None:
    assert excluded_server(params, frozenset({"uvicorn", "hypercorn"})) == expected


def _collected(servers: str) -> list[str]:
    env = {**os.environ, SERVERS_VARIABLE: servers}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
         "-p", "no:cacheprovider", "tests/serve/test_serve_live.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_collection_keeps_only_the_selected_servers_tests() -> None:
    every = _collected("")
    some = _collected("uvicorn,daphne")
    assert any("[granian]" in test for test in every)
    assert some, "nothing collected"
    assert not [test for test in some if "[granian]" in test or "[hypercorn]" in test]
    kept = [t for t in every if "[granian]" not in t and "[hypercorn]" not in t]
    assert some == kept
