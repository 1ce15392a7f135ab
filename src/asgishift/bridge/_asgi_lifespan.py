"""Run an ASGI app's lifespan protocol on the process's event loop, for ASGIToWSGI.

WSGI has no startup or shutdown events, so :class:`ASGIToWSGI
<asgishift.bridge.ASGIToWSGI>` makes them: startup before the first request of
a process (or earlier, from a gunicorn ``post_fork`` hook), shutdown at
process exit. This module drives the ASGI lifespan spec
("Lifespan Protocol") for one app in one process; the app instance keeps one
:class:`Lifespan` per process id.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from asgishift._types import ASGIApp, Message
from asgishift.bridge._loop_thread import LoopThread

__all__ = ["Lifespan", "LifespanPhase", "LifespanSettings"]

logger = logging.getLogger("asgishift.bridge")

#: Seconds before gunicorn's kill at which a stopping worker's shutdown gives up, so
#: that it can log why and exit by itself.
_BEFORE_KILL: Final = 0.5


class LifespanPhase(enum.Enum):
    """Where an app's lifespan stands in this process."""

    IDLE = "not started"
    READY = "started"  # lifespan.startup.complete
    UNSUPPORTED = "not supported by the app"  # serve requests without it
    FAILED = "startup failed"  # every request is a 500
    STOPPED = "shut down"


#: The phases in which requests are served.
SERVING = frozenset({LifespanPhase.READY, LifespanPhase.UNSUPPORTED})
# Module constants for the per-request checks (reading
# ``LifespanPhase.READY`` costs about 100 ns on Python 3.10 and 3.11).
READY: Final = LifespanPhase.READY
UNSUPPORTED: Final = LifespanPhase.UNSUPPORTED
FAILED: Final = LifespanPhase.FAILED


@dataclass(frozen=True)
class LifespanSettings:
    """How to run the lifespan protocol.

    :param mode: ``"auto"`` runs it and carries on without it when the app
        raises or returns before answering startup (an app without lifespan
        support); ``"on"`` treats that as a failed startup; ``"off"`` never runs it.
    :param startup_timeout: seconds to wait for ``lifespan.startup.complete``.
    :param shutdown_timeout: seconds to wait for ``lifespan.shutdown.complete``.
    """

    mode: Literal["auto", "on", "off"] = "auto"
    startup_timeout: float = 30.0
    shutdown_timeout: float = 30.0


