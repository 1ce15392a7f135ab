"""``manage.py runasgi`` and SIGHUP (a closed terminal, ``kill -HUP``), as ``asgishift serve``.

SIGHUP stops the server as SIGTERM does: requests in flight finish, the
sample project's ``ASGISHIFT_LIFESPAN`` hook logs ``sample lifespan: stopped``
and the command exits with status 0, nothing left holding the port. Before,
runasgi had no handler for it: with ``--noreload`` the process was killed by
the signal (status 129 in a shell) with no lifespan shutdown; under the autoreloader ``kill -HUP``
of the command killed the reloading parent only, and its child, orphaned, went
on serving the port.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import httpx
import pytest
from django_sample_project import child_env, make_template, runasgi_command, stop_gracefully

from live import ASGI_SERVERS, LiveServer, live_server, wait_for

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("sighup"))


def group_gone(live: LiveServer) -> bool:
    """Whether no process is left in the server's process group (its session)."""
    try:
        os.killpg(live.process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def stopped_on_sighup(live: LiveServer, send: str) -> tuple[int, str]:
    """Send SIGHUP to the command (``send="process"``) or its process group
    (``"group"``, as a closing terminal does); return its exit status and log, once
    the whole group has ended. Kills what is left of the group on the way out."""
    try:
        assert httpx.get(f"{live.url}/count/", timeout=10).status_code == 200
        status = stop_gracefully(live, signum=signal.SIGHUP, group=send == "group")
        wait_for(lambda: group_gone(live), 30, "every process of runasgi to end")
        return status, live.log()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(live.process.pid, signal.SIGKILL)  # an orphan left serving


@pytest.mark.parametrize("server", ASGI_SERVERS)
def test_sighup_stops_noreload_gracefully(server: str, project: Path) -> None:
    command = runasgi_command(server, "--noreload")
    with live_server(server, "", command=command, app_dir=project, env=child_env()) as live:
        status, log = stopped_on_sighup(live, "process")
    assert status == 0, log
    assert f"received SIGHUP; stopping {server} gracefully" in log
    assert log.count("sample lifespan: stopped") == 1, log
    assert log.rstrip().endswith(f"{server} stopped."), log


@pytest.mark.parametrize("send", ["process", "group"])
@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_sighup_stops_the_reloader_and_its_child(server: str, send: str, project: Path) -> None:
    """``kill -HUP`` of the command (the reloading parent) or a closing terminal's SIGHUP
    to the whole group: the serving child stops gracefully and the parent exits with it."""
    command = runasgi_command(server)
    with live_server(server, "", command=command, app_dir=project, env=child_env()) as live:
        status, log = stopped_on_sighup(live, send)
    assert status == 0, log
    assert f"received SIGHUP; stopping {server} gracefully" in log
    assert log.count("sample lifespan: stopped") == 1, log
