"""The public surface of ``asgishift.bridge``."""

from __future__ import annotations

import asgishift.bridge as bridge


def test_all_is_sorted_and_complete() -> None:
    assert bridge.__all__ == sorted(bridge.__all__)
    assert set(bridge.__all__) == {
        "BridgeOptions",
        "ClientDisconnected",
        "HybridRouter",
        "WSGIToASGI",
    }


def test_public_names_report_the_public_module() -> None:
    for name in bridge.__all__:
        assert getattr(bridge, name).__module__ == "asgishift.bridge"


def test_client_disconnected_is_an_oserror() -> None:
    assert issubclass(bridge.ClientDisconnected, OSError)
