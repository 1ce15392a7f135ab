"""``asgishift serve`` stopping on SIGTERM: its exit status, and streams held open."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from serve_helpers import SERVE_APPS_DIR, serve_argv

from live import ASGI_SERVER_PARAMS, LiveServer, live_server, wait_for

#: The ``--shutdown-timeout`` the tests pass (seconds); above hypercorn's own 3 s.
SHUTDOWN_TIMEOUT = 4.0
#: Seconds past the timeout a server may take to close streams, run the lifespan and exit.
SLACK = 6.0


def _stop_during_stream(srv: LiveServer, ctrl_c: bool = False) -> tuple[float, float]:
    """Send SIGTERM (``ctrl_c``: SIGINT to the process group, as a terminal does) while an
    endless stream is read; return when it closed and the process exited, in seconds
    after the signal.

    :raise AssertionError: when the stream stays open or the process runs past
        ``SHUTDOWN_TIMEOUT + SLACK`` seconds.
    """
    limit = SHUTDOWN_TIMEOUT + SLACK
    with httpx.stream("GET", f"{srv.url}/events", timeout=10.0) as response:
        chunks = response.iter_raw()
        assert next(chunks).startswith(b"data: tick")
        if ctrl_c:
            os.killpg(srv.process.pid, signal.SIGINT)
        else:
            os.kill(srv.process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        try:
            for _ in chunks:
                if time.monotonic() - signalled > limit:
                    raise AssertionError(
                        f"stream still open {limit:g} s after {'Ctrl+C' if ctrl_c else 'SIGTERM'}"
                    )
        except httpx.TransportError:
            pass  # closed mid-body: the expected end of an endless stream
        closed = time.monotonic() - signalled
    wait_for(lambda: srv.process.poll() is not None, limit - closed, "the server to exit")
    return closed, time.monotonic() - signalled


@pytest.mark.live
@pytest.mark.parametrize(
    ("server", "lifespan_runs"),
    [
        pytest.param("uvicorn", True, id="uvicorn"),
        pytest.param("hypercorn", True, id="hypercorn"),
        # granian has no timeout for open connections: it kills the worker.
        pytest.param("granian", False, id="granian"),
    ],
)
def test_shutdown_timeout_closes_open_streams(server: str, lifespan_runs: bool) -> None:
    argv = serve_argv(
        "serve_apps:endless_events",
        "--server",
        server,
        "--port",
        "{port}",
        "--shutdown-timeout",
        f"{SHUTDOWN_TIMEOUT:g}",
        "--on-shutdown",
        "serve_apps:report_shutdown",
    )
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        closed, exited = _stop_during_stream(srv)
        log = srv.log()
    # Not before the timeout (hypercorn's own is 3 s), and not long after it.
    assert closed > SHUTDOWN_TIMEOUT - 0.5, log
    assert exited < SHUTDOWN_TIMEOUT + SLACK, log
    assert ("on-shutdown hook ran" in log) is lifespan_runs, log
    assert srv.process.returncode == 0, log


#: ``asgishift.serve.run`` with the app object itself, not an import string: granian then
#: runs its embedded server in this process (no worker to kill).
_RUN_APP_OBJECT = """
import sys
from asgishift.bridge import BridgeOptions
from asgishift.serve import ServeConfig, run
from serve_apps import endless_events, report_shutdown
run(ServeConfig(app=endless_events, server="granian", port=int(sys.argv[1]),
    on_shutdown=(report_shutdown,), bridge=BridgeOptions(shutdown_timeout={timeout})))
