"""``manage.py runasgi`` run as a user runs it: a subprocess on each of the four servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from django_sample_project import (
    child_env,
    copy_project,
    make_template,
    runasgi_command,
    stop_gracefully,
)

from live import ASGI_SERVER_PARAMS, free_port, live_server, wait_for

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path)


def page_says(url: str, text: str) -> bool:
    try:
        return text in httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_pages_static_reload_and_shutdown(server: str, project: Path) -> None:
    css = (project / "shelf" / "static" / "shelf" / "style.css").read_bytes()
    with live_server(
        server, "", command=runasgi_command(server), app_dir=project, env=child_env(), timeout=60
    ) as live:
        page = httpx.get(live.url + "/", timeout=10)
        assert page.status_code == 200
        assert "Welcome to the shelf" in page.text
        assert "/static/shelf/style.css" in page.text

        static = httpx.get(live.url + "/static/shelf/style.css", timeout=10)
        assert (static.status_code, static.content) == (200, css)
        assert static.headers["content-type"].startswith("text/css")
        partial = httpx.get(
            live.url + "/static/shelf/style.css", headers={"Range": "bytes=3-9"}, timeout=10
        )
        assert (partial.status_code, partial.content) == (206, css[3:10])
        assert partial.headers["content-range"] == f"bytes 3-9/{len(css)}"
        later = formatdate(usegmt=True)
        cached = httpx.get(
            live.url + "/static/shelf/style.css",
            headers={"If-Modified-Since": later},
            timeout=10,
        )
        assert (cached.status_code, cached.content) == (304, b"")
        escape = httpx.get(live.url + "/static/%2e%2e/%2e%2e/mysite/settings.py", timeout=10)
        assert escape.status_code == 404
        missing = httpx.get(live.url + "/static/shelf/missing.css", timeout=10)
        # runserver's debug 404 page, not a plain-text "Not Found"
        assert (missing.status_code, missing.headers["content-type"]) == (
            404,
            "text/html; charset=utf-8",
        )
        assert "&#x27;shelf/missing.css&#x27; could not be found" in missing.text

        state = httpx.get(live.url + "/async-count/", timeout=10).json()
        assert state["books"] == 0
        assert state["started_at"]  # set by the lifespan hook, seen as request.state
        ticks = httpx.get(live.url + "/ticks/", timeout=10)
        assert ticks.text == "".join(f"tick {n}\n" for n in range(5))

        views = project / "shelf" / "views.py"
        views.write_text(views.read_text().replace("Welcome to the shelf", "Edited shelf"))
        wait_for(lambda: page_says(live.url + "/", "Edited shelf"), 45, "the reloaded page")
        live.wait_for_log(rf"views\.py changed; stopping {server} gracefully", 5)
        live.wait_for_log(r"lifespan shutdown complete[\s\S]*lifespan startup complete", 5)

        assert stop_gracefully(live) == 0
        log = live.log()
    assert f"received SIGTERM; stopping {server} gracefully" in log
    assert log.count("sample lifespan: stopped") == 2  # at the reload and at the end
    assert log.rstrip().endswith(f"{server} stopped.")
    assert "Traceback" not in log


def test_template_edit_is_served_without_a_restart(project: Path) -> None:
    """As under runserver, a template edit is picked up in place (Django's template
    receiver of ``file_changed`` resets the loaders, and the reloader then does not
    restart). Before, runasgi stopped its server for every changed file, so after a
    template edit the server was gone and nothing restarted it: connection refused until
    a Python file changed."""
    template = project / "shelf" / "templates" / "shelf" / "index.html"
    original = template.read_text()
    with live_server(
        "uvicorn", "", command=runasgi_command("uvicorn"), app_dir=project, env=child_env()
    ) as live:
        assert page_says(live.url + "/", "Welcome to the shelf")
        written = [0.0]

        def edit_served() -> bool:
            if page_says(live.url + "/", "Edited template"):
                return True
            # The reloader may take its first snapshot of file times after a write.
            if time.monotonic() - written[0] > 4:
                template.write_text(original + "<p>Edited template</p>\n")
                written[0] = time.monotonic()
            return False

        wait_for(edit_served, 30, "the edited template")
        assert page_says(live.url + "/count/", "books")
        log = live.log()
        assert stop_gracefully(live) == 0
    assert "index.html changed; stopping" not in log
    assert log.count("Starting ASGI development server") == 1


def test_syntax_error_is_shown_and_the_fix_is_picked_up(project: Path) -> None:
    views = project / "shelf" / "views.py"
    good = views.read_text()
    with live_server(
        "hypercorn",
        "",
        command=runasgi_command("hypercorn"),
        app_dir=project,
        env=child_env(),
        timeout=60,
    ) as live:
        written = [0.0]

        def syntax_error_shown() -> bool:
            if "SyntaxError" in live.log():
                return True
            # The reloader may take its first snapshot of views.py's time after the
            # write (the URLconf imports views.py once the server runs), and miss it:
            # write again every few seconds (failed once in CI).
            if time.monotonic() - written[0] > 4:
                views.write_text(good + "\ndef broken(:\n")
                written[0] = time.monotonic()
            return False

        wait_for(syntax_error_shown, 45, "the SyntaxError in the log")
        fixed = good.replace("Welcome to the shelf", "Fixed shelf")
        written[0] = 0.0

        def fixed_page_served() -> bool:
            if page_says(live.url + "/", "Fixed shelf"):
                return True
            # The restarted reloader may take its first snapshot of file times
            # after a write, and miss it: write again every few seconds.
            if time.monotonic() - written[0] > 4:
                views.write_text(fixed)
                written[0] = time.monotonic()
            return False

        wait_for(fixed_page_served, 45, "the fixed page")
        assert stop_gracefully(live) == 0


def test_port_in_use_is_a_clear_error_and_nonzero_exit(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "runasgi", f"127.0.0.1:{port}", "--noreload"],
            cwd=project,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_port_zero_is_refused_in_runasgi_terms(project: Path) -> None:
    """runserver takes port 0 (any free port); runasgi cannot, and says so with its own
    argument; before, the refusal named ``--port``, a flag of ``asgishift serve`` that
    runasgi lacks, after the system checks had run."""
    result = subprocess.run(
        [sys.executable, "manage.py", "runasgi", "127.0.0.1:0", "--noreload"],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "runasgi needs a port from 1 to 65535, got 0" in result.stderr
    assert "--port" not in result.stderr
    assert "Performing system checks" not in result.stdout


@pytest.mark.parametrize("reload", [False, True], ids=["noreload", "reload"])
def test_address_not_on_this_machine_is_runasgi_error_and_exit_1(
    project: Path, reload: bool
) -> None:
    """As runserver: an address this machine does not have ends the command with status 1
    and a fix in runasgi's terms; before, the message told to pass ``--host`` (a flag of
    ``asgishift serve`` that runasgi lacks) and, under the reloader, runasgi kept waiting
    for a file change."""
    address = "192.0.2.1"  # TEST-NET-1 (RFC 5737): on no machine
    port = free_port()
    command = [sys.executable, "manage.py", "runasgi", f"{address}:{port}"]
    result = subprocess.run(
        command if reload else [*command, "--noreload"],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot listen on {address}:{port}" in result.stderr
    assert f"manage.py runasgi 127.0.0.1:{port}" in result.stderr
    assert "--host" not in result.stderr


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])  # daphne: asgishift drives lifespan
def test_failing_startup_hook_fails_startup(project: Path, server: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "runasgi",
            f"127.0.0.1:{free_port()}",
            "--noreload",
            "--server",
            server,
        ],
        cwd=project,
        env=child_env({"SAMPLE_FAIL_STARTUP": "1"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "sample startup failure" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("server", "args", "env", "banner"),
    [
        pytest.param(
            "daphne", ["--wsgi"], {}, "WSGI_APPLICATION through WSGIToASGI", id="wsgi-daphne"
        ),
        pytest.param(
            "granian",
            [],
            {"SAMPLE_ASGI_APPLICATION": "1"},
            "ASGI_APPLICATION mysite.asgi.application",
            id="asgi-application-granian",
        ),
    ],
)
def test_wsgi_flag_and_asgi_application_setting(
    server: str, args: list[str], env: dict[str, str], banner: str, project: Path
) -> None:
    command = runasgi_command(server, "--noreload", "--max-threads", "3", *args)
    with live_server(server, "", command=command, app_dir=project, env=child_env(env)) as live:
        assert httpx.get(live.url + "/count/", timeout=10).json() == {"books": 0}
        live.wait_for_log(banner, 10)
        assert stop_gracefully(live) == 0


def test_a_server_not_installed_stops_at_once_even_under_the_reloader(
    project: Path, tmp_path: Path
) -> None:
    # A granian package that cannot be imported, as in a venv without it.
    (tmp_path / "granian").mkdir()
    (tmp_path / "granian" / "__init__.py").write_text("raise ImportError('not here')\n")
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    result = subprocess.run(
        [sys.executable, "manage.py", "runasgi", f"127.0.0.1:{free_port()}", "--server",
         "granian", "--nothreading"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "pip install 'asgishift[granian]'" in result.stderr
    assert "Waiting for a file change" not in result.stdout + result.stderr
    assert "Warning: --nothreading has no effect under runasgi" in result.stderr


def test_unknown_server_names_the_choices(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "runasgi", "--server", "tornado", "--noreload"],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "uvicorn" in result.stderr
    assert "granian" in result.stderr
