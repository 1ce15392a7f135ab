"""``python -m asgishift serve`` as a real subprocess on each ASGI server."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from serve_helpers import SERVE_APPS_DIR, serve_argv

from live import ASGI_SERVER_PARAMS, live_server


def _serve(server: str, app: str, *flags: str) -> list[str]:
    return serve_argv(app, "--server", server, "--port", "{port}", "--log-level", "info", *flags)


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_wsgi_app_runs_through_the_bridge(server: str) -> None:
    argv = _serve(server, "serve_apps:wsgi_app")
    with live_server(server, "serve_apps:wsgi_app", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/hello/world?x=1&y=2")
        banner = srv.wait_for_log(r"asgishift: serving (\S+) on (\S+) \((\w+), ([^;]+);")
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["interface"] == "wsgi"
    assert echoed["PATH_INFO"] == "/hello/world"
    assert echoed["QUERY_STRING"] == "x=1&y=2"
    assert echoed["SCRIPT_NAME"] == ""
    assert echoed["multithread"] is True
    # One serving process: PEP 3333's wsgi.multiprocess is false.
    assert echoed["multiprocess"] is False
    assert banner.group(1) == "serve_apps:wsgi_app"
    assert banner.group(2) == srv.url
    assert banner.group(3) == server
    assert banner.group(4) == "WSGI app through WSGIToASGI, 40 threads"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_an_asgi_apps_own_lifespan_runs_on_every_server(server: str) -> None:
    """Requests see the state the app's startup made; its shutdown runs at SIGTERM.

    daphne has no lifespan support, and before, under daphne the app's lifespan did
    not run at all (a FastAPI lifespan or Quart's ``before_serving`` never ran).
    """
    app = "serve_apps:lifespan_state_app"
    argv = _serve(server, app)
    with live_server(server, app, command=argv, app_dir=SERVE_APPS_DIR) as srv:
        state = httpx.get(f"{srv.url}/").json()
        os.kill(srv.process.pid, signal.SIGTERM)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    assert status == 0, log
    # The process that started the app serves it and shuts it down (granian's worker).
    assert set(state) == {"started_in"}, log
    assert f"app lifespan shutdown in {state['started_in']}" in log, log


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_asgi_app_is_served_unwrapped(server: str) -> None:
    argv = _serve(server, "serve_apps:asgi_app")
    with live_server(server, "serve_apps:asgi_app", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/some/path")
        banner = srv.wait_for_log(r"serving \S+ on \S+ \(\w+, ([^;]+); detected: ([^)]+)")
    assert response.status_code == 200
    assert response.json()["interface"] == "asgi"
    assert response.json()["path"] == "/some/path"
    assert banner.group(1) == "ASGI app"
    assert banner.group(2) == "async function"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_root_path_becomes_script_name(server: str) -> None:
    argv = _serve(server, "serve_apps:wsgi_app", "--root-path", "/mounted/")
    with live_server(server, "serve_apps:wsgi_app", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/hello")
        srv.wait_for_log(rf"on {srv.url}/mounted \(")
    assert response.status_code == 200
    assert response.json()["SCRIPT_NAME"] == "/mounted"
    assert response.json()["PATH_INFO"] == "/hello"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_each_request_is_logged_at_log_level_info(server: str) -> None:
    """Before, only uvicorn logged requests; hypercorn, granian and daphne logged none."""
    argv = _serve(server, "serve_apps:wsgi_app")
    with live_server(server, "serve_apps:wsgi_app", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/logged/path-{server}")
        line = srv.wait_for_log(rf"GET /logged/path-{server}\b.*")
    assert response.status_code == 200
    assert "200" in line.group(0)


_FORWARDED = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_forwarded_headers_from_a_trusted_proxy_set_client_and_scheme(server: str) -> None:
    """Behind a proxy on 127.0.0.1 (the default --forwarded-allow-ips) every server gives
    the app the forwarded client and scheme. Before, only uvicorn did; hypercorn, granian
    and daphne showed REMOTE_ADDR 127.0.0.1 and http."""
    argv = _serve(server, "serve_apps:wsgi_app")
    with live_server(server, "serve_apps:wsgi_app", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        echoed = httpx.get(f"{srv.url}/hello", headers=_FORWARDED).json()
    assert echoed["REMOTE_ADDR"] == "203.0.113.7"
    assert echoed["url_scheme"] == "https"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_forwarded_headers_from_an_untrusted_peer_are_ignored(server: str) -> None:
    """Before, uvicorn believed X-Forwarded-For from 127.0.0.1 whatever was configured."""
    argv = _serve(server, "serve_apps:wsgi_app", "--forwarded-allow-ips", "10.0.0.0/8")
    with live_server(server, "serve_apps:wsgi_app", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        echoed = httpx.get(f"{srv.url}/hello", headers=_FORWARDED).json()
    assert echoed["REMOTE_ADDR"] == "127.0.0.1"
    assert echoed["url_scheme"] == "http"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_forwarded_allow_ips_defaults_to_the_environment_variable(server: str) -> None:
    """uvicorn's FORWARDED_ALLOW_IPS keeps working, now on every server."""
    argv = _serve(server, "serve_apps:wsgi_app")
    with live_server(
        server,
        "serve_apps:wsgi_app",
        command=argv,
        app_dir=SERVE_APPS_DIR,
        env={"FORWARDED_ALLOW_IPS": "10.0.0.0/8"},
    ) as srv:
        echoed = httpx.get(f"{srv.url}/hello", headers=_FORWARDED).json()
    assert echoed["REMOTE_ADDR"] == "127.0.0.1"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_host_ipv6_any_accepts_ipv4_and_ipv6_clients(server: str) -> None:
    """``--host ::`` listens on both, as on every server; before, uvicorn in one process
    listened on IPv6 only (asyncio's create_server sets IPV6_V6ONLY)."""
    argv = serve_argv("serve_apps:wsgi_app", "--server", server, "--host", "::", "--port", "{port}")
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR, host="::1") as srv:
        port = srv.url.rsplit(":", 1)[1]
        over_ipv6 = httpx.get(f"http://[::1]:{port}/six").json()
        over_ipv4 = httpx.get(
            f"http://127.0.0.1:{port}/four", headers={"X-Forwarded-For": "203.0.113.7"}
        ).json()
    assert over_ipv6["PATH_INFO"] == "/six"
    assert over_ipv4["PATH_INFO"] == "/four"
    # The IPv4 peer (::ffff:127.0.0.1 on a dual-stack socket) is the trusted 127.0.0.1.
    assert over_ipv4["REMOTE_ADDR"] == "203.0.113.7"


