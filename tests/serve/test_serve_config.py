"""ServeConfig is the one declaration: flags, help and worker hand-over derive from it."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import pytest
from serve_helpers import SERVE_APPS_DIR

from asgishift.bridge import BridgeOptions, HybridRouter, WSGIToASGI
from asgishift.cli import build_parser
from asgishift.serve import ServeConfig, ServeConfigError, build_app
from asgishift.serve._build import as_asgi
from asgishift.serve._cli import SET_BY_SERVE, config_from_args
from asgishift.serve._config import flag_name


def _parse(*argv: str) -> ServeConfig:
    return config_from_args(build_parser().parse_args(["serve", *argv]))


def _serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]


def test_every_field_and_bridge_option_is_a_flag_with_help() -> None:
    actions = {a.dest: a for a in _serve_parser()._actions}
    expected = [f.name for f in dataclasses.fields(ServeConfig) if f.name != "bridge"]
    expected += [
        f"bridge.{f.name}" for f in dataclasses.fields(BridgeOptions) if f.name not in SET_BY_SERVE
    ]
    for name in expected:
        assert name in actions, f"{name} has no flag"
        assert len(actions[name].help or "") > 15, f"{name} has no help"


def test_bridge_options_serve_sets_itself_have_no_flag() -> None:
    # wsgi.multiprocess follows --workers; a flag for it could only mislead.
    assert "multiprocess" in SET_BY_SERVE
    flags = {flag for a in _serve_parser()._actions for flag in a.option_strings}
    assert "--multiprocess" not in flags
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "m:app", "--multiprocess", "false"])


def test_flags_default_to_the_dataclass_defaults() -> None:
    config = _parse("m:app")
    assert config == ServeConfig(app="m:app")


def test_bridge_flags_reach_the_bridge_options() -> None:
    config = _parse(
        "m:app",
        "--max-workers",
        "8",
        "--max-queue",
        "0",
        "--max-body-size",
        "1024",
        "--request-timeout",
        "2.5",
        "--shutdown-timeout",
        "none",
        "--drain-timeout",
        "0.5",
    )
    assert config.bridge == BridgeOptions(
        max_workers=8,
        max_queue=0,
        max_body_size=1024,
        request_timeout=2.5,
        shutdown_timeout=None,
        drain_timeout=0.5,
    )


def test_repeatable_flags_keep_their_order() -> None:
    config = _parse(
        "m:app",
        "--mount",
        "/api/=api:app",
        "--mount",
        "/ws=ws:app",
        "--on-startup",
        "h:a",
        "--on-startup",
        "h:b",
        "--on-shutdown",
        "h:c",
    )
    assert config.mounts == (("/api", "api:app"), ("/ws", "ws:app"))
    assert config.on_startup == ("h:a", "h:b")
    assert config.on_shutdown == ("h:c",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--max-workers", "0"], "max_workers must be ≥ 1", id="max-workers"),
        pytest.param(["--request-timeout", "0"], "request_timeout must be", id="timeout"),
        pytest.param(["--max-queue", "x"], "expected a whole number", id="queue-nan"),
        pytest.param(["--mount", "/api"], "PREFIX=module:app", id="mount-form"),
        pytest.param(["--on-startup", "nocolon"], "module:function", id="hook-form"),
    ],
)
def test_bad_values_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        _parse("m:app", *argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_flag_requiring_another_says_which() -> None:
    with pytest.raises(ServeConfigError, match="add --detect-blocking"):
        _parse("m:app", "--loop-lag-ms", "5")


@pytest.mark.parametrize("value", [0.0, 0.5, 100.0, -1.0, float("nan"), float("inf")])
def test_loop_lag_ms_follows_the_middlewares_rule(value: float) -> None:
    """``--loop-lag-ms`` and ``BlockingDetectorMiddleware(lag_threshold_ms=...)`` accept the
    same values (``0``: lag monitor off); the command line refused ``0``."""
    from asgishift.runtime import BlockingDetectorMiddleware

    def accepted(make: object) -> bool:
        try:
            assert callable(make)
            make()
        except (ValueError, ServeConfigError, SystemExit):
            return False
        return True

    middleware = accepted(lambda: BlockingDetectorMiddleware(_noop, lag_threshold_ms=value))
    flag = accepted(lambda: _parse("m:app", "--detect-blocking", "--loop-lag-ms", str(value)))
    assert flag == middleware == (value == 0 or 0 < value < float("inf"))


async def _noop(scope: object, receive: object, send: object) -> None:
    """An ASGI app that does nothing (the middleware is only constructed)."""


def test_a_mount_prefix_given_twice_is_refused() -> None:
    with pytest.raises(ServeConfigError, match="--mount: prefix '/api' is given twice"):
        ServeConfig(app="m:app", mounts=(("/api", "a:app"), ("/api/", "b:app")))


def test_flag_names_derive_from_fields() -> None:
    assert flag_name("max_workers") == "--max-workers"
    assert flag_name("mounts") == "--mount"


def test_build_app_wraps_wsgi_with_the_configured_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    app = build_app(
        ServeConfig(
            app="serve_apps:wsgi_app",
            app_dir=str(SERVE_APPS_DIR),
            bridge=BridgeOptions(max_workers=2, retry_after=9),
        )
    )
    assert isinstance(app, WSGIToASGI)
    # One serving process: serve sets multiprocess (wsgi.multiprocess) to False.
    assert app.options == BridgeOptions(max_workers=2, retry_after=9, multiprocess=False)


def test_build_app_routes_mounts_and_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    app = build_app(
        ServeConfig(
            app="serve_apps:wsgi_app",
            app_dir=str(SERVE_APPS_DIR),
            mounts={"/api": "serve_apps:asgi_app"},
            on_startup=("serve_apps:create_wsgi_app",),
        )
    )
    assert isinstance(app, HybridRouter)
    assert isinstance(app.fallback, WSGIToASGI)
    assert [prefix for prefix, _ in app.mounts] == ["/api"]
    assert app.on_startup[0].__name__ == "create_wsgi_app"


class _Extension:
    """What asgishift's Flask extension registers: ``asgi_app_for(options)``."""

    def __init__(self) -> None:
        self.seen: list[BridgeOptions] = []

    def asgi_app_for(self, options: BridgeOptions) -> object:
        self.seen.append(options)
        return "the extension's ASGI app"


