"""Bound a stopping server's wait for open requests ourselves, where the server cannot.

Two servers keep waiting for open connections after they were told to stop:

- granian's embedded server has no timeout for them at all (under ``asgishift serve``
  ``workers_kill_timeout`` kills the worker process instead);
- hypercorn 0.18 awaits ``asyncio.Server.wait_closed()`` before its
  ``graceful_timeout`` starts, and since Python 3.12.1 that call waits for every open
  connection (pgjones/hypercorn#308), so the timeout never comes.

For both, the app is wrapped by :func:`tracked`, which keeps the tasks of its
``http`` and ``websocket`` calls, and :func:`cut_after` cancels the ones still
running once the shutdown timeout has passed. The server then closes their
connections and runs the lifespan shutdown as after any finished request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from asgishift._types import ASGIApp, Receive, Scope, Send

__all__ = ["cut_after", "cut_on_sigterm", "serve_until_stopped", "stop_on_signal", "tracked"]

logger = logging.getLogger("asgishift.serve")


def tracked(app: ASGIApp, requests: set[asyncio.Task[Any]]) -> ASGIApp:
    """Return ``app`` keeping the task of each running ``http`` and ``websocket`` call.

    :param app: an ASGI 3 app.
    :param requests: filled with the running calls' tasks (each removed when it
        ends); ``lifespan`` calls are not kept, so cancelling ``requests`` never
        cancels the app's startup or shutdown.
    """

    async def tracking(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        requests.add(task)
        try:
            await app(scope, receive, send)
        finally:
            requests.discard(task)

    return tracking


async def cut_after(
    server_task: asyncio.Future[Any],
    requests: set[asyncio.Task[Any]],
    timeout: float | None,
    server: str,
) -> None:
    """Give a stopping server ``timeout`` seconds, then cancel the requests still running.

    :param server_task: the task running the server; nothing is cancelled once it ends.
    :param requests: the running requests' tasks (see :func:`tracked`).
    :param timeout: seconds (:attr:`~asgishift.bridge.BridgeOptions.shutdown_timeout`,
        ``--shutdown-timeout``); ``None`` waits for ever.
    :param server: the server's name, for the log line.
    """
    if timeout is None:
        return
    done, _ = await asyncio.wait({server_task}, timeout=timeout)
    if done or not requests:
        return
    logger.warning(
        "%d request(s) still running %g s after %s began to stop; cancelling them",
        len(requests),
        timeout,
        server,
    )
    for request in list(requests):
        request.cancel()


def stop_on_signal(stop: asyncio.Event, requests: set[asyncio.Task[Any]]) -> Callable[[], None]:
    """Return the event-loop handler of SIGINT and SIGTERM for a server run in this process.

    The first signal sets ``stop``: the graceful stop begins, and running requests get
    ``--shutdown-timeout`` seconds. A second one (Ctrl+C pressed again) cancels the
    requests still running at once, as uvicorn's second Ctrl+C does; the server then
    closes their connections and runs the app's lifespan shutdown.

    :param stop: the server's stop event.
    :param requests: the running requests' tasks (see :func:`tracked`).
    """

    def handle() -> None:
        if not stop.is_set():
            stop.set()
            return
        if requests:
            logger.warning("stopping now: cancelling %d running request(s)", len(requests))
        for request in list(requests):
            request.cancel()

    return handle


async def serve_until_stopped(
    serving: Awaitable[Any],
    stop: asyncio.Event,
    requests: set[asyncio.Task[Any]],
    timeout: float | None,
    server: str,
    begin_stop: Callable[[], object] | None = None,
) -> None:
    """Await a server's ``serving``; once ``stop`` is set, bound its stop by ``timeout``.

    :param serving: the server's serve coroutine (its app wrapped by :func:`tracked`
        with ``requests``).
    :param stop: set to begin the graceful stop (a signal handler, a reload).
    :param requests: the running requests' tasks.
    :param timeout: seconds the requests get once ``stop`` is set (``None``: for ever).
    :param server: the server's name, for the log line.
    :param begin_stop: tells the server to stop, for a server not watching ``stop``
        itself (granian's ``Server.stop``).
    :raise Exception: whatever ``serving`` raises.
    """
    task = asyncio.ensure_future(serving)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        stopping.cancel()
    else:
        if begin_stop is not None:
            begin_stop()
        await cut_after(task, requests, timeout, server)
    await task


def cut_on_sigterm(app: ASGIApp, timeout: float | None) -> ASGIApp:
    """Return ``app`` for a hypercorn worker process, which then survives its parent's SIGTERM.

    With ``--workers``/``--reload`` hypercorn's parent stops its workers through a shared
    event, and as soon as one worker has stopped it sends SIGTERM to the others. A worker
    has no handler for it, so a worker still finishing its requests died at once: without
    its lifespan shutdown (``--on-shutdown`` hooks) and dropping requests before
    ``--shutdown-timeout``. Here SIGTERM instead cancels the requests still running
    ``timeout`` seconds later (see :func:`tracked`); the worker then ends as after any
    request, lifespan shutdown included. SIGINT (Ctrl+C reaches the whole process group,
    and hypercorn's parent stops the workers for it) does the same: on Python 3.12.1 and
    later hypercorn's own ``graceful_timeout`` never starts while a connection is open, so
    a worker holding a stream open never stopped (with ``--reload`` no other worker's exit
    brings the SIGTERM). Call it in the worker's main thread, before the app serves. A
    SIGTERM before the lifespan startup began ends the process at once; a SIGINT then is
    ignored, as hypercorn's workers do. A second SIGINT (Ctrl+C pressed again) cancels the
    running requests at once; hypercorn's SIGTERM does not count as one.

    :param app: the worker's ASGI 3 app.
    :param timeout: seconds (``--shutdown-timeout``); ``None`` lets the requests run.
    :return: the app, its ``http`` and ``websocket`` calls tracked.
    """
    requests: set[asyncio.Task[Any]] = set()
    loops: list[asyncio.AbstractEventLoop] = []
    inner = tracked(app, requests)

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and not loops:
            loops.append(asyncio.get_running_loop())
        await inner(scope, receive, send)

    def cancel_requests() -> None:
        if requests:
            logger.warning(
                "%d request(s) still running %g s after hypercorn stopped this worker; "
                "cancelling them",
                len(requests),
                timeout,
            )
        for request in list(requests):
            request.cancel()

    interrupts: list[int] = []

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if not loops:
            if signum == signal.SIGTERM:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            return
        loop = loops[0]
        if loop.is_closed():
            return
        if signum == signal.SIGINT:
            interrupts.append(signum)
            if len(interrupts) > 1:
                # Ctrl+C pressed again: stop now, as a single process does.
                loop.call_soon_threadsafe(cancel_requests)
                return
        if timeout is not None:
            loop.call_soon_threadsafe(loop.call_later, timeout, cancel_requests)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    return recording