@pytest.mark.live
def test_root_path_reaches_asgi_apps_in_the_path() -> None:
    argv = _serve("uvicorn", "serve_apps:asgi_app", "--root-path", "/mounted")
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        echoed = httpx.get(f"{srv.url}/hello").json()
    # ASGI HTTP scope: path includes root_path.
    assert echoed["root_path"] == "/mounted"
    assert echoed["path"] == "/mounted/hello"


@pytest.mark.live
def test_interface_flag_overrides_detection() -> None:
    # wsgiref's validator wrapper takes *args: detection cannot classify it.
    argv = _serve("uvicorn", "serve_apps:validated_only", "--interface", "wsgi")
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/forced")
        banner = srv.wait_for_log(r"detected: ([^)]+)\)")
    assert response.json()["PATH_INFO"] == "/forced"
    assert banner.group(1) == "set by --interface"


@pytest.mark.live
def test_factory_flag_calls_the_factory() -> None:
    argv = _serve("uvicorn", "serve_apps:create_wsgi_app", "--factory")
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/made")
    assert response.json()["interface"] == "wsgi"
    assert response.json()["PATH_INFO"] == "/made"


@pytest.mark.live
@pytest.mark.parametrize(
    "server", [pytest.param(name, id=name) for name in ("uvicorn", "hypercorn", "granian")]
)
def test_workers_rebuild_the_app_in_each_process(server: str) -> None:
    argv = _serve(server, "serve_apps:wsgi_app", "--workers", "2", "--root-path", "/w")
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        srv.wait_for_log(r"2 workers")
        pids: set[int] = set()
        # Each request on a fresh connection; the kernel hands connections to
        # whichever worker accepts first, so poll until both have answered.
        for _ in range(400):
            with httpx.Client() as client:
                echoed = client.get(f"{srv.url}/x").json()
            pids.add(echoed["pid"])
            if len(pids) == 2:
                break
        parent = srv.process.pid
    assert len(pids) == 2
    assert parent not in pids
    # The worker processes rebuilt the whole stack from the settings, root path included.
    assert echoed["SCRIPT_NAME"] == "/w"
    # Two processes serve the app: PEP 3333's wsgi.multiprocess is true.
    assert echoed["multiprocess"] is True


