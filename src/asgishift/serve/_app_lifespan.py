"""The app's ASGI lifespan as an embedded server sees it.

Two servers, two needs (see :mod:`asgishift.serve._embedded`):

- daphne has no lifespan support: :class:`LifespanDriver` sends the app its
  lifespan events on daphne's loop and holds requests to them (:meth:`LifespanDriver.gate`);
- uvicorn, hypercorn and granian drive the lifespan themselves:
  :func:`watch_startup` only reports where the app's startup is, so that the
  embedded server can tell a startup that hangs from a server that cannot bind.

Both follow the ASGI lifespan spec; neither does I/O beyond the app's own
``receive``/``send`` and a log line per refused request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import Enum
from typing import Any, Final

from asgishift._types import ASGIApp, Message, Receive, Scope, Send
from asgishift.bridge._lifespan import ChildStage, LifespanFailed
from asgishift.serve._errors import StartupError

__all__ = ["DRAIN_TIMEOUT", "LifespanDriver", "LifespanPhase", "watch_startup"]

logger = logging.getLogger("asgishift.serve")


class LifespanPhase(Enum):
    """Where an app is in its lifespan: as a :class:`LifespanDriver`'s requests see it, or
    as :func:`watch_startup` reports it (``STARTING``, then ``SERVING`` or ``FAILED``)."""

    #: startup has not finished: requests wait for it
    STARTING = "starting"
    #: startup completed (or the app has no lifespan): requests run
    SERVING = "serving"
    #: startup failed: requests are answered 503
    FAILED = "failed"
    #: shutdown began: new requests are answered 503, running ones finish first
    STOPPING = "stopping"
    #: shutdown finished: requests are answered 503
    STOPPED = "stopped"


# The two phases every request checks, as module constants: on Python 3.10 and
# 3.11 reading ``LifespanPhase.SERVING`` costs about 100 ns, a global about 7 ns.
_STARTING: Final = LifespanPhase.STARTING
_SERVING: Final = LifespanPhase.SERVING

#: Why a request is refused in each phase that refuses requests (the 503 body and log line).
_REFUSALS: dict[LifespanPhase, str] = {
    LifespanPhase.FAILED: "the app's lifespan startup failed",
    LifespanPhase.STOPPING: "the server is shutting down",
    LifespanPhase.STOPPED: "the server has shut down",
}

#: Seconds :meth:`LifespanDriver.shutdown` waits for running requests before the
#: app's lifespan shutdown runs anyway.
DRAIN_TIMEOUT = 30.0


class LifespanDriver:
    """Send ASGI lifespan events to an app, for servers without lifespan support (daphne),
    and hold requests to the app's lifespan as servers with lifespan support do.

    A thin adapter over the bridge's :class:`~asgishift.bridge._lifespan.ChildStage`,
    which follows the ASGI lifespan spec: an app that raises or returns on the
    ``lifespan`` scope before answering is taken to not support it (as uvicorn's
    ``lifespan="auto"`` does), and the run goes on without it.

    Daphne accepts connections before :meth:`startup` has finished, so the app
    it serves is :meth:`gate` of the app: a request that arrives while startup
    runs waits for it; after a failed startup, and once :meth:`shutdown` has
    begun, requests are answered ``503 Service Unavailable`` (a WebSocket is
    closed before its handshake) with one log line each. :meth:`shutdown` lets
    running requests finish (up to :data:`DRAIN_TIMEOUT` seconds) before the
    app's shutdown runs, so no request runs against an app that has not started
    or has shut down. All methods run on the server's event loop.

    :param app: the ASGI 3 app.
    """

    def __init__(self, app: ASGIApp) -> None:
        #: the lifespan ``state`` dict, to be copied into each request's scope
        self.state: dict[str, Any] = {}
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._child = ChildStage("the app", app, scope)
        self.phase = LifespanPhase.STARTING
        self._settled = asyncio.Event()  # startup is over, one way or the other
        self._running = 0  # requests admitted and not finished
        self._idle = asyncio.Event()
        self._idle.set()

    async def startup(self) -> None:
        """Run the app's startup, then let waiting requests in (or refuse them).

        :raise StartupError: when the app answers ``lifespan.startup.failed``
            (or anything but ``lifespan.startup.complete``).
        """
        try:
            await self._child.start()
        except LifespanFailed as exc:
            self._settle(LifespanPhase.FAILED)
            raise StartupError(f"lifespan startup: {exc}") from exc
        except BaseException:
            self._settle(LifespanPhase.FAILED)
            raise
        self._settle(LifespanPhase.SERVING)

    async def shutdown(self, drain_timeout: float | None = DRAIN_TIMEOUT) -> None:
        """Refuse new requests, let running ones finish (at most ``drain_timeout``
        seconds; ``None``: for ever), then run the app's shutdown (nothing when it does not support
        lifespan or never started); log a failure. After a failed startup,
        requests go on being refused as such."""
        self._settle(LifespanPhase.STOPPING)  # stopped while starting
        if self.phase is LifespanPhase.SERVING:
            self.phase = LifespanPhase.STOPPING
        if self._running:
            try:
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
            except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
                logger.warning(
                    "%d request(s) still running %g s after shutdown began; "
                    "running the app's lifespan shutdown anyway",
                    self._running,
                    drain_timeout,
                )
        try:
            await self._child.stop()
        except LifespanFailed as exc:
            logger.error("lifespan shutdown failed: %s", exc)
        finally:
            if self.phase is LifespanPhase.STOPPING:  # a failed startup stays FAILED
                self.phase = LifespanPhase.STOPPED

    def gate(self, app: ASGIApp) -> ASGIApp:
        """Return ``app`` behind this driver's lifespan: ``http`` and ``websocket``
        requests wait for startup, get a shallow copy of the lifespan state as
        ``scope["state"]`` (ASGI lifespan spec, "Lifespan State"), and are refused
        outside :attr:`LifespanPhase.SERVING`; other scopes pass through."""

        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            if self.phase is _STARTING:
                logger.info(
                    "%s %s waits for lifespan startup to finish",
                    scope.get("method", "WEBSOCKET"),
                    scope.get("path", ""),
                )
                await self._settled.wait()
            if self.phase is not _SERVING:
                await _refuse(scope, send, _REFUSALS[self.phase])
                return
            if "state" not in scope:
                scope["state"] = dict(self.state)
            self._running += 1
            self._idle.clear()
            try:
                await app(scope, receive, send)
            finally:
                self._running -= 1
                if not self._running:
                    self._idle.set()

        return gated

    def _settle(self, phase: LifespanPhase) -> None:
        """Leave :attr:`LifespanPhase.STARTING` for ``phase`` (once) and wake waiting requests."""
        if self.phase is LifespanPhase.STARTING:
            self.phase = phase
            self._settled.set()


async def _refuse(scope: Scope, send: Send, reason: str) -> None:
    """Answer a request the app must not see: 503 for HTTP, a close before the
    handshake for a WebSocket (the server then answers 403); log why."""
    logger.error(
        "%s %s refused: %s", scope.get("method", "WEBSOCKET"), scope.get("path", ""), reason
    )
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013})
        return
    body = f"503 Service Unavailable: {reason}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def watch_startup(app: ASGIApp, on_phase: Callable[[LifespanPhase], None]) -> ASGIApp:
    """Return ``app`` with its lifespan startup reported to ``on_phase`` (other scopes pass).

    For servers that drive the lifespan themselves. ``on_phase`` gets
    :attr:`LifespanPhase.STARTING` when the app receives ``lifespan.startup``,
    then :attr:`LifespanPhase.SERVING` or :attr:`LifespanPhase.FAILED` when it
    sends ``lifespan.startup.complete`` or ``lifespan.startup.failed`` (ASGI
    lifespan spec). It runs on the server's loop and must not block.

    :param app: the ASGI 3 app.
    :param on_phase: called with each phase, in order.
    """

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                on_phase(LifespanPhase.STARTING)
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                on_phase(LifespanPhase.SERVING)
            elif message["type"] == "lifespan.startup.failed":
                on_phase(LifespanPhase.FAILED)
            await send(message)

        await app(scope, watched_receive, watched_send)

    return watched