class _FlaskLike:
    """Duck-typed like a Flask app: ``wsgi_app`` and an ``extensions`` dict."""

    def __init__(self) -> None:
        self.extensions = {"asgishift": _Extension()}

    def wsgi_app(self, environ: object, start_response: object) -> list[bytes]:
        return []

    def __call__(self, environ: object, start_response: object) -> list[bytes]:
        return []


def test_flask_extension_builds_the_asgi_app() -> None:
    flask_like = _FlaskLike()
    options = BridgeOptions(max_workers=3)
    assert build_app(ServeConfig(app=flask_like, bridge=options)) == "the extension's ASGI app"
    assert flask_like.extensions["asgishift"].seen == [options.replace(multiprocess=False)]


@pytest.mark.parametrize(
    ("config_workers", "flag_workers", "shown"),
    [(7, None, 7), (7, 3, 3), (None, None, BridgeOptions().max_workers)],
)
def test_the_banner_counts_the_threads_the_flask_extension_uses(
    config_workers: int | None, flag_workers: int | None, shown: int
) -> None:
    """The Flask app's ``ASGISHIFT_MAX_WORKERS`` fills a flag left at its default."""
    from flask import Flask

    from asgishift.flask_integration import ASGI

    flask_app = Flask("banner")
    if config_workers is not None:
        flask_app.config["ASGISHIFT_MAX_WORKERS"] = config_workers
    ASGI(flask_app)
    options = BridgeOptions() if flag_workers is None else BridgeOptions(max_workers=flag_workers)
    app, _, wrapping = as_asgi(flask_app, "auto", options)
    assert app.options.max_workers == shown  # type: ignore[attr-defined]
    assert wrapping == f"WSGI app through its asgishift extension, {shown} threads"