class Lifespan:
    """The lifespan of one ASGI app in one process.

    :param app: the ASGI 3 application.
    :param loop_thread: this process's loop thread; shutdown is registered with
        its :meth:`~asgishift.bridge._loop_thread.LoopThread.at_exit`.
    :param settings: mode and timeouts.
    """

    def __init__(self, app: ASGIApp, loop_thread: LoopThread, settings: LifespanSettings) -> None:
        self.app = app
        self.loop_thread = loop_thread
        self.settings = settings
        self.pid = os.getpid()
        self.phase = LifespanPhase.IDLE
        #: The lifespan state (ASGI lifespan spec, "Lifespan State"); each request
        #: scope gets a shallow copy.
        self.state: dict[str, Any] = {}
        #: The app's message from ``lifespan.startup.failed``, or why startup failed.
        self.error: str | None = None
        self._lock = threading.Lock()
        self._startup_answer: asyncio.Future[tuple[str, Any]] | None = None
        self._shutdown_answer: asyncio.Future[tuple[str, Any]] | None = None
        self._shutdown_requested: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # --- from any thread but the loop's ----------------------------------------------
    def startup(self) -> LifespanPhase:
        """Run lifespan startup once, blocking until the app answers; return the phase.

        Thread-safe: concurrent first requests wait for the one startup.
        """
        with self._lock:
            if self.phase is not LifespanPhase.IDLE:
                return self.phase
            if self.settings.mode == "off":
                self.phase = LifespanPhase.UNSUPPORTED
                return self.phase
            try:
                kind, detail = self.loop_thread.run(
                    self._start(), self.settings.startup_timeout + 1.0
                )
            except TimeoutError:
                kind, detail = "timeout", None
            self.phase = self._judge_startup(kind, detail)
            if self.phase is LifespanPhase.READY:
                self.loop_thread.at_exit(self.shutdown)
            return self.phase

    def _judge_startup(self, kind: str, detail: Any) -> LifespanPhase:
        if kind == "complete":
            logger.debug("ASGI app %r: lifespan startup complete", self.app)
            return LifespanPhase.READY
        if kind == "failed":
            self.error = str(detail or "(no message)")
            logger.error(
                "ASGI app %r: lifespan startup failed: %s. Every request is answered 500 "
                "(ASGI lifespan spec, 'Startup - send'); fix the startup code and restart.",
                self.app,
                self.error,
            )
            return LifespanPhase.FAILED
        if kind == "timeout":
            limit = self.settings.startup_timeout
            self.error = f"lifespan startup did not complete within {limit} s"
            logger.error(
                "ASGI app %r: %s; every request is answered 500. Raise startup_timeout or "
                "make startup faster.",
                self.app,
                self.error,
            )
            return LifespanPhase.FAILED
        # "raised" or "returned": the app does not speak lifespan.
        if self.settings.mode == "on":
            self.error = f"the app {kind} instead of answering lifespan.startup: {detail!r}"
            logger.error(
                "ASGI app %r: %s; every request is answered 500 (lifespan='on').",
                self.app,
                self.error,
                exc_info=detail if isinstance(detail, BaseException) else None,
            )
            return LifespanPhase.FAILED
        logger.info(
            "ASGI app %r does not support the lifespan protocol (it %s); serving without it.",
            self.app,
            "raised " + repr(detail) if kind == "raised" else "returned",
        )
        return LifespanPhase.UNSUPPORTED

    def shutdown(self) -> None:
        """Run lifespan shutdown if startup completed, blocking up to ``shutdown_timeout``.

        Called at process exit, before the interpreter joins threads, while thread
        pools still take work (see ``LoopThread.before_thread_joins``); safe to
        call more than once and in a forked child
        (it does nothing there: the lifespan belongs to the parent).
        """
        with self._lock:
            if self.phase is not LifespanPhase.READY or self.pid != os.getpid():
                return
            self.phase = LifespanPhase.STOPPED
            timeout, killed = self._shutdown_time()
            try:
                kind, detail = self.loop_thread.run(self._stop(timeout), timeout + 1.0)
            except (TimeoutError, RuntimeError):
                kind, detail = "timeout", None
        if kind == "complete":
            logger.debug("ASGI app %r: lifespan shutdown complete", self.app)
        elif kind == "failed":
            logger.error("ASGI app %r: lifespan shutdown failed: %s", self.app, detail)
        elif kind == "timeout":
            logger.error(
                "ASGI app %r: lifespan shutdown did not complete within %.1f s%s; it was cancelled",
                self.app,
                timeout,
                " (gunicorn's graceful_timeout ends: raise ASGIToWSGIOptions.exit_reserve "
                "or --graceful-timeout)"
                if killed
                else "",
            )
        else:
            logger.error(
                "ASGI app %r %s during lifespan shutdown: %r",
                self.app,
                kind,
                detail,
                exc_info=detail if isinstance(detail, BaseException) else None,
            )

    def _shutdown_time(self) -> tuple[float, bool]:
        """Return the seconds shutdown may take, and whether a kill is what limits them.

        ``shutdown_timeout``, or less when gunicorn's master kills this stopping
        worker sooner: shutdown then gives up (and says so) a moment before the kill.
        """
        timeout = self.settings.shutdown_timeout
        killed_at = self.loop_thread.kill_deadline()
        if killed_at is not None:
            left = max(killed_at - time.monotonic() - _BEFORE_KILL, 0.0)
            if left < timeout:
                return left, True
        return timeout, False

    # --- on the loop -----------------------------------------------------------------
    async def _start(self) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        self._startup_answer = loop.create_future()
        self._shutdown_answer = loop.create_future()
        self._shutdown_requested = asyncio.Event()
        self._task = loop.create_task(self._main())
        try:
            return await asyncio.wait_for(
                asyncio.shield(self._startup_answer), self.settings.startup_timeout
            )
        except asyncio.TimeoutError:
            self._task.cancel()
            return ("timeout", None)

    async def _stop(self, timeout: float) -> tuple[str, Any]:
        assert self._shutdown_requested is not None
        assert self._shutdown_answer is not None
        self._shutdown_requested.set()
        try:
            return await asyncio.wait_for(asyncio.shield(self._shutdown_answer), timeout)
        except asyncio.TimeoutError:
            return ("timeout", None)
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        outcome: tuple[str, Any] = ("returned", None)
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            outcome = ("cancelled", None)
            raise
        except Exception as exc:
            outcome = ("raised", exc)
        finally:
            for answer in (self._startup_answer, self._shutdown_answer):
                if answer is not None and not answer.done():
                    answer.set_result(outcome)

    async def _receive(self) -> Message:
        assert self._shutdown_requested is not None
        assert self._startup_answer is not None
        if not self._startup_answer.done():
            return {"type": "lifespan.startup"}
        await self._shutdown_requested.wait()
        return {"type": "lifespan.shutdown"}

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        answers = {
            "lifespan.startup.complete": (self._startup_answer, "complete"),
            "lifespan.startup.failed": (self._startup_answer, "failed"),
            "lifespan.shutdown.complete": (self._shutdown_answer, "complete"),
            "lifespan.shutdown.failed": (self._shutdown_answer, "failed"),
        }
        if kind not in answers:
            raise ValueError(
                f"unexpected lifespan message {kind!r} (ASGI lifespan spec, 'Lifespan Protocol')"
            )
        future, result = answers[kind]
        if future is None or future.done():
            raise ValueError(f"{kind!r} sent twice or out of order (ASGI lifespan spec)")
        future.set_result((result, message.get("message", "")))
