"""ASGIToWSGI lifespan under gunicorn: startup before the first request, shutdown at exit.

Also: a failed startup turns every request into a 500, a gunicorn ``--preload``
master does not hand its loop to the workers, and a ``post_fork`` hook can run
startup at worker start.
"""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from a2w_helpers import APPS_DIR, serve

DEADLINE = 20.0

pytestmark = pytest.mark.live


def _events(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [
        (kind, int(pid))
        for kind, pid in (line.split() for line in path.read_text().split("\n") if line)
    ]


def _wait_for_event(path: Path, event: tuple[str, int] | str) -> list[tuple[str, int]]:
    deadline = time.monotonic() + DEADLINE
    while True:
        events = _events(path)
        if event in events or any(kind == event for kind, _ in events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"{event!r} not in {events}")
        time.sleep(0.02)


@pytest.mark.parametrize("config", ["gunicorn-gthread", "gunicorn-sync"])
def test_startup_before_first_request_and_shutdown_at_exit(tmp_path: Path, config: str) -> None:
    events = tmp_path / "events"
    with serve(config, env={"A2W_EVENTS": str(events)}) as srv:
        assert _events(events) == []  # lazily: nothing before the first request
        scope = httpx.get(f"{srv.url}/scope", timeout=DEADLINE).json()
        worker = scope["pid"]
        assert _events(events) == [("startup", worker)]
        assert scope["state"]["started_in"] == worker
        assert httpx.get(f"{srv.url}/scope", timeout=DEADLINE).json()["pid"] == worker
    assert _events(events) == [("startup", worker), ("shutdown", worker)]


def test_failed_startup_answers_every_request_500(tmp_path: Path) -> None:
    with serve("gunicorn-gthread", "a2w_apps:failing_application") as srv:
        for _ in range(2):
            response = httpx.get(f"{srv.url}/", timeout=DEADLINE)
            assert response.status_code == 500
            assert "should not be served" not in response.text
        srv.wait_for_log(r"lifespan startup failed: database unreachable")
        assert srv.log().count("lifespan startup failed") == 1


def test_preload_master_does_not_share_its_loop(tmp_path: Path) -> None:
    events = tmp_path / "events"
    env = {"A2W_EVENTS": str(events), "A2W_STARTUP_AT_IMPORT": "1"}
    with serve("gunicorn-gthread", extra=["--preload", "-w", "2"], env=env) as srv:
        master = srv.process.pid
        assert ("startup", master) in _events(events)
        pids = set()
        for _ in range(6):
            scope = httpx.get(
                f"{srv.url}/scope", headers={"Connection": "close"}, timeout=DEADLINE
            ).json()
            assert scope["pid"] != master
            # Each worker ran its own startup on its own loop thread.
            assert scope["state"]["started_in"] == scope["pid"]
            pids.add(scope["pid"])
        for pid in pids:
            assert ("startup", pid) in _events(events)
    for pid in pids:
        assert ("shutdown", pid) in _events(events)


def test_post_fork_hook_runs_startup_at_worker_start(tmp_path: Path) -> None:
    events = tmp_path / "events"
    conf = str(APPS_DIR / "a2w_gunicorn_conf.py")
    with serve("gunicorn-gthread", extra=["-c", conf], env={"A2W_EVENTS": str(events)}) as srv:
        (_, worker), *_ = _wait_for_event(events, "startup")  # before any request
        scope = httpx.get(f"{srv.url}/scope", timeout=DEADLINE).json()
        assert scope["pid"] == worker
        assert _events(events) == [("startup", worker)]


def test_concurrent_first_requests_share_one_startup(tmp_path: Path) -> None:
    events = tmp_path / "events"
    with serve("gunicorn-gthread", env={"A2W_EVENTS": str(events)}) as srv:

        def get(_: int) -> int:
            response = httpx.get(f"{srv.url}/scope", timeout=DEADLINE)
            return int(response.json()["state"]["started_in"])

        with ThreadPoolExecutor(8) as pool:
            started_in = set(pool.map(get, range(8)))
        assert len(started_in) == 1
        assert [kind for kind, _ in _events(events)] == ["startup"]


def test_a_worker_killed_by_its_timeout_cancels_the_request_before_it_exits(
    tmp_path: Path,
) -> None:
    """gunicorn's --timeout kills a sync worker stuck in a request (SystemExit in its thread).

    The app's task must be cancelled, in its own task, before the worker exits, so
    its clean-up runs: before, the task was left pending, lifespan shutdown ran
    beside it, and the loop's shutdown_asyncgens() threw into its async generator
    from another task ("Attempted to exit cancel scope in a different task").
    """
    events = tmp_path / "events"
    with serve("gunicorn-sync", extra=["--timeout", "1"], env={"A2W_EVENTS": str(events)}) as srv:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{srv.url}/stuck-holding", timeout=DEADLINE).raise_for_status()
        worker = _wait_for_event(events, "acquired")[-1][1]
        _wait_for_event(events, ("shutdown", worker))
        log = srv.log()
    kinds = [kind for kind, pid in _events(events) if pid == worker]
    assert kinds == ["startup", "acquired", "cancelled", "released", "shutdown"], kinds
    assert "different task" not in log
    assert "was destroyed but it is pending" not in log


def test_a_reloaded_gthread_worker_ends_its_open_stream_and_shuts_down(tmp_path: Path) -> None:
    """SIGHUP (and --max-requests) retire a gthread worker while a stream is still open.

    gunicorn waits --graceful-timeout for the stream, then the worker's Python
    exits, and its interpreter joins the server's threads before any ``atexit``
    handler runs. The bridge must end the open request there (its task cancelled,
    its ``finally`` run) so the worker exits and runs lifespan shutdown; before, it
    kept streaming until gunicorn's --timeout killed it ("WORKER TIMEOUT"), long
    after it had logged "Worker exiting".
    """
    events = tmp_path / "events"
    extra = ["--graceful-timeout", "1", "--timeout", "120"]
    with serve("gunicorn-gthread", extra=extra, env={"A2W_EVENTS": str(events)}) as srv:
        with httpx.stream("GET", f"{srv.url}/endless", timeout=DEADLINE) as response:
            assert response.status_code == 200
            chunks = response.iter_bytes()
            next(chunks)
            worker = _wait_for_event(events, "startup")[-1][1]
            srv.process.send_signal(signal.SIGHUP)
            _wait_for_event(events, ("shutdown", worker))
            # The old worker's stream was cut: the connection closes without a clean end.
            with pytest.raises(httpx.HTTPError):
                for _ in chunks:
                    pass
        log = srv.log()
    kinds = [kind for kind, pid in _events(events) if pid == worker]
    assert kinds == ["startup", "stream-ended", "shutdown"], kinds
    assert "WORKER TIMEOUT" not in log
    assert "returned without completing the response" not in log


@pytest.mark.parametrize(
    ("config", "conf"),
    [
        ("gunicorn-gthread", []),
        ("gunicorn-sync", []),
        # Startup from post_fork, before the worker installs its signal handlers.
        ("gunicorn-gthread", ["-c", str(APPS_DIR / "a2w_gunicorn_conf.py")]),
    ],
    ids=["gthread", "sync", "gthread-post-fork"],
)
def test_sigterm_with_a_stream_open_ends_it_and_shuts_down_before_the_kill(
    tmp_path: Path, config: str, conf: list[str]
) -> None:
    """A stop (SIGTERM to the master) with an endless stream open is orderly.

    The master kills its workers with SIGKILL when --graceful-timeout ends, the very
    moment a gthread worker stops waiting for its open requests (a sync worker does
    not stop waiting at all): the stream's ``finally`` and lifespan shutdown, which
    come after, were killed half-way (gthread: about one stop in two; sync: every
    time). The bridge now cuts the stream ahead of the deadline, so both run first.
    """
    events = tmp_path / "events"
    # Requests still open are cut at 2 s, leaving exit_reserve (2 s) before the kill.
    extra = ["--graceful-timeout", "4", "--timeout", "120", *conf]
    with serve(config, extra=extra, env={"A2W_EVENTS": str(events)}) as srv:
        with httpx.stream("GET", f"{srv.url}/endless", timeout=DEADLINE) as response:
            chunks = response.iter_bytes()
            next(chunks)
            worker = _wait_for_event(events, "startup")[-1][1]
            srv.process.send_signal(signal.SIGTERM)
            # The stream is cut short: the connection closes without a clean end.
            with pytest.raises(httpx.HTTPError):
                for _ in chunks:
                    pass
        assert srv.process.wait(DEADLINE) == 0
        log = srv.log()
    kinds = [kind for kind, pid in _events(events) if pid == worker]
    assert kinds == ["startup", "stream-ended", "shutdown"], (kinds, log)
    assert re.search(r"still open [\d.]+ s before gunicorn's graceful_timeout ends", log), log


def test_a_request_cut_by_a_stop_before_its_response_started_gets_503(tmp_path: Path) -> None:
    """A request still waiting for the app when a stopping worker cuts it is answered 503.

    The app did nothing wrong: the server is going away (RFC 9110 section 15.6.4,
    Service Unavailable), and a client or load balancer may retry elsewhere. Before,
    the bridge answered 500, as for an app that failed.
    """
    events = tmp_path / "events"
    extra = ["--graceful-timeout", "4", "--timeout", "120"]
    with serve("gunicorn-gthread", extra=extra, env={"A2W_EVENTS": str(events)}) as srv:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.get, f"{srv.url}/stuck-holding", timeout=DEADLINE)
            worker = _wait_for_event(events, "acquired")[-1][1]
            srv.process.send_signal(signal.SIGTERM)
            response = pending.result(DEADLINE)
        assert srv.process.wait(DEADLINE) == 0
        log = srv.log()
    assert response.status_code == 503, (response.text, log)
    assert response.text == "503 Service Unavailable\n"
    kinds = [kind for kind, pid in _events(events) if pid == worker]
    assert kinds == ["startup", "acquired", "cancelled", "released", "shutdown"], (kinds, log)
    assert "raised" not in log, log  # the app is not blamed


