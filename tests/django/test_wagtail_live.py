"""A real third-party project, Wagtail's ``wagtail start`` template (no asgi.py), under
``runasgi`` on each server, driven as a person uses it."""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django_sample_project import child_env, runasgi_command, stop_gracefully

from live import ASGI_SERVER_PARAMS, live_server

pytest.importorskip("wagtail")

pytestmark = [pytest.mark.live, pytest.mark.slow]

PASSWORD = "pw-for-tests"


def run(project: Path, *argv: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [*argv], cwd=project, env=child_env(env), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``wagtail start``, asgishift added to INSTALLED_APPS, migrated, one superuser.

    Built once per session: xdist workers share it through a lock file in the
    session's common temporary directory (migrating Wagtail takes ~40 s).
    """
    shared = tmp_path_factory.getbasetemp().parent
    with (shared / "wagtail-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        project = shared / "wagtail-template"
        if not (project / "ready").exists():
            shutil.rmtree(project, ignore_errors=True)
            project.mkdir()
            build_template(project)
            (project / "ready").write_text("")
        fcntl.flock(lock, fcntl.LOCK_UN)
    return project


def build_template(project: Path) -> None:
    wagtail = Path(sys.executable).with_name("wagtail")
    run(project, str(wagtail), "start", "mysite", ".")
    assert not (project / "mysite" / "asgi.py").exists()  # the template has none
    base = project / "mysite" / "settings" / "base.py"
    base.write_text(
        base.read_text().replace(
            "INSTALLED_APPS = [\n", 'INSTALLED_APPS = [\n    "asgishift.django_integration",\n', 1
        )
    )
    run(project, sys.executable, "manage.py", "migrate", "-v", "0")
    run(
        project,
        sys.executable,
        "manage.py",
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
    )


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_wagtail_admin_under_runasgi(server: str, template: Path, tmp_path: Path) -> None:
    project = tmp_path / "site"
    shutil.copytree(template, project)
    command = runasgi_command(server, "--noreload")
    with (
        live_server(
            server, "", command=command, app_dir=project, env=child_env(), timeout=90
        ) as live,
        httpx.Client(base_url=live.url, timeout=20) as client,
    ):
        assert client.get("/").status_code == 200  # the welcome page
        assert client.get("/no-such-page/").status_code == 404
        css = client.get("/static/wagtailadmin/css/core.css")
        assert css.status_code == 200
        assert len(css.content) > 1000

        login = client.get("/admin/login/")
        assert login.status_code == 200
        signed_in = client.post(
            "/admin/login/",
            data={
                "csrfmiddlewaretoken": csrf_token(login.text),
                "username": "admin",
                "password": PASSWORD,
                "next": "/admin/",
            },
            headers={"Referer": live.url + "/admin/login/"},
        )
        assert (signed_in.status_code, signed_in.headers["location"]) == (302, "/admin/")
        dashboard = client.get("/admin/")
        assert dashboard.status_code == 200
        assert "Dashboard" in dashboard.text

        name = f"Shelf made on {server}"
        form = client.get("/admin/collections/add/")
        created = client.post(
            "/admin/collections/add/",
            data={"csrfmiddlewaretoken": csrf_token(form.text), "name": name, "parent": "1"},
            headers={"Referer": live.url + "/admin/collections/add/"},
        )
        assert created.status_code == 302, created.text[:2000]
        assert name in client.get("/admin/collections/").text
        assert stop_gracefully(live) == 0
        assert "lifespan shutdown complete" in live.log()
