"""Notice a gunicorn worker's graceful stop, and end ASGIToWSGI's open requests in time.

On ``SIGTERM`` gunicorn's master tells each worker to stop and, ``graceful_timeout``
seconds later, kills the workers still running with ``SIGKILL``. A worker waits the
same ``graceful_timeout`` for its open requests before it exits, so one that serves
a request that does not end by itself (a server-sent event stream) reaches the end
of its wait as the master's ``SIGKILL`` arrives: the stream's clean-up and the app's
lifespan shutdown, which run after that wait, were often killed half-way, and under
the sync worker always.

:class:`ServerStop` watches, on the process's event loop, whether the gunicorn worker
serving this process is still alive (``Worker.alive``, which its ``SIGTERM``
handler clears, as do ``--max-requests`` and ``SIGQUIT``). From the moment it
is not, the open requests get ``max(graceful_timeout - reserve, graceful_timeout / 2)``
seconds to end by themselves; then their tasks are cancelled (their ``finally`` blocks
run, a stream is cut short), so the worker exits and runs lifespan shutdown within the
``reserve`` seconds left before the master's ``SIGKILL``.

The worker is found through the ``SIGTERM`` handler gunicorn installs in it (a bound
method of its ``Worker``; ``signal.getsignal`` may be called from any thread). Under
any other server nothing is found and nothing is polled.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import sys
import time
from collections.abc import Set as AbstractSet
from typing import Any, Final, Protocol

__all__ = ["POLL_INTERVAL", "Cancellable", "ServerStop", "StopState", "gunicorn_worker"]

logger = logging.getLogger("asgishift.bridge")

#: Seconds between two looks at the worker's ``alive`` flag (and, in a gunicorn
#: process whose worker has not installed its signal handlers yet, for the worker).
POLL_INTERVAL: Final = 0.2
#: How many times to look again for a gunicorn worker not found at the first look.
_FIND_TRIES: Final = 150


class Cancellable(Protocol):
    """An open request whose task can be ended (on the loop's thread)."""

    def cancel(self) -> None:
        """Disconnect the app and cancel its task."""


class StopState(enum.Enum):
    """Where the watch on the server's worker stands."""

    IDLE = "idle"  # not looking: no gunicorn worker found (yet)
    WATCHING = "watching"  # a gunicorn worker was found and is alive
    STOPPING = "stopping"  # the worker stops: the open requests are cut at a deadline
    ENDED = "ended"  # the open requests were cut


def gunicorn_worker() -> Any | None:
    """Return the gunicorn ``Worker`` of this process, or ``None`` outside one.

    gunicorn's workers install a bound method of the worker as their ``SIGTERM``
    handler (``Worker.init_signals``). gunicorn is never imported here.
    """
    base = sys.modules.get("gunicorn.workers.base")
    if base is None:
        return None
    try:
        handler = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        return None
    owner = getattr(handler, "__self__", None)
    worker_class = getattr(base, "Worker", None)
    if worker_class is None or not isinstance(owner, worker_class):
        return None
    return owner


class ServerStop:
    """Watch this process's gunicorn worker and cut the open requests before its kill.

    Lives on the process's event loop; every method but :meth:`deadline` runs on the
    loop's thread.

    :param loop: the process's event loop.
    :param open_requests: the requests whose task runs on ``loop`` (shared with the
        loop thread, which adds and removes them).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, open_requests: AbstractSet[Cancellable]
    ) -> None:
        self._loop = loop
        self._open_requests = open_requests
        self.state = StopState.IDLE
        #: Seconds of ``graceful_timeout`` kept back for the worker's exit.
        self.reserve = 0.0
        self._worker: Any = None
        self._handle: asyncio.Handle | None = None
        #: ``time.monotonic()`` at which gunicorn's master kills this worker, once its
        #: stop has been seen; ``None`` before (or outside gunicorn).
        self.killed_at: float | None = None
        self._finds = 0  # looks for a worker that had not installed its handlers yet

    def arm(self, reserve: float) -> None:
        """Start watching, if a gunicorn worker serves this process and no watch runs.

        Called at a process's first request and whenever a request has run for a
        while; cheap when the watch already runs.

        :param reserve: seconds of ``graceful_timeout`` to keep for ending the open
            requests and running lifespan shutdown (the largest asked for is kept).
        """
        self.reserve = max(self.reserve, reserve)
        if self.state is StopState.IDLE:
            if self._handle is not None:
                self._handle.cancel()
            self._find()

    def _find(self) -> None:
        self._handle = None
        if self.state is not StopState.IDLE:
            return
        worker = gunicorn_worker()
        if worker is not None:
            self._worker = worker
            self.state = StopState.WATCHING
            self._poll()
        elif "gunicorn.workers.base" in sys.modules and self._finds < _FIND_TRIES:
            # gunicorn, but its worker has not installed its handlers yet (startup()
            # from a post_fork hook runs before), or this is its --preload master.
            # The next long request arms the watch again.
            self._finds += 1
            self._handle = self._loop.call_later(POLL_INTERVAL, self._find)

    def _poll(self) -> None:
        self._handle = None
        if self.state is not StopState.WATCHING:
            return
        if getattr(self._worker, "alive", True):
            self._handle = self._loop.call_later(POLL_INTERVAL, self._poll)
            return
        self.state = StopState.STOPPING
        graceful = _graceful_timeout(self._worker)
        if graceful is None:
            # No deadline known: the loop thread's exit hook ends what is still open.
            return
        self.killed_at = time.monotonic() + graceful
        wait = max(graceful - self.reserve, graceful / 2)
        if self._open_requests:
            logger.info(
                "asgishift: the gunicorn worker is stopping; %d open request(s) get %.1f s "
                "to end, then are cancelled so that the worker exits and runs lifespan "
                "shutdown within graceful_timeout (%s s)",
                len(self._open_requests),
                wait,
                graceful,
            )
        self._handle = self._loop.call_later(wait, self._cut, self.killed_at)

    def _cut(self, killed_at: float) -> None:
        """Cancel every request still open; ``killed_at`` is the master's kill time."""
        self._handle = None
        self.state = StopState.ENDED
        requests = list(self._open_requests)
        if not requests:
            return
        logger.warning(
            "asgishift: %d request(s) still open %.1f s before gunicorn's graceful_timeout "
            "ends; cancelling them so that the worker exits before it is killed",
            len(requests),
            max(killed_at - time.monotonic(), 0.0),
        )
        for request in requests:
            request.cancel()

    def deadline(self) -> float | None:
        """Return ``killed_at``; from any thread, once the watched worker has stopped.

        A worker without open requests exits at once on ``SIGTERM``, possibly before
        the loop's next look: the deadline is then taken from now (late by the
        moments since the signal, which a caller's margin covers).
        """
        killed_at = self.killed_at
        worker = self._worker
        if killed_at is None and worker is not None and not getattr(worker, "alive", True):
            graceful = _graceful_timeout(worker)
            if graceful is not None:
                killed_at = time.monotonic() + graceful
        return killed_at

    def close(self) -> None:
        """Stop watching (the loop is stopping)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.state = StopState.ENDED


def _graceful_timeout(worker: Any) -> float | None:
    """Return the worker's ``graceful_timeout`` in seconds, or ``None`` if it has none."""
    value = getattr(getattr(worker, "cfg", None), "graceful_timeout", None)
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    return None