@pytest.mark.parametrize("config", ["gunicorn-gthread", "gunicorn-sync"])
def test_the_loops_descriptors_stay_open_until_lifespan_shutdown_has_run(
    tmp_path: Path, config: str
) -> None:
    """Lifespan shutdown at exit runs while the loop thread's wake-up pipe is open.

    The pipe is closed by a ``weakref.finalize``, which the interpreter runs at exit
    from an ``atexit`` hook of its own; that hook ran before the bridge's, so the loop
    went on watching closed descriptors during shutdown ("OSError: [Errno 9] Bad file
    descriptor" logged by asyncio when a wake-up was pending, and a descriptor the
    app opened meanwhile could take the pipe's number).
    """
    events = tmp_path / "events"
    env = {"A2W_EVENTS": str(events), "A2W_CHECK_FDS": "1"}
    with serve(config, env=env) as srv:
        assert httpx.get(f"{srv.url}/", timeout=DEADLINE).status_code == 200
        worker = _wait_for_event(events, "startup")[-1][1]
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(DEADLINE) == 0
    kinds = [kind for kind, pid in _events(events) if pid == worker]
    assert kinds == ["startup", "fds-kept", "shutdown"], kinds


@pytest.mark.parametrize("config", ["gunicorn-gthread", "gunicorn-sync"])
def test_lifespan_shutdown_can_use_a_thread_pool(tmp_path: Path, config: str) -> None:
    """Lifespan shutdown may call ``asyncio.to_thread`` (the app's lifespan writes its
    ``shutdown`` event that way), as under uvicorn.

    Shutdown ran from ``atexit``, after ``concurrent.futures`` had begun refusing work
    for the interpreter's exit: ``asyncio.to_thread``, ``run_in_executor`` and
    ``getaddrinfo`` raised "cannot schedule new futures after interpreter shutdown",
    so a shutdown that closed a blocking client (or resolved a host) failed.
    """
    events = tmp_path / "events"
    with serve(config, env={"A2W_EVENTS": str(events)}) as srv:
        assert httpx.get(f"{srv.url}/", timeout=DEADLINE).status_code == 200
        worker = _wait_for_event(events, "startup")[-1][1]
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(DEADLINE) == 0
        log = srv.log()
    assert [kind for kind, pid in _events(events) if pid == worker] == ["startup", "shutdown"]
    assert "cannot schedule new futures" not in log