@pytest.mark.live
def test_detect_blocking_reports_a_blocking_call() -> None:
    argv = _serve(
        "uvicorn", "serve_apps:blocking_asgi_app", "--detect-blocking", "--loop-lag-ms", "50"
    )
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/slow")
        banner = srv.wait_for_log(r"blocking detector at (\S+) ms")
        report = srv.wait_for_log(r"(ASH\d+) blocking call (\S+) on the event-loop thread")
    assert response.status_code == 200
    assert banner.group(1) == "50"
    assert report.groups() == ("ASH101", "time.sleep()")


@pytest.mark.live
def test_loop_lag_ms_0_reports_blocking_calls_without_the_lag_monitor() -> None:
    """``--loop-lag-ms 0`` turns the lag monitor off, as ``lag_threshold_ms=0`` does in
    ``BlockingDetectorMiddleware``; the command line refused it (exit status 2)."""
    argv = _serve(
        "uvicorn", "serve_apps:blocking_asgi_app", "--detect-blocking", "--loop-lag-ms", "0"
    )
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        response = httpx.get(f"{srv.url}/slow")
        srv.wait_for_log(r"blocking detector, loop-lag monitor off")
        report = srv.wait_for_log(r"(ASH\d+) blocking call (\S+) on the event-loop thread")
        log = srv.log()
    assert response.status_code == 200
    assert report.groups() == ("ASH101", "time.sleep()")
    assert "event loop held for" not in log, log


