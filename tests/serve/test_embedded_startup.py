"""``EmbeddedServer`` with an app whose lifespan startup never finishes (``runasgi``'s server).

uvicorn, hypercorn and granian run the startup before they listen and look at
their exit flag only after it, so a graceful stop cannot end such a server:
the embedded server cancels it instead. Each test runs a real server in a
thread of the test process and checks that the thread ends, the app's startup
coroutine is cancelled, and the error names the startup; and, as the control,
that a server which listens is still stopped gracefully and at once. Daphne, whose lifespan
the embedded server drives itself, can run only once per process (Twisted's
reactor): ``test_embedded_lifespan_gate.py`` covers it in subprocesses.
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from asgishift._types import Receive, Scope, Send
from asgishift.serve import ServeConfig
from asgishift.serve._embedded import EmbeddedServer, EmbeddedState, StartupError
from live import ASGI_SERVER_PARAMS, free_port

#: Seconds a test waits for the server thread or the app; far above what any step takes.
PATIENCE = 20.0

#: The servers that run the app's lifespan themselves, before they listen.
SERVERS = [param for param in ASGI_SERVER_PARAMS if param.values != ("daphne",)]


class HangingStartup:
    """An ASGI app whose lifespan startup waits for ever; it records what happened to it."""

    def __init__(self) -> None:
        self.startup_began = threading.Event()
        self.cancelled = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan", "no request reaches an app that never started"
        message = await receive()
        assert message["type"] == "lifespan.startup"
        self.startup_began.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


def embedded(server: str, app: HangingStartup) -> EmbeddedServer:
    return EmbeddedServer(ServeConfig(app="unused:app", server=server, port=free_port()), app)


def server_thread_alive(server: str) -> bool:
    return any(thread.name == f"asgishift-{server}" for thread in threading.enumerate())


@pytest.mark.parametrize("server", SERVERS)
def test_a_startup_that_outlasts_the_timeout_is_named_and_cancelled(server: str) -> None:
    app = HangingStartup()
    running = embedded(server, app)
    with pytest.raises(StartupError, match=r"lifespan startup did not finish within 1 s"):
        running.start(timeout=1)
    assert running.state is EmbeddedState.STOPPED
    assert app.cancelled.wait(PATIENCE), "the app's startup coroutine was left running"
    running.wait()  # returns once the thread has ended
    assert not server_thread_alive(server)


@pytest.mark.parametrize("server", SERVERS)
def test_stop_from_another_thread_ends_a_server_stuck_in_startup(server: str) -> None:
    app = HangingStartup()
    running = embedded(server, app)

    def stop_once_startup_began() -> None:
        if app.startup_began.wait(PATIENCE):
            running.stop()

    stopper = threading.Thread(target=stop_once_startup_began)
    stopper.start()
    try:
        with pytest.raises(StartupError, match=r"stopped (before it listened|while the app)"):
            running.start(timeout=PATIENCE)
    finally:
        stopper.join(PATIENCE)
    assert app.cancelled.wait(PATIENCE), "the app's startup coroutine was left running"
    running.wait()
    assert not server_thread_alive(server)


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """An app with a lifespan that completes at once."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("server", SERVERS)
def test_a_stop_after_listening_ends_the_thread_without_a_drain_wait(server: str) -> None:
    """The control: a server that listens is stopped gracefully, not cancelled.

    Granian's stop waits up to ``GRANIAN_DRAIN_TIMEOUT`` (10 s) for the loop's
    other tasks; none of the embedded server's own may be among them.
    """
    running = EmbeddedServer(ServeConfig(app="unused:app", server=server, port=free_port()), hello)
    running.start(timeout=PATIENCE)
    assert running.state is EmbeddedState.SERVING
    running.stop(timeout=5)
    assert not server_thread_alive(server)
    assert running.error is None


def test_granian_leaves_no_cyclic_garbage_when_stop_returns() -> None:
    """The embedded granian server's objects are freed on its thread, not at exit.

    Left for the cyclic collector, the garbage of a granian run (the closed
    loop, its tasks, and whatever of granian's they still hold) was sometimes
    freed only at interpreter exit, where granian 2.8's code aborted the process
    (``manage.py runasgi --server granian`` exiting with a Rust panic about once
    in 30 stops).
    """
    pytest.importorskip("granian")
    running = EmbeddedServer(
        ServeConfig(app="unused:app", server="granian", port=free_port()), hello
    )
    gc.collect()
    gc.disable()  # only the embedded server's own collection may free the run's garbage
    try:
        running.start(timeout=PATIENCE)
        running.stop(timeout=5)
        left = gc.collect()
    finally:
        gc.enable()
    assert left == 0
