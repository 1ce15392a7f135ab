"""ASGI middleware that turns blocking-call detection and loop-lag reports on."""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from typing import TYPE_CHECKING

from asgishift.runtime._detector import BlockingDetector
from asgishift.runtime._lag import LoopLagMonitor

if TYPE_CHECKING:
    import asyncio

    from asgishift._types import ASGIApp, Message, Receive, Scope, Send
    from asgishift.audit._model import Rule

logger = logging.getLogger("asgishift.runtime")

#: Events kept in memory by a serving process; every event is logged anyway.
_MAX_EVENTS = 1000

#: The middleware handling the current ASGI call, if any: an inner one (the app
#: wrapped by hand and again by ``asgishift serve --detect-blocking``) passes the
#: call through instead of reporting every blocker and lag a second time.
_handling: contextvars.ContextVar[BlockingDetectorMiddleware | None] = contextvars.ContextVar(
    "asgishift_runtime_middleware", default=None
)


def check_lag_threshold_ms(value: float) -> None:
    """Check a loop-lag threshold: ``0`` (lag monitor off) or a positive, finite number.

    The one rule for :class:`BlockingDetectorMiddleware`'s ``lag_threshold_ms`` and
    ``asgishift serve --loop-lag-ms`` (whose check calls this).

    :param value: milliseconds.
    :raise ValueError: for a negative, infinite or NaN value; the message says what
        is accepted.
    """
    if not (value == 0 or 0 < value < math.inf):
        raise ValueError(
            f"must be 0 (loop-lag monitor off, blocking calls still reported) or a positive "
            f"number of milliseconds, got {value!r}"
        )


class BlockingDetectorMiddleware:
    """Report blocking calls and loop lags of the wrapped ASGI 3 app while it serves.

    On first use (the lifespan startup, or the first request when the server
    does not run the lifespan protocol) it installs a :class:`BlockingDetector`
    and starts a :class:`LoopLagMonitor` on the running loop; both log at
    WARNING on ``asgishift.runtime`` (each blocking call site once, with its
    stack; repeats at DEBUG). Every scope (``http``, ``websocket``,
    ``lifespan``) passes through unchanged; when the app completes the
    lifespan shutdown (ASGI lifespan spec, ``lifespan.shutdown.complete``),
    the monitor stops and the detector is uninstalled.
    ``asgishift serve --detect-blocking --loop-lag-ms N`` wraps the app in it.

    Each event loop the app runs on gets its own :class:`LoopLagMonitor`
    (:attr:`monitors`), so an app served on several loops at once (test
    clients, loops in threads) is watched on every one; the monitor of a
    closed loop is dropped when the next new loop comes. When two of these
    middlewares are nested, the outer one does the work and the inner one
    passes every call through, so nothing is reported twice.

    :param app: the ASGI 3 application.
    :param lag_threshold_ms: report callbacks that hold the loop longer than
        this many milliseconds; ``0`` turns the lag monitor off (blocking calls are
        still reported).
    :param raise_on_block: make blocking calls on the loop raise
        :class:`~asgishift.runtime.BlockingCallError` instead of running.
    :param rules: rules to watch; ``None`` means the catalogue's ``ASH1xx``.
    :param stack_limit: frames kept in each reported stack.
    :param full_stack: log every frame of each stack; by default runs of library
        frames (standard library, installed packages, asgishift) are folded into
        one line (``asgishift serve --full-stack``).
    :raise ValueError: for a ``lag_threshold_ms`` :func:`check_lag_threshold_ms` refuses.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lag_threshold_ms: float = 100.0,
        raise_on_block: bool = False,
        rules: tuple[Rule, ...] | None = None,
        stack_limit: int = 50,
        full_stack: bool = False,
    ) -> None:
        try:
            check_lag_threshold_ms(lag_threshold_ms)
        except ValueError as exc:
            raise ValueError(f"lag_threshold_ms {exc}") from None
        self.app = app
        self.lag_threshold_ms = lag_threshold_ms
        self.raise_on_block = raise_on_block
        self.stack_limit = stack_limit
        self.full_stack = full_stack
        self._rules = rules
        #: The installed detector, once the middleware has been used.
        self.detector: BlockingDetector | None = None
        #: The lag monitor of the loop the app was last started on, once used.
        self.monitor: LoopLagMonitor | None = None
        self._monitors: list[LoopLagMonitor] = []
        self._lock = threading.Lock()

    @property
    def monitors(self) -> tuple[LoopLagMonitor, ...]:
        """The running lag monitors, one per event loop the app runs on."""
        with self._lock:
            return tuple(self._monitors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start detection if needed, then run the app for ``scope`` (ASGI 3)."""
        import asyncio

        if _handling.get() is not None:
            # An outer BlockingDetectorMiddleware already reports for this call.
            await self.app(scope, receive, send)
            return
        token = _handling.set(self)
        try:
            self._start(asyncio.get_running_loop())
            if scope["type"] != "lifespan":
                await self.app(scope, receive, send)
                return

            async def send_lifespan(message: Message) -> None:
                await send(message)
                if message["type"] == "lifespan.shutdown.complete":
                    self.stop()

            await self.app(scope, receive, send_lifespan)
        finally:
            _handling.reset(token)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self.detector is None:
                self.detector = BlockingDetector(
                    self._rules,
                    raise_on_block=self.raise_on_block,
                    stack_limit=self.stack_limit,
                    max_events=_MAX_EVENTS,
                    log_repeats=False,
                    full_stack=self.full_stack,
                ).install()
                logger.info(
                    "detecting blocking calls on the event loop: %d callables watched, "
                    "%d not detectable at run time",
                    len(self.detector.calls) - len(self.detector.unpatchable),
                    len(self.detector.unpatchable),
                )
            if not self.lag_threshold_ms or any(m.loop is loop for m in self._monitors):
                return
            # A new loop (loops in threads, a test client per loop): watch it too,
            # and drop the monitors of loops that have been closed since.
            for monitor in self._monitors:
                if monitor.loop is None or monitor.loop.is_closed():
                    monitor.stop()
            self._monitors = [m for m in self._monitors if m.running]
            self.monitor = LoopLagMonitor(
                self.lag_threshold_ms,
                stack_limit=self.stack_limit,
                max_events=_MAX_EVENTS,
                full_stack=self.full_stack,
            ).start(loop)
            self._monitors.append(self.monitor)

    def stop(self) -> None:
        """Stop every lag monitor and uninstall the detector; the next call starts them again."""
        with self._lock:
            monitors, self._monitors, self.monitor = self._monitors, [], None
            detector, self.detector = self.detector, None
        for monitor in monitors:
            monitor.stop()
        if detector is not None:
            detector.uninstall()


__all__ = ["BlockingDetectorMiddleware", "check_lag_threshold_ms"]