def test_a_slow_shutdown_gives_up_before_gunicorns_kill_and_says_why(tmp_path: Path) -> None:
    """A lifespan shutdown longer than the stop allows ends, logged, before the kill.

    ``shutdown_timeout`` is 30 s, but gunicorn's master kills a stopping worker when
    --graceful-timeout ends: the shutdown was killed half-way, silently. It now gives
    up a moment before the kill, its task is cancelled (its clean-up runs), the log
    says what to raise, and the worker exits by itself.
    """
    events = tmp_path / "events"
    env = {"A2W_EVENTS": str(events), "A2W_SLOW_SHUTDOWN": "30"}
    extra = ["--graceful-timeout", "2"]
    with serve("gunicorn-gthread", extra=extra, env=env) as srv:
        assert httpx.get(f"{srv.url}/", timeout=DEADLINE).status_code == 200
        worker = _wait_for_event(events, "startup")[-1][1]
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(DEADLINE) == 0
        log = srv.log()
    # "exited": the worker got to the end of its exit; it was not killed.
    assert [kind for kind, pid in _events(events) if pid == worker] == [
        "startup",
        "shutdown-cancelled",
        "exited",
    ]
    assert "lifespan shutdown did not complete within" in log
    assert "gunicorn's graceful_timeout ends" in log
