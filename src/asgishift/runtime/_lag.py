"""Report callbacks that hold an asyncio event loop longer than a threshold.

Strategy: a watchdog thread schedules a heartbeat on the loop with
``call_soon_threadsafe`` and waits for it. A loop that runs its callbacks
answers within microseconds; when the heartbeat has not run after the
threshold, the loop thread is busy in one callback, and its stack, read with
:func:`sys._current_frames` at that moment, names the culprit. The watchdog
then waits for the heartbeat to run to measure the lag, records a
:class:`LoopLag` and logs it.

Heartbeats go out every ``interval_ms`` after the previous one was answered,
so a hold starting just after a heartbeat is reported when it lasts longer
than ``threshold_ms + interval_ms``, and the reported lag is a lower bound of
the hold (by up to ``interval_ms``). Overhead: one callback every
``interval_ms`` (25 ms for the default 100 ms threshold) and one sleeping
thread per monitored loop.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgishift.runtime._events import LoopLag
from asgishift.runtime._stack import capture, format_stack

if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger("asgishift.runtime")


class _Beat:
    """One heartbeat: set by the loop when it runs the callback."""

    __slots__ = ("answered", "answered_at")

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.answered_at = 0.0


class LoopLagMonitor:
    """Watch one asyncio event loop and report callbacks that hold it too long.

    Call :meth:`start` with the loop (or from inside it), and :meth:`stop`
    when done; or use the monitor as a context manager after :meth:`start`
    (``with LoopLagMonitor(50).start(loop): ...``). Works with any loop that
    implements ``call_soon_threadsafe``, uvloop included.

    :param threshold_ms: report when a heartbeat waits longer than this many
        milliseconds; must be positive.
    :param interval_ms: milliseconds between an answered heartbeat and the
        next one; default a quarter of the threshold, at most 250 ms.
    :param stack_limit: how many innermost frames of the loop thread's stack
        to keep.
    :param log: log each :class:`LoopLag` at WARNING on ``asgishift.runtime``.
    :param on_lag: called with each :class:`LoopLag` from the watchdog thread.
    :param max_events: keep at most this many events in :attr:`events` (later
        ones are still logged and passed to ``on_lag``); ``None`` keeps all.
    :param full_stack: log every frame; by default runs of library frames are
        folded into one line (:mod:`asgishift.runtime._stack`).
    :raise ValueError: when ``threshold_ms`` or ``interval_ms`` is not positive.
    """

    def __init__(
        self,
        threshold_ms: float = 100.0,
        *,
        interval_ms: float | None = None,
        stack_limit: int = 50,
        log: bool = True,
        on_lag: Callable[[LoopLag], None] | None = None,
        max_events: int | None = None,
        full_stack: bool = False,
    ) -> None:
        if threshold_ms <= 0:
            raise ValueError(f"threshold_ms must be positive, got {threshold_ms!r}")
        if interval_ms is None:
            interval_ms = min(threshold_ms / 4, 250.0)
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms!r}")
        self.threshold_ms = float(threshold_ms)
        self.interval_ms = float(interval_ms)
        self.stack_limit = stack_limit
        self.log = log
        self.on_lag = on_lag
        self.max_events = max_events
        self.full_stack = full_stack
        #: Every :class:`LoopLag` reported so far.
        self.events: list[LoopLag] = []
        #: How many holds were caught; grows when the stack is captured, before
        #: the hold ends (the matching :class:`LoopLag` comes after it ends).
        self.stalls_seen = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._lock = threading.Lock()
        self._beat: _Beat | None = None  # the heartbeat the watchdog waits on

    @property
    def running(self) -> bool:
        """Whether the watchdog thread is alive."""
        return self._watchdog is not None and self._watchdog.is_alive()

    def start(
        self, loop: asyncio.AbstractEventLoop | None = None, *, thread_id: int | None = None
    ) -> LoopLagMonitor:
        """Start the watchdog thread for ``loop``; a second call does nothing.

        :param loop: the loop to watch; ``None`` means the running loop (call
            from a coroutine or callback then).
        :param thread_id: :func:`threading.get_ident` of the thread that runs
            (or will run) the loop. Found automatically when called from the
            loop's thread or once the first heartbeat runs.
        :return: this monitor, for chaining.
        :raise RuntimeError: when ``loop`` is ``None`` and no loop is running.
        """
        import asyncio

        with self._lock:
            if self._watchdog is not None:
                return self
            if loop is None:
                loop = asyncio.get_running_loop()
            if thread_id is None and asyncio.events._get_running_loop() is loop:
                thread_id = threading.get_ident()
            self.loop = loop
            self._thread_id = thread_id
            self._stop.clear()
            self._watchdog = threading.Thread(
                target=self._watch, args=(loop,), name="asgishift-loop-lag", daemon=True
            )
            self._watchdog.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the watchdog thread; a second call does nothing.

        :param timeout: seconds to wait for the thread to finish.
        """
        with self._lock:
            watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        self._stop.set()
        beat = self._beat
        if beat is not None:
            # Called on a busy loop thread (a lifespan shutdown), the heartbeat the
            # watchdog waits on cannot run before this returns: release the wait.
            beat.answered.set()
        if watchdog is not threading.current_thread():
            watchdog.join(timeout)

    def __enter__(self) -> LoopLagMonitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    # --- watchdog thread -------------------------------------------------------

    def _answer(self, beat: _Beat) -> None:
        """Heartbeat callback; runs on the loop thread."""
        beat.answered_at = time.perf_counter()
        if self._thread_id is None:
            self._thread_id = threading.get_ident()
        beat.answered.set()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        threshold = self.threshold_ms / 1000
        interval = self.interval_ms / 1000
        while not self._stop.is_set():
            beat = self._beat = _Beat()
            if self._stop.is_set():
                return  # stop() ran before it could see this beat: it sets the flag first
            sent = time.perf_counter()
            try:
                loop.call_soon_threadsafe(self._answer, beat)
            except RuntimeError:
                return  # the loop was closed: nothing left to watch
            if not beat.answered.wait(threshold) and not self._stop.is_set():
                self._held(loop, beat, sent)
            self._stop.wait(interval)

    def _wait_answer(self, loop: asyncio.AbstractEventLoop, beat: _Beat) -> bool:
        """Wait until ``beat`` runs; ``False`` when stopped or the loop closed first."""
        while not beat.answered.wait(self.interval_ms / 1000):
            if self._stop.is_set() or loop.is_closed():
                return False
        return True

    def _held(self, loop: asyncio.AbstractEventLoop, beat: _Beat, sent: float) -> None:
        """The heartbeat is late: capture the loop thread's stack, then measure."""
        if not loop.is_running():
            # Queued before the loop started (or between run_until_complete
            # calls): the loop is idle, not held.
            self._wait_answer(loop, beat)
            return
        thread_id = self._thread_id
        if thread_id is None:
            thread_id = getattr(loop, "_thread_id", None)
        frame = sys._current_frames().get(thread_id) if thread_id is not None else None
        frames = capture(frame, self.stack_limit) if frame is not None else ()
        stack = (
            format_stack(frames, full=True)
            if frame is not None
            else "  <the loop thread's stack is unknown: no heartbeat has run yet>\n"
        )
        del frame  # do not keep the loop thread's frames alive
        captured_at = time.time()
        self.stalls_seen += 1
        answered = self._wait_answer(loop, beat)
        end = beat.answered_at if answered else time.perf_counter()
        thread = _thread_name(thread_id)
        event = LoopLag(
            lag_ms=(end - sent) * 1000,
            threshold_ms=self.threshold_ms,
            stack=stack,
            thread_name=thread,
            thread_id=thread_id or 0,
            timestamp=captured_at,
            frames=frames,
        )
        if self.max_events is None or len(self.events) < self.max_events:
            self.events.append(event)
        if self.log:
            logger.warning("%s", event.format(full_stack=self.full_stack))
        if self.on_lag is not None:
            self.on_lag(event)