"""


@pytest.mark.live
def test_granian_run_with_an_app_object_bounds_open_streams() -> None:
    script = _RUN_APP_OBJECT.format(timeout=SHUTDOWN_TIMEOUT)
    argv = [sys.executable, "-c", script, "{port}"]
    with live_server("granian", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        closed, exited = _stop_during_stream(srv)
        log = srv.log()
    assert closed > SHUTDOWN_TIMEOUT - 0.5, log
    assert exited < SHUTDOWN_TIMEOUT + SLACK, log
    assert "on-shutdown hook ran" in log, log
    assert srv.process.returncode == 0, log


@pytest.mark.live
def test_daphne_closes_open_streams_at_once() -> None:
    argv = serve_argv(
        "serve_apps:endless_events",
        "--server",
        "daphne",
        "--port",
        "{port}",
        "--shutdown-timeout",
        f"{SHUTDOWN_TIMEOUT:g}",
        "--on-shutdown",
        "serve_apps:report_shutdown",
    )
    with live_server("daphne", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        closed, exited = _stop_during_stream(srv)
        log = srv.log()
    # daphne has no graceful shutdown: what docs/serve.md says.
    assert closed < SHUTDOWN_TIMEOUT - 1
    assert exited < SHUTDOWN_TIMEOUT
    # asgishift runs the lifespan daphne lacks: the shutdown hook still runs.
    assert "on-shutdown hook ran" in log, log
    assert srv.process.returncode == 0, log


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_sigterm_stops_with_status_0(server: str) -> None:
    argv = serve_argv("serve_apps:wsgi_app", "--server", server, "--port", "{port}")
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        assert httpx.get(f"{srv.url}/up").status_code == 200
        os.kill(srv.process.pid, signal.SIGTERM)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    assert status == 0, log


@pytest.mark.live
def test_hypercorn_workers_each_finish_their_lifespan_on_sigterm() -> None:
    """Every hypercorn worker runs its lifespan shutdown, also one holding a stream open.

    hypercorn's parent process terminates (SIGTERM) the workers still running as soon as
    one worker has stopped; a worker had no handler for it, so it died at once, without
    its ``--on-shutdown`` hooks and dropping its requests before ``--shutdown-timeout``.
    """
    argv = serve_argv(
        "serve_apps:endless_events",
        "--server",
        "hypercorn",
        "--port",
        "{port}",
        "--workers",
        "2",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
        "--on-startup",
        "serve_apps:report_pid_startup",
        "--on-shutdown",
        "serve_apps:report_pid_shutdown",
    )
    with live_server("hypercorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        wait_for(
            lambda: len(re.findall(r"startup hook ran in (\d+)", srv.log())) == 2,
            20,
            "both workers to start",
        )
        closed, _ = _stop_during_stream(srv)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    started = sorted(re.findall(r"startup hook ran in (\d+)", log))
    stopped = sorted(re.findall(r"shutdown hook ran in (\d+)", log))
    assert (status, stopped) == (0, started), log
    # The stream was held until the timeout, not dropped when the idle worker stopped.
    assert closed >= SHUTDOWN_TIMEOUT - 1, log


@pytest.mark.live
def test_hypercorn_reload_ctrl_c_bounds_an_open_stream() -> None:
    """Ctrl+C (SIGINT to the whole process group) under ``--reload`` on hypercorn closes an
    open stream after ``--shutdown-timeout`` and runs the worker's lifespan shutdown.

    On Python 3.12.1 and later hypercorn's own ``graceful_timeout`` never starts while a
    connection is open (see ``serve/_cutoff.py``), so its reload worker kept serving the
    stream and the command never ended.
    """
    argv = serve_argv(
        "serve_apps:endless_events",
        "--server",
        "hypercorn",
        "--port",
        "{port}",
        "--reload",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
        "--on-shutdown",
        "serve_apps:report_pid_shutdown",
    )
    with live_server("hypercorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        _stop_during_stream(srv, ctrl_c=True)
        log = srv.log()
    assert srv.process.returncode == 0, log
    assert "shutdown hook ran in" in log, log


def _pid_hooks() -> list[str]:
    return [
        "--on-startup",
        "serve_apps:report_pid_startup",
        "--on-shutdown",
        "serve_apps:report_pid_shutdown",
    ]


def _started(log: str) -> list[str]:
    return re.findall(r"startup hook ran in (\d+)", log)


def _stopped(log: str) -> list[str]:
    return re.findall(r"shutdown hook ran in (\d+)", log)


@pytest.mark.live
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "daphne"])
def test_sighup_stops_a_single_process_gracefully(server: str) -> None:
    """SIGHUP (a closed terminal, ``kill -HUP``) stops one serving process as SIGTERM does.

    Before, uvicorn, hypercorn and daphne had no handler for it: the process died at once
    with status 129, without its lifespan shutdown (``--on-shutdown`` hooks did not run).
    """
    argv = serve_argv("serve_apps:wsgi_app", "--server", server, "--port", "{port}", *_pid_hooks())
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        assert httpx.get(f"{srv.url}/up").status_code == 200
        os.kill(srv.process.pid, signal.SIGHUP)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    assert status == 0, log
    assert "SIGHUP received: stopping gracefully" in log, log
    assert _stopped(log) == _started(log) == [str(srv.process.pid)], log


@pytest.mark.live
def test_sighup_stops_granian_run_with_an_app_object() -> None:
    """granian's embedded server (``run()`` given the app object) stops gracefully on SIGHUP."""
    script = _RUN_APP_OBJECT.format(timeout=SHUTDOWN_TIMEOUT)
    argv = [sys.executable, "-c", script, "{port}"]
    with live_server("granian", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        os.kill(srv.process.pid, signal.SIGHUP)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    assert status == 0, log
    assert "on-shutdown hook ran" in log, log


@pytest.mark.live
@pytest.mark.parametrize(
    ("server", "mode", "restarts"),
    [
        pytest.param("uvicorn", "--reload", False, id="uvicorn-reload"),
        pytest.param("uvicorn", "--workers", True, id="uvicorn-workers"),
        pytest.param("hypercorn", "--workers", True, id="hypercorn-workers"),
        pytest.param("hypercorn", "--reload", True, id="hypercorn-reload"),
        pytest.param("granian", "--workers", True, id="granian-workers"),
    ],
)
def test_sighup_to_the_process_group_runs_each_workers_lifespan_shutdown(
    server: str, mode: str, restarts: bool
) -> None:
    """SIGHUP to the whole process group, as a closing terminal sends it: every worker
    runs its lifespan shutdown; supervisors that restart on SIGHUP start new workers.

    Before, uvicorn's and hypercorn's worker processes died of the signal at once,
    without their ``--on-shutdown`` hooks, while their parent restarted or stopped them.
    """
    workers = ["--workers", "2"] if mode == "--workers" else ["--reload"]
    count = 2 if mode == "--workers" else 1
    argv = serve_argv(
        "serve_apps:wsgi_app", "--server", server, "--port", "{port}", *workers, *_pid_hooks()
    )
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        wait_for(lambda: len(_started(srv.log())) == count, 30, "the workers to start")
        first = sorted(_started(srv.log()))
        os.killpg(srv.process.pid, signal.SIGHUP)
        if restarts:
            wait_for(
                lambda: (
                    len(_started(srv.log())) == 2 * count and sorted(_stopped(srv.log())) == first
                ),
                30,
                "the workers to restart",
            )
            assert httpx.get(f"{srv.url}/up").status_code == 200
        else:
            assert srv.process.wait(timeout=30) == 0, srv.log()
        log = srv.log()
    assert set(first) <= set(_stopped(log)), log


@pytest.mark.live
def test_sighup_to_uvicorn_reload_parent_leaves_no_worker_behind() -> None:
    """``kill -HUP`` of the ``asgishift serve --reload`` process on uvicorn stops it and its
    worker gracefully. Before, the reloader died of the signal and its worker process,
    orphaned, went on serving the port for ever."""
    argv = serve_argv(
        "serve_apps:wsgi_app", "--server", "uvicorn", "--port", "{port}", "--reload", *_pid_hooks()
    )
    with live_server("uvicorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        wait_for(lambda: len(_started(srv.log())) == 1, 30, "the worker to start")
        os.kill(srv.process.pid, signal.SIGHUP)
        status = srv.process.wait(timeout=30)
        log = srv.log()
        assert (status, _stopped(log)) == (0, _started(log)), log
        # Nothing listens on the port any more.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/up", timeout=2)


def _refuses_connections(srv: LiveServer) -> bool:
    """Whether a new request gets no response within 1 s (the server stopped accepting).

    Only the response's start is awaited: the app streams on every path, so reading
    its body would last until the server cuts it (``--shutdown-timeout``). A request
    served before the stop began is closed here, and its stream with it.
    """
    try:
        with httpx.stream("GET", f"{srv.url}/up", timeout=1):
            return False
    except httpx.TransportError:
        return True


def _ctrl_c_twice_cuts_the_stream(srv: LiveServer, kill: Callable[[int, int], None]) -> None:
    """Open ``/events``, send SIGINT with ``kill`` (``os.kill`` or ``os.killpg``) twice.

    The first begins the graceful stop (new connections are refused, the stream still
    flows); after the second the stream must close within 10 s, cut mid-body.
    """
    with httpx.stream("GET", f"{srv.url}/events", timeout=10.0) as response:
        chunks = response.iter_raw()
        assert next(chunks).startswith(b"data: tick")
        kill(srv.process.pid, signal.SIGINT)
        wait_for(lambda: _refuses_connections(srv), 10, "the graceful stop to begin")
        assert next(chunks).startswith(b"data: tick")  # the stream is still served
        kill(srv.process.pid, signal.SIGINT)
        signalled = time.monotonic()
        closed = False
        try:
            for _ in chunks:
                if time.monotonic() - signalled > 10:
                    raise AssertionError("stream still open 10 s after the second Ctrl+C")
        except httpx.ReadTimeout:
            raise AssertionError("the stream stalled instead of closing") from None
        except httpx.TransportError:
            closed = True  # cut mid-body: the expected end of an endless stream
        assert closed


@pytest.mark.live
@pytest.mark.parametrize("mode", [["--reload"], ["--workers", "2"]], ids=["reload", "workers"])
def test_a_second_ctrl_c_cuts_open_streams_in_hypercorn_workers(mode: list[str]) -> None:
    """Ctrl+C twice in a terminal (SIGINT to the process group, twice) with hypercorn's
    worker processes: the second one cancels the worker's open requests at once, and
    the worker runs its lifespan shutdown. Before, the worker waited out the whole
    ``--shutdown-timeout``."""
    argv = serve_argv(
        "serve_apps:endless_events",
        "--server",
        "hypercorn",
        "--port",
        "{port}",
        *mode,
        "--shutdown-timeout",
        "60",
        "--on-startup",
        "serve_apps:report_pid_startup",
        "--on-shutdown",
        "serve_apps:report_pid_shutdown",
    )
    workers = 2 if "--workers" in mode else 1
    with live_server("hypercorn", "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        wait_for(lambda: len(_started(srv.log())) == workers, 30, "the workers to start")
        _ctrl_c_twice_cuts_the_stream(srv, os.killpg)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    assert status == 0, log
    assert sorted(_stopped(log)) == sorted(_started(log)), log


@pytest.mark.live
@pytest.mark.parametrize("how", ["cli-hypercorn", "run-granian-app-object"])
def test_a_second_ctrl_c_cuts_open_streams_at_once(how: str) -> None:
    """Ctrl+C twice: the first begins the graceful stop, the second cancels the requests
    still running instead of waiting out ``--shutdown-timeout``; the lifespan shutdown
    still runs. Before, the second Ctrl+C did nothing on hypercorn in one process (and
    granian's embedded server): an open stream kept the command running the whole
    timeout (uvicorn force-quits on it)."""
    long_timeout = 60.0
    if how == "cli-hypercorn":
        server = "hypercorn"
        argv = serve_argv(
            "serve_apps:endless_events",
            "--server",
            "hypercorn",
            "--port",
            "{port}",
            "--shutdown-timeout",
            f"{long_timeout:g}",
            "--on-shutdown",
            "serve_apps:report_shutdown",
        )
    else:
        server = "granian"
        argv = [sys.executable, "-c", _RUN_APP_OBJECT.format(timeout=long_timeout), "{port}"]
    with live_server(server, "", command=argv, app_dir=SERVE_APPS_DIR) as srv:
        _ctrl_c_twice_cuts_the_stream(srv, os.kill)
        status = srv.process.wait(timeout=20)
        log = srv.log()
    assert status == 0, log
    assert "on-shutdown hook ran" in log, log
