"""``runasgi``'s SIGINT/SIGTERM/SIGHUP hand-off, in a child process with no server running.

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


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT", "SIGHUP"])
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


def test_address_fix_names_runasgi_arguments() -> None:
    """The message for an address runasgi cannot bind names runasgi's argument that fixes
    it: a port of 1024 or above for EACCES, an address of this machine otherwise."""
    import errno

    from asgishift.django_integration.management.commands.runasgi import _address_fix
    from asgishift.serve._errors import AddressUnavailableError

    def fix(host: str, port: int, code: int, reason: str) -> str:
        return _address_fix(AddressUnavailableError("", host, port, OSError(code, reason)))

    denied = fix("0.0.0.0", 80, errno.EACCES, "Permission denied")
    assert denied == (
        "cannot listen on 0.0.0.0:80 (Permission denied); choose a port of 1024 or above, "
        "e.g. manage.py runasgi 0.0.0.0:8000"
    )
    elsewhere = fix("2001:db8::1", 8000, errno.EADDRNOTAVAIL, "Cannot assign requested address")
    assert elsewhere.startswith("cannot listen on [2001:db8::1]:8000 (Cannot assign")
    assert elsewhere.endswith("e.g. manage.py runasgi [::1]:8000")
