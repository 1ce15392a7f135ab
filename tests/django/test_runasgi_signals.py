"""``runasgi``'s SIGINT/SIGTERM hand-off, in a child process with no server running.

The live tests (``test_runasgi_live.py``, ``test_runasgi_flags_live.py``) stop a
serving ``runasgi`` with SIGTERM. This covers the other case: a signal that
arrives while no server runs (system checks, between reloads) must still end
the process, with status 0, from the main thread, whatever it was doing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("django")

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=["django.contrib.staticfiles"], STATIC_URL="/static/")
    django.setup()
    from asgishift.django_integration.management.commands.runasgi import Command

    command = Command()
    command._install_signal_handlers()
    print("ready", flush=True)
    lock = threading.Lock()
    try:
        while True:  # the main thread busy in lock-taking code, as when it joins a thread
            with lock:
                time.sleep(0.001)
    except SystemExit as exc:
        print("exit", exc.code, "signal thread done:", command._signal_done.is_set(), flush=True)
        raise
    """
)


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_with_no_server_running_ends_the_process_with_status_0(signum: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.Signals[signum])
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert "exit 0 signal thread done: True" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("hide", ["true", None])
def test_banner_warning_follows_django_runserver_hide_warning(
    monkeypatch: pytest.MonkeyPatch, hide: str | None
) -> None:
    """``DJANGO_RUNSERVER_HIDE_WARNING=true`` (Django 5.2's runserver) hides the
    development-server warning under runasgi too; before, runasgi always printed it."""
    from io import StringIO

    from asgishift.django_integration.management.commands.runasgi import Command

    if hide is None:
        monkeypatch.delenv("DJANGO_RUNSERVER_HIDE_WARNING", raising=False)
    else:
        monkeypatch.setenv("DJANGO_RUNSERVER_HIDE_WARNING", hide)
    out = StringIO()
    command = Command(stdout=out, no_color=True)
    command.addr, command.port, command._raw_ipv6 = "127.0.0.1", "8000", False
    command._banner("uvicorn", "asgishift's Django handler")
    text = out.getvalue()
    assert "Starting ASGI development server (uvicorn;" in text
    assert ("This is a development server" in text) is (hide is None)