def _thread_name(thread_id: int | None) -> str:
    for thread in threading.enumerate():
        if thread.ident == thread_id:
            return thread.name
    return "<unknown>"


class EveryLoopLagMonitor:
    """Watch every asyncio loop of the process while it runs.

    Installing wraps :meth:`asyncio.BaseEventLoop.run_forever` (which
    ``asyncio.run`` and ``run_until_complete`` go through), so each run of a
    pure-Python asyncio loop gets its own :class:`LoopLagMonitor`, stopped
    when the run ends. uvloop's loop does not inherit ``BaseEventLoop`` and is
    not covered: use :class:`LoopLagMonitor` with it.

    :param threshold_ms: see :class:`LoopLagMonitor`, in milliseconds.
    :param interval_ms: see :class:`LoopLagMonitor`, in milliseconds.
    :param stack_limit: see :class:`LoopLagMonitor`.
    :param log: see :class:`LoopLagMonitor`.
    :param full_stack: see :class:`LoopLagMonitor`.
    """

    def __init__(
        self,
        threshold_ms: float = 100.0,
        *,
        interval_ms: float | None = None,
        stack_limit: int = 50,
        log: bool = True,
        full_stack: bool = False,
    ) -> None:
        # Validate now rather than inside the first run_forever.
        LoopLagMonitor(threshold_ms, interval_ms=interval_ms)
        self.threshold_ms = threshold_ms
        self.interval_ms = interval_ms
        self.stack_limit = stack_limit
        self.log = log
        self.full_stack = full_stack
        #: Every :class:`LoopLag` reported by any loop since installation.
        self.events: list[LoopLag] = []
        self._original: Any = None
        self._lock = threading.Lock()
        self._watchers: set[LoopLagMonitor] = set()
        self._finished_stalls = 0

    @property
    def stalls_seen(self) -> int:
        """How many holds were caught, counted when each one's stack is captured."""
        with self._lock:
            return self._finished_stalls + sum(w.stalls_seen for w in self._watchers)

    def install(self) -> EveryLoopLagMonitor:
        """Wrap ``BaseEventLoop.run_forever``; a second call does nothing.

        :return: this monitor, for chaining.
        """
        import asyncio

        with self._lock:
            if self._original is not None:
                return self
            original = asyncio.BaseEventLoop.__dict__["run_forever"]
            monitor = self

            def run_forever(loop: asyncio.BaseEventLoop) -> None:
                watcher = LoopLagMonitor(
                    monitor.threshold_ms,
                    interval_ms=monitor.interval_ms,
                    stack_limit=monitor.stack_limit,
                    log=monitor.log,
                    on_lag=monitor.events.append,
                    full_stack=monitor.full_stack,
                )
                with monitor._lock:
                    monitor._watchers.add(watcher)
                watcher.start(loop, thread_id=threading.get_ident())
                try:
                    original(loop)
                finally:
                    watcher.stop()
                    with monitor._lock:
                        monitor._watchers.discard(watcher)
                        monitor._finished_stalls += watcher.stalls_seen

            run_forever.__wrapped__ = original  # type: ignore[attr-defined]
            asyncio.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign,assignment]
            self._original = original
        return self

    def uninstall(self) -> None:
        """Put the original ``run_forever`` back; a second call does nothing."""
        import asyncio

        with self._lock:
            if self._original is None:
                return
            asyncio.BaseEventLoop.run_forever = self._original  # type: ignore[method-assign]
            self._original = None

    def __enter__(self) -> EveryLoopLagMonitor:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.uninstall()


__all__ = ["EveryLoopLagMonitor", "LoopLagMonitor"]
