"""``BridgeOptions``: one frozen declaration of every ``WSGIToASGI`` option."""

from __future__ import annotations

import dataclasses
from typing import Any
from wsgiref.validate import validator

import pytest
from bridge_harness import request

from asgishift.bridge import BridgeOptions, WSGIToASGI


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_defaults() -> None:
    options = BridgeOptions()
    assert dataclasses.asdict(options) == {
        "max_workers": 40,
        "max_queue": 200,
        "max_body_size": None,
        "request_timeout": None,
        "retry_after": 1,
        "buffer_size": 65536,
        "shutdown_timeout": 30.0,
        "drain_body_size": 1048576,
        "drain_timeout": 1.0,
        "multiprocess": None,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_workers", 0),
        ("max_workers", 1.5),
        ("max_workers", True),
        ("max_queue", -1),
        ("max_body_size", -1),
        ("request_timeout", 0),
        ("request_timeout", float("nan")),
        ("retry_after", -1),
        ("buffer_size", -1),
        ("shutdown_timeout", -0.5),
        ("drain_body_size", -1),
        ("drain_timeout", -1),
        ("drain_timeout", "1"),
        ("multiprocess", 1),
        ("multiprocess", "false"),
    ],
)
def test_out_of_range_values_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        BridgeOptions(**{field: value})


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BridgeOptions().retry_after = 5  # type: ignore[misc]


def test_replace_checks_again() -> None:
    assert BridgeOptions().replace(retry_after=9).retry_after == 9
    with pytest.raises(ValueError, match="buffer_size"):
        BridgeOptions().replace(buffer_size=-3)


def test_bridge_takes_options_or_keywords_and_keywords_win() -> None:
    base = BridgeOptions(max_workers=3, retry_after=4)
    assert WSGIToASGI(_app, base).options is base
    assert WSGIToASGI(_app, max_workers=3, retry_after=4).options == base
    merged = WSGIToASGI(_app, base, retry_after=6).options
    assert (merged.max_workers, merged.retry_after) == (3, 6)
    with pytest.raises(TypeError):
        WSGIToASGI(_app, no_such_option=1)


def test_bridge_attributes_mirror_the_options_and_are_read_only() -> None:
    bridge = WSGIToASGI(_app, request_timeout=2.5, shutdown_timeout=None)
    assert bridge.request_timeout == 2.5
    assert bridge.shutdown_timeout is None
    assert bridge.pool.max_workers == 40
    with pytest.raises(AttributeError):
        bridge.retry_after = 3  # type: ignore[misc]


@pytest.mark.parametrize(("multiprocess", "seen"), [(None, True), (True, True), (False, False)])
def test_multiprocess_option_is_the_environs_wsgi_multiprocess(
    multiprocess: bool | None, seen: bool
) -> None:
    # It used to be True whatever the deployment; PEP 3333 asks for True only
    # when another process may run the app at the same time.
    environs: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environs.append(environ)
        return _app(environ, start_response)

    request(WSGIToASGI(validator(app), multiprocess=multiprocess))
    assert environs[0]["wsgi.multiprocess"] is seen