_VERSIONED_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{version}"]
"""


@pytest.mark.live
@pytest.mark.parametrize(
    "server", [pytest.param(name, id=name) for name in ("uvicorn", "hypercorn", "granian")]
)
def test_reload_picks_up_changed_code(server: str, tmp_path: Path) -> None:
    module = tmp_path / "versioned.py"
    module.write_text(_VERSIONED_APP.format(version="v1"), encoding="utf-8")
    argv = _serve(server, "versioned:app", "--reload", "--app-dir", str(tmp_path))
    with live_server(server, "", command=argv, app_dir=tmp_path) as srv:
        assert httpx.get(srv.url).text == "v1"
        srv.wait_for_log(r"reload on changes")
        deadline = time.monotonic() + 30
        seen = "v1"
        written_at = 0.0
        delay = 0.01
        # Poll until a restarted worker answers with the new code. The file is
        # rewritten every second: a reloader that was not yet watching when it
        # was first written still sees a later change. Between restarts the
        # port may refuse connections for a moment.
        while seen != "v2" and time.monotonic() < deadline:
            if time.monotonic() - written_at > 1.0:
                module.write_text(_VERSIONED_APP.format(version="v2"), encoding="utf-8")
                written_at = time.monotonic()
            try:
                seen = httpx.get(srv.url).text
            except httpx.TransportError:
                seen = "restarting"
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    assert seen == "v2"


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_python_api_serves_an_app_object(server: str) -> None:
    argv = [sys.executable, str(SERVE_APPS_DIR / "run_api.py"), server, "{port}"]
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        echoed = httpx.get(f"{srv.url}/api").json()
        banner = srv.wait_for_log(r"asgishift.serve asgishift: serving (<[^>]+>) on (\S+) ")
    assert (echoed["interface"], echoed["SCRIPT_NAME"], echoed["PATH_INFO"]) == (
        "wsgi",
        "/py",
        "/api",
    )
    assert banner.groups() == ("<function object>", f"{srv.url}/py")


def test_python_api_frees_granians_objects_before_exit() -> None:
    """``run()`` with an app object on granian leaves no garbage for the exit collection.

    granian 2.8's objects, freed by the collection at interpreter exit, could
    abort the process with a Rust panic (``runasgi --server granian`` did so in
    about one of 30 stops); ``run()`` collects them while the interpreter is whole.
    """
    pytest.importorskip("granian")
    argv = [sys.executable, str(SERVE_APPS_DIR / "run_api.py"), "granian", "{port}"]
    with live_server(
        "granian", "", command=[*argv, "--count-garbage"], app_dir=SERVE_APPS_DIR
    ) as srv:
        assert httpx.get(f"{srv.url}/api").json()["PATH_INFO"] == "/api"
        os.killpg(srv.process.pid, signal.SIGTERM)
        status = srv.process.wait(timeout=20)
        left = srv.wait_for_log(r"garbage left after run\(\): (\d+)")
    assert (status, int(left.group(1))) == (0, 0), srv.log()


@pytest.mark.live
def test_bridge_flags_reach_the_bridge_in_every_worker() -> None:
    # --workers 2 sends the whole ServeConfig to the worker processes through
    # the environment: the bridge options and the mount must survive it.
    argv = _serve(
        "uvicorn",
        "serve_apps:wsgi_app",
        "--workers",
        "2",
        "--max-body-size",
        "10",
        "--mount",
        "/asgi=serve_apps:asgi_app",
    )
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        srv.wait_for_log(r"2 workers")
        statuses = set()
        mounted = set()
        for _ in range(20):
            with httpx.Client() as client:
                statuses.add(client.post(f"{srv.url}/upload", content=b"x" * 100).status_code)
                small = client.post(f"{srv.url}/upload", content=b"x" * 5).json()
                mounted.add(client.get(f"{srv.url}/asgi/y").json()["root_path"])
    assert statuses == {413}
    assert small["interface"] == "wsgi"
    assert mounted == {"/asgi"}


_BROKEN_APP = "def app(environ, start_response)\n    return []\n"


@pytest.mark.live
@pytest.mark.parametrize(
    "server", [pytest.param(name, id=name) for name in ("uvicorn", "hypercorn", "granian")]
)
def test_reload_shows_a_syntax_error_and_recovers_when_fixed(server: str, tmp_path: Path) -> None:
    """An edit that breaks the app answers 500 naming the error; fixing it serves again.

    Before, hypercorn and granian stopped ``asgishift serve`` altogether (hypercorn with
    status 0) and uvicorn refused connections until the fix.
    """
    module = tmp_path / "versioned.py"
    module.write_text(_VERSIONED_APP.format(version="v1"), encoding="utf-8")
    argv = _serve(server, "versioned:app", "--reload", "--app-dir", str(tmp_path))

    def poll_until(wanted: Callable[[httpx.Response], bool], source: str) -> httpx.Response:
        deadline = time.monotonic() + 30
        written_at = 0.0
        while time.monotonic() < deadline:
            assert srv.process.poll() is None, srv.log()
            # Rewritten every second: a reloader not yet watching sees a later change.
            if time.monotonic() - written_at > 1.0:
                module.write_text(source, encoding="utf-8")
                written_at = time.monotonic()
            try:
                response = httpx.get(srv.url)
            except httpx.TransportError:
                continue
            if wanted(response):
                return response
            time.sleep(0.1)
        raise AssertionError(f"no such response in 30 s:\n{srv.log()}")

    with live_server(server, "", command=argv, app_dir=tmp_path) as srv:
        assert httpx.get(srv.url).text == "v1"
        broken = poll_until(lambda r: r.status_code == 500, _BROKEN_APP)
        fixed = poll_until(lambda r: r.text == "v2", _VERSIONED_APP.format(version="v2"))
    assert "SyntaxError" in broken.text
    assert "versioned.py" in broken.text
    assert fixed.status_code == 200
