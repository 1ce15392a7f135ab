"""Unit tests for loading, settings, the root-path middleware and server checks."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from serve_helpers import SERVE_APPS_DIR

from asgishift.bridge import BridgeOptions
from asgishift.serve import (
    AppNotFoundError,
    PortInUseError,
    ServeConfig,
    ServeConfigError,
    ServerNotInstalledError,
    import_app,
)
from asgishift.serve._build import RootPathMiddleware
from asgishift.serve._config import CONFIG_ENV, config_from_environ, normalise_root_path
from asgishift.serve._loader import split_app_spec
from asgishift.serve._proxy import ProxyHeadersMiddleware, TrustedProxies
from asgishift.serve._servers import SERVERS, check_port_free, check_server_installed
from live import free_port


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with a uniquely named module; sys.path and sys.modules are restored."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    (tmp_path / f"units_{tmp_path.name}.py").write_text(
        "class Holder:\n    inner = 'nested'\n\napp = 'the app'\n\ndef factory():\n"
        "    return 'built'\n",
        encoding="utf-8",
    )
    return tmp_path


def _module(app_dir: Path) -> str:
    return f"units_{app_dir.name}"


def test_import_app_reads_from_app_dir(app_dir: Path) -> None:
    assert import_app(f"{_module(app_dir)}:app", app_dir=str(app_dir)) == "the app"
    assert str(app_dir) == sys.path[0]


def test_import_app_follows_dotted_attributes(app_dir: Path) -> None:
    assert import_app(f"{_module(app_dir)}:Holder.inner", app_dir=str(app_dir)) == "nested"


def test_import_app_calls_factory(app_dir: Path) -> None:
    assert import_app(f"{_module(app_dir)}:factory", app_dir=str(app_dir), factory=True) == (
        "built"
    )


def test_factory_flag_on_non_callable_is_a_config_error(app_dir: Path) -> None:
    with pytest.raises(ServeConfigError, match="drop --factory"):
        import_app(f"{_module(app_dir)}:app", app_dir=str(app_dir), factory=True)


def test_missing_attribute_lists_the_names_present(app_dir: Path) -> None:
    with pytest.raises(AppNotFoundError, match=r"no attribute 'application'; it defines app"):
        import_app(f"{_module(app_dir)}:application", app_dir=str(app_dir))


def test_missing_app_dir_is_reported(tmp_path: Path) -> None:
    with pytest.raises(AppNotFoundError, match="is not a directory"):
        import_app("x:app", app_dir=str(tmp_path / "absent"))


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("module", id="no-colon"),
        pytest.param(":app", id="no-module"),
        pytest.param("module:", id="no-attr"),
    ],
)
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(ServeConfigError, match="module:attribute"):
        split_app_spec(spec)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("/", "", id="slash"),
        pytest.param("api", "/api", id="no-leading"),
        pytest.param("/api/v1/", "/api/v1", id="trailing"),
    ],
)
def test_normalise_root_path(given: str, expected: str) -> None:
    assert normalise_root_path(given) == expected


def test_root_path_with_query_is_rejected() -> None:
    with pytest.raises(ServeConfigError, match="--root-path"):
        ServeConfig(app="m:app", root_path="/api?x=1")


def test_config_round_trips_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(
        app="m:app",
        server="granian",
        port=9000,
        workers=3,
        app_dir="/srv",
        factory=True,
        interface="wsgi",
        bridge=BridgeOptions(max_workers=7, max_queue=3, request_timeout=2.5, max_body_size=10),
        root_path="/p",
        mounts={"/api/": "api:app", "/ws": "ws:app"},
        on_startup=("hooks:one", "hooks:two"),
        on_shutdown=("hooks:three",),
        detect_blocking=True,
        loop_lag_ms=25.5,
    )
    assert config.mounts == (("/api", "api:app"), ("/ws", "ws:app"))
    monkeypatch.setenv(CONFIG_ENV, config.to_env())
    assert config_from_environ() == config


def test_config_with_an_app_object_cannot_go_to_workers() -> None:
    config = ServeConfig(app=lambda environ, start_response: [])
    with pytest.raises(ServeConfigError, match="'module:attribute' strings"):
        config.to_env()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"port": 0}, "--port port must be between 1 and 65535", id="port"),
        pytest.param({"workers": 0}, "--workers must be at least 1", id="workers"),
        pytest.param({"server": "gunicorn"}, "--server must be one of uvicorn", id="server"),
        pytest.param({"mounts": {"/": "a:b"}}, "--mount: mount prefix '/' covers", id="mount"),
        pytest.param({"loop_lag_ms": -1}, "--loop-lag-ms must be 0 (loop-lag", id="lag"),
        pytest.param({"loop_lag_ms": float("nan")}, "--loop-lag-ms must be 0", id="lag-nan"),
        pytest.param({"server": "daphne", "reload": True}, "drop --workers/--reload", id="daphne"),
    ],
)
def test_config_rejects_bad_values_naming_the_flag(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ServeConfigError) as caught:
        ServeConfig(app="m:app", **changes)
    assert str(caught.value).startswith(message) or message in str(caught.value)


def test_worker_entry_without_config_explains_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(RuntimeError, match="run `asgishift serve"):
        config_from_environ()


def test_root_path_middleware_prefixes_http_and_passes_lifespan() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    async def main() -> None:
        wrapped = RootPathMiddleware(app, "/api")
        http = {"type": "http", "path": "/x", "raw_path": b"/x", "root_path": ""}
        await wrapped(http, None, None)  # type: ignore[arg-type]
        await wrapped({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
        assert http["path"] == "/x", "the server's scope must not be mutated"

    asyncio.run(main())
    assert seen[0] == {"type": "http", "path": "/api/x", "raw_path": b"/api/x", "root_path": "/api"}
    assert seen[1] == {"type": "lifespan"}


def _through_proxy_headers(trusted: str, scope: dict[str, Any]) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    wrapped = ProxyHeadersMiddleware(app, TrustedProxies.parse(trusted))
    asyncio.run(wrapped(scope, None, None))  # type: ignore[arg-type]
    return seen[0]


def _scope(kind: str, peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    scheme = "ws" if kind == "websocket" else "http"
    return {"type": kind, "client": (peer, 5000), "scheme": scheme, "headers": list(headers)}


def test_proxy_headers_take_the_rightmost_untrusted_forwarded_address() -> None:
    scope = _scope(
        "http",
        "10.0.0.2",
        (b"x-forwarded-for", b"198.51.100.9, 203.0.113.7"),
        (b"X-Forwarded-For", b"10.0.0.1"),
        (b"x-forwarded-proto", b"HTTPS"),
    )
    seen = _through_proxy_headers("10.0.0.0/8, ::1", scope)
    # 10.0.0.1 is a trusted proxy too; the client spoofing 198.51.100.9 is not believed.
    assert seen["client"] == ("203.0.113.7", 0)
    assert seen["scheme"] == "https"
    assert scope["client"] == ("10.0.0.2", 5000), "the server's scope must not be mutated"


def test_proxy_headers_of_untrusted_peers_and_odd_schemes_are_ignored() -> None:
    headers = ((b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https"))
    untrusted = _through_proxy_headers("127.0.0.1", _scope("http", "192.0.2.1", *headers))
    assert untrusted["client"] == ("192.0.2.1", 5000)
    assert untrusted["scheme"] == "http"
    none_trusted = _through_proxy_headers("", _scope("http", "127.0.0.1", *headers))
    assert none_trusted["client"] == ("127.0.0.1", 5000)
    odd = _through_proxy_headers("*", _scope("http", "::1", (b"x-forwarded-proto", b"gopher")))
    assert odd["scheme"] == "http"


def test_proxy_headers_trust_an_ipv4_peer_of_a_dual_stack_socket() -> None:
    scope = _scope("http", "::ffff:127.0.0.1", (b"x-forwarded-for", b"203.0.113.7"))
    assert _through_proxy_headers("127.0.0.1", scope)["client"] == ("203.0.113.7", 0)
    # IPv6 networks listed first are skipped for an IPv4 peer, not an error.
    scope = _scope("http", "10.0.0.2", (b"x-forwarded-for", b"203.0.113.7"))
    assert _through_proxy_headers("::1, 10.0.0.0/8", scope)["client"] == ("203.0.113.7", 0)


def test_proxy_headers_give_a_websocket_wss() -> None:
    scope = _scope("websocket", "::1", (b"x-forwarded-proto", b"https"))
    assert _through_proxy_headers("::1", scope)["scheme"] == "wss"


def test_forwarded_allow_ips_rejects_what_is_not_an_address() -> None:
    with pytest.raises(ServeConfigError, match=r"--forwarded-allow-ips .*'localhost'"):
        ServeConfig(app="m:a", forwarded_allow_ips="127.0.0.1,localhost")


def test_missing_server_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypercorn", None)
    with pytest.raises(ServerNotInstalledError, match=r"pip install 'asgishift\[hypercorn\]'"):
        check_server_installed("hypercorn")


@pytest.mark.parametrize("server", [pytest.param(name, id=name) for name in SERVERS])
def test_installed_servers_pass(server: str) -> None:
    assert check_server_installed(server) is None


def test_unknown_server_lists_choices() -> None:
    with pytest.raises(ServeConfigError, match="uvicorn, hypercorn, daphne, granian"):
        check_server_installed("gunicorn")


def test_port_check_detects_a_listener() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"--port {port + 1}"):
            check_port_free("127.0.0.1", port)


def test_port_check_rejects_foreign_address() -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    with pytest.raises(ServeConfigError, match=r"--host 127\.0\.0\.1"):
        check_port_free("192.0.2.1", 8000)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        pytest.param("127.0.0.1", "http://127.0.0.1:9000/r", id="ipv4"),
        pytest.param("::1", "http://[::1]:9000/r", id="ipv6"),
    ],
)
def test_config_url(host: str, url: str) -> None:
    assert ServeConfig(app="m:app", host=host, port=9000, root_path="r").url() == url


def test_importing_the_package_imports_no_server() -> None:
    code = (
        "import sys, asgishift.serve; "
        "print(sorted(m for m in ('uvicorn', 'hypercorn', 'daphne', 'granian', 'twisted', "
        "'flask', 'django') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_prepare_builds_the_whole_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    from asgishift.bridge import WSGIToASGI
    from asgishift.runtime import BlockingDetectorMiddleware
    from asgishift.serve import prepare

    monkeypatch.setattr(sys, "path", list(sys.path))
    plan = prepare(
        ServeConfig(
            app="serve_apps:wsgi_app",
            app_dir=str(SERVE_APPS_DIR),
            port=free_port(),
            bridge=BridgeOptions(max_workers=3, max_queue=5, request_timeout=4.0),
            root_path="/r/",
            detect_blocking=True,
            loop_lag_ms=20,
        )
    )
    detector = plan.app
    assert isinstance(detector, BlockingDetectorMiddleware)
    assert detector.lag_threshold_ms == 20
    root = detector.app
    assert isinstance(root, RootPathMiddleware)
    assert root.root_path == "/r"
    bridge = root.app
    assert isinstance(bridge, WSGIToASGI)
    # One process (no --workers): serve tells the bridge so (wsgi.multiprocess false).
    assert bridge.options == BridgeOptions(
        max_workers=3, max_queue=5, request_timeout=4.0, multiprocess=False
    )
    assert plan.built.detection.interface == "wsgi"
    assert plan.config.url().endswith("/r")


def test_prepare_refuses_app_objects_with_workers() -> None:
    from asgishift.serve import prepare

    config = ServeConfig(app=lambda environ, start_response: [], workers=2, port=free_port())
    with pytest.raises(ServeConfigError, match="'module:attribute' strings"):
        prepare(config)


def test_startup_report_keeps_the_last_line_of_a_traceback_message() -> None:
    # Frameworks (Starlette) send the whole traceback as the failure message.
    from asgishift.serve._errors import StartupError
    from asgishift.serve._startup_report import REPORT_ENV, report_startup_failure, startup_report

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        message = "Traceback (most recent call last):\n  ...\nValueError: no database\n"
        await send({"type": "lifespan.startup.failed", "message": message})

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    sent: list[dict[str, Any]] = []
    with startup_report() as report:
        assert report.path == os.environ[REPORT_ENV]
        report.raise_failure()  # nothing written yet
        asyncio.run(report_startup_failure(app, report.path)({"type": "lifespan"}, receive, send))
        with pytest.raises(StartupError, match=r"startup failed: ValueError: no database$"):
            report.raise_failure()
    assert [message["type"] for message in sent] == ["lifespan.startup.failed"]
    assert REPORT_ENV not in os.environ
    assert not Path(report.path).exists()


@pytest.mark.parametrize("fails", [True, False], ids=["a-worker-fails", "none-fails"])
def test_a_reported_startup_failure_stops_the_supervisor_with_sigterm(
    tmp_path: Path, fails: bool
) -> None:
    """uvicorn's supervisor before 0.50 restarts a worker whose startup failed, for ever.

    The watch sends this process SIGTERM (which the supervisor handles by stopping
    its workers) once, when the report file gets its first line; it sends nothing
    while the file stays empty, and its thread ends with the block either way.
    """
    import signal
    import threading
    import time

    from asgishift.serve._startup_report import stop_on_startup_failure

    report = tmp_path / "report.txt"
    report.write_text("")
    got = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.set())
    try:
        with stop_on_startup_failure(str(report), interval=0.01):
            if fails:
                report.write_text("startup hook failed\n")
                deadline = time.monotonic() + 10
                while not got.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)  # the handler runs on this (the main) thread
            else:
                time.sleep(0.1)  # ten polls of an empty file
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got.is_set() is fails
    names = [thread.name for thread in threading.enumerate()]
    assert "asgishift-startup-watch" not in names


def test_uvicorn_can_be_started_off_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Signal handlers can only be set on the main thread; uvicorn then skips its own.
    import threading

    import uvicorn

    from asgishift.serve._servers import serve_with

    calls: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(app))
    errors: list[BaseException] = []

    def start() -> None:
        try:
            serve_with(cast(Any, object()), ServeConfig(app="m:app"))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(timeout=10)
    assert (errors, len(calls)) == ([], 1)
