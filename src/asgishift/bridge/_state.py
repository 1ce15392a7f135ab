"""The states of one request in ``WSGIToASGI``, as explicit enums and a transition table.

Pure: no I/O, no threads. Two small machines describe a request, replacing
what used to be a row of booleans:

- :class:`Phase`, the hand-off between ``Request.serve`` on the event loop
  and the worker thread, moved by :data:`TRANSITIONS` (:func:`advance`);
- :class:`BodyPhase`, how much of the request body the server has delivered.

The response's own state (:class:`~asgishift.bridge._wsgi_response.ResponsePhase`)
lives with the pure response rules.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "ABORTED",
    "ABORT_EVENT",
    "CLOSED",
    "CLOSE_EVENT",
    "COMPLETE",
    "OPEN",
    "PARTIAL",
    "STARTED",
    "START_EVENT",
    "TOO_LARGE",
    "TRANSITIONS",
    "UNREAD",
    "BodyPhase",
    "Event",
    "Phase",
    "advance",
]


class Phase(enum.IntEnum):
    """Where the loop side of a request stands.

    ``OPEN``
        dispatched; the response has not started, so ``request_timeout`` applies.
    ``STARTED``
        the response start went through; no timeout any more.
    ``ABORTED``
        the client went away, the timeout fired or the task was cancelled:
        the worker must stop, and any item it still posts is answered with
        :class:`~asgishift.bridge.ClientDisconnected`.
    ``CLOSED``
        ``Request.serve`` returned: it takes no more items; the worker stops too.
    """

    OPEN = 0
    STARTED = 1
    ABORTED = 2
    CLOSED = 3


class Event(enum.IntEnum):
    """What moves a :class:`Phase`: the response started, the request was aborted, serve ended."""

    START = 0
    ABORT = 1
    CLOSE = 2


# Module constants for the hot paths: on Python 3.10 and 3.11 reading
# ``Phase.OPEN`` through the enum class costs about 100 ns, a global about 7 ns.
OPEN: Final = Phase.OPEN
STARTED: Final = Phase.STARTED
ABORTED: Final = Phase.ABORTED
CLOSED: Final = Phase.CLOSED
START_EVENT: Final = Event.START
ABORT_EVENT: Final = Event.ABORT
CLOSE_EVENT: Final = Event.CLOSE

#: ``TRANSITIONS[phase][event]`` is the next phase. Aborting is final until
#: ``serve`` closes; closing is final.
TRANSITIONS: Final[dict[Phase, dict[Event, Phase]]] = {
    OPEN: {Event.START: STARTED, Event.ABORT: ABORTED, Event.CLOSE: CLOSED},
    STARTED: {Event.START: STARTED, Event.ABORT: ABORTED, Event.CLOSE: CLOSED},
    ABORTED: {Event.START: ABORTED, Event.ABORT: ABORTED, Event.CLOSE: CLOSED},
    CLOSED: {Event.START: CLOSED, Event.ABORT: CLOSED, Event.CLOSE: CLOSED},
}


def advance(phase: Phase, event: Event) -> Phase:
    """Return the phase that follows ``phase`` on ``event`` (see :data:`TRANSITIONS`)."""
    return TRANSITIONS[phase][event]


class BodyPhase(enum.IntEnum):
    """How much of the request body the server has delivered.

    ``COMPLETE``
        all of it (the last ``http.request`` had ``more_body`` false).
    ``PARTIAL``
        more messages are to come; what is left is drained after the
        response when it is small (``drain_body_size``).
    ``TOO_LARGE``
        it grew past ``max_body_size``; the rest is never read.
    ``UNREAD``
        the response said ``Connection: close`` because the rest was too large
        or of unknown length; it is never read.

    Only ``PARTIAL`` changes: to ``COMPLETE`` (last message), ``TOO_LARGE`` or
    ``UNREAD``.
    """

    COMPLETE = 0
    PARTIAL = 1
    TOO_LARGE = 2
    UNREAD = 3


COMPLETE: Final = BodyPhase.COMPLETE
PARTIAL: Final = BodyPhase.PARTIAL
TOO_LARGE: Final = BodyPhase.TOO_LARGE
UNREAD: Final = BodyPhase.UNREAD
