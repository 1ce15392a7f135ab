"""``manage.py runasgi --shutdown-timeout``: a request in flight at SIGTERM, on every server.

The sample project is served with a ``/slow/`` view added (an ``async def`` view
that prints ``slow view started`` and answers after ``?seconds=`` seconds). Once
the view has started, the test sends SIGTERM: with a timeout longer than the view
the response arrives whole and the server exits with status 0; with a shorter one
the request is cut (no complete response) and the server exits long before the
view would have answered. Before ``--shutdown-timeout`` existed, runasgi rejected
the flag, and its embedded servers used their own limits (none for uvicorn and
granian, 3 s for hypercorn).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django_sample_project import child_env, make_template, runasgi_command, stop_gracefully

from live import ASGI_SERVERS, live_server

pytestmark = pytest.mark.live

SLOW_SETTINGS = """
from mysite.settings import *  # noqa: F403

ROOT_URLCONF = "slow_urls"
"""

SLOW_URLS = """
import asyncio

from django.http import HttpResponse
from django.urls import include, path


async def slow(request):
    print("slow view started", flush=True)
    seconds = float(request.GET["seconds"])
    await asyncio.sleep(seconds)
    return HttpResponse(f"answered after {seconds:g} s")


urlpatterns = [path("slow/", slow), path("", include("mysite.urls"))]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated sample project with ``slow_settings`` and ``slow_urls`` beside it."""
    project = make_template(tmp_path_factory.mktemp("shutdown"))
    (project / "slow_settings.py").write_text(SLOW_SETTINGS)
    (project / "slow_urls.py").write_text(SLOW_URLS)
    return project


def request_in_background(url: str, outcome: dict[str, object]) -> threading.Thread:
    """GET ``url`` on a thread; ``outcome`` gets ``"status"`` and ``"body"``, or ``"error"``."""

    def get() -> None:
        try:
            response = httpx.get(url, timeout=httpx.Timeout(10, read=120))
            outcome.update(status=response.status_code, body=response.text)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("timeout", "view_seconds", "finishes"),
    [pytest.param("30", 1, True, id="finishes"), pytest.param("1", 600, False, id="cut")],
)
@pytest.mark.parametrize("server", ASGI_SERVERS)
def test_request_in_flight_at_sigterm(
    server: str,
    project: Path,
    timeout: str,
    view_seconds: int,
    finishes: bool,
    request: pytest.FixtureRequest,
) -> None:
    command = runasgi_command(server, "--noreload", "--settings", "slow_settings")
    command += ["--shutdown-timeout", timeout]
    with live_server(server, "", command=command, app_dir=project, env=child_env()) as live:
        outcome: dict[str, object] = {}
        client = request_in_background(f"{live.url}/slow/?seconds={view_seconds}", outcome)
        live.wait_for_log("slow view started", 10)
        os.killpg(live.process.pid, signal.SIGTERM)
        # The cut case's deadline is far below the view's 600 s: the process ends
        # because the timeout cut the request, not because the view answered.
        status = live.process.wait(60)
        client.join(30)
        log = live.log()
    assert status == 0, log
    assert not client.is_alive()
    if finishes:
        assert outcome == {"status": 200, "body": f"answered after {view_seconds} s"}, log
    else:
        assert "body" not in outcome or outcome["body"] != f"answered after {view_seconds} s"
        assert outcome.get("status") != 200, (outcome, log)


@pytest.mark.parametrize("reload", [False, True], ids=["noreload", "reload"])
def test_second_ctrl_c_exits_at_once(project: Path, reload: bool) -> None:
    """Ctrl+C while a request is in flight stops gracefully (up to --shutdown-timeout,
    30 s here); a second Ctrl+C exits at once with status 1, as uvicorn does on its own
    and as runserver does at the first. Before, later signals changed nothing and the
    developer waited the whole timeout (an open EventSource tab, a long poll)."""
    command = runasgi_command("uvicorn", "--settings", "slow_settings")
    if not reload:
        command.append("--noreload")
    with live_server("uvicorn", "", command=command, app_dir=project, env=child_env()) as live:
        outcome: dict[str, object] = {}
        client = request_in_background(f"{live.url}/slow/?seconds=600", outcome)
        live.wait_for_log("slow view started", 30)
        os.killpg(live.process.pid, signal.SIGINT)
        live.wait_for_log("received SIGINT; stopping uvicorn gracefully", 10)
        assert live.process.poll() is None  # the graceful stop waits for the request
        os.killpg(live.process.pid, signal.SIGINT)
        # Far below the 30 s the graceful stop would wait.
        status = live.process.wait(15)
        client.join(30)
        log = live.log()
    assert status == 1, log
    assert "received SIGINT again; exiting at once" in log
    assert "status" not in outcome, outcome


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_file_change_does_not_wait_for_an_endless_request(project: Path, server: str) -> None:
    """A file change while a request runs on (an EventSource stream such as
    django-browser-reload's, a long poll) restarts within RELOAD_GRACE (3 s), not after
    --shutdown-timeout (30 s by default); before, every edit made the developer wait 30 s
    for the new code while a browser tab held a stream open."""
    command = runasgi_command(server, "--settings", "slow_settings")
    with live_server(server, "", command=command, app_dir=project, env=child_env()) as live:
        outcome: dict[str, object] = {}
        client = request_in_background(f"{live.url}/slow/?seconds=600", outcome)
        live.wait_for_log("slow view started", 30)
        urls = project / "slow_urls.py"

        def reload_began() -> bool:
            # Touch again until the reloader sees it (its first snapshot may be later).
            urls.touch()
            return "slow_urls.py changed; stopping" in live.log()

        deadline = time.monotonic() + 30
        while not reload_began():
            assert time.monotonic() < deadline, live.log()
            time.sleep(0.5)
        # Far below the 30 s the old process would have waited for the request.
        live.wait_for_log(r"(?s)changed; stopping.*Starting ASGI development server", 20)
        page = httpx.get(f"{live.url}/count/", timeout=10)
        assert page.status_code == 200
        client.join(30)
        assert "status" not in outcome, outcome
        log = live.log()
        assert stop_gracefully(live) == 0
    assert "the server did not stop within 3 s (requests still running" in log


def test_help_and_bad_value_come_from_serve_declaration(project: Path) -> None:
    """``runasgi --help`` shows serve's help for the flag; a bad value is refused with
    serve's message, before any server starts."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "runasgi", *args],
            cwd=project,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    help_text = " ".join(run("--help").stdout.split())
    assert "--shutdown-timeout SECONDS|none" in help_text
    assert "the ASGI lifespan shutdown waits for running requests" in help_text
    assert "(default: 30.0)" in help_text
    refused = run("--noreload", "--shutdown-timeout", "-1")
    assert refused.returncode == 2
    assert "--shutdown-timeout" in refused.stderr
    assert "Starting ASGI development server" not in refused.stdout
