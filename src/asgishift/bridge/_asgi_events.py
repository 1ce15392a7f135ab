"""Check the order and shape of an ASGI app's response messages, and translate them.

This module is pure: no I/O, no threads, no event loop, no logging. It is the
response half of :class:`~asgishift.bridge.ASGIToWSGI`: every message an app
passes to ``send()`` goes through :func:`advance`, which returns the next
:class:`Phase` of the response or raises :class:`ProtocolViolation` naming the
rule of the ASGI HTTP spec that the message breaks. :func:`start_args` turns
``http.response.start`` into PEP 3333's status line and header list.

The phases, as a transition table (ASGI HTTP spec, "Response Start",
"Response Body", and the "Path Send" and "Zero Copy Send" extensions)::

    START --http.response.start--> BODY
    BODY  --http.response.body / zerocopysend, more_body=True--> BODY
    BODY  --http.response.body / zerocopysend, more_body=False--> DONE
    BODY  --http.response.pathsend--> DONE
    anything else: ProtocolViolation
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

from asgishift.bridge import _response
from asgishift.bridge._errors import InvalidResponse

__all__ = [
    "PHASE_BODY",
    "PHASE_DONE",
    "PHASE_START",
    "RULES",
    "Phase",
    "ProtocolViolation",
    "advance",
    "body_bytes",
    "start_args",
    "status_line",
]


class Phase(enum.Enum):
    """Where one response stands, from the server's side of ``send()``."""

    START = "waiting for http.response.start"
    BODY = "sending the body"
    DONE = "complete"


# The phases as module constants. The hot paths read these: on Python 3.10 and
# 3.11 ``Phase.START`` goes through the enum metaclass's ``__getattr__`` hook and
# costs about 100 ns, a global about 7 ns.
PHASE_START: Final = Phase.START
PHASE_BODY: Final = Phase.BODY
PHASE_DONE: Final = Phase.DONE


#: The rules an app can break, by key; each names the spec section it follows.
RULES: dict[str, str] = {
    "start-first": (
        "http.response.start must be the first message of a response "
        "(ASGI HTTP spec, 'Response Start')"
    ),
    "start-once": (
        "http.response.start must be sent exactly once (ASGI HTTP spec, 'Response Start')"
    ),
    "after-done": (
        "no message may follow the last body message (more_body=False or "
        "http.response.pathsend) (ASGI HTTP spec, 'Response Body')"
    ),
    "unknown-type": (
        "an HTTP app may send only http.response.start, http.response.body and the "
        "extensions the scope offers (ASGI HTTP spec, 'HTTP'; 'Extensions')"
    ),
    "no-start": (
        "an app must send http.response.start before it returns (ASGI HTTP spec, 'Response Start')"
    ),
    "incomplete": (
        "an app must finish the body with more_body=False before it returns "
        "(ASGI HTTP spec, 'Response Body')"
    ),
    "status": "status must be an int from 100 to 999 (ASGI HTTP spec, 'Response Start')",
    "headers": (
        "headers must be an iterable of [name, value] byte-string pairs, each name an "
        "RFC 9110 token and no value with CR, LF or NUL (ASGI HTTP spec, 'Response Start')"
    ),
    "body": "body must be a byte string (ASGI HTTP spec, 'Response Body')",
    "pathsend": (
        "http.response.pathsend needs 'path', an absolute path as a str "
        "(ASGI 'Path Send' extension)"
    ),
}


class ProtocolViolation(RuntimeError):
    """Signal that an ASGI app broke a rule of the ASGI HTTP spec.

    Raised inside the app's ``send()`` (so the app sees it at the offending line)
    and recorded by the bridge, which answers 500 and logs :attr:`rule`.

    :param key: a key of :data:`RULES`.
    :param detail: what the app did, for the log.
    """

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        self.rule = RULES[key]
        self.detail = detail
        super().__init__(f"{detail}: {self.rule}")


_BODY_TYPES = frozenset({"http.response.body", "http.response.zerocopysend"})
#: Status code -> status line, so the common ones are built once.
_STATUS_CACHE: dict[int, str] = {}


def advance(phase: Phase, message: Mapping[str, Any]) -> Phase:
    """Return the response phase after ``message``, or raise for a message out of order.

    :param phase: the phase before the message.
    :param message: the dict the app passed to ``send()``.
    :return: the next phase (see the module's transition table).
    :raise ProtocolViolation: for a message the phase does not allow.
    """
    kind = message.get("type")
    if phase is PHASE_BODY:
        if kind in _BODY_TYPES:
            return PHASE_BODY if message.get("more_body", False) else PHASE_DONE
        if kind == "http.response.pathsend":
            return PHASE_DONE
        if kind == "http.response.start":
            raise ProtocolViolation("start-once", "http.response.start sent a second time")
    elif phase is PHASE_START:
        if kind == "http.response.start":
            return PHASE_BODY
        if kind in _BODY_TYPES or kind == "http.response.pathsend":
            raise ProtocolViolation("start-first", f"{kind} sent before http.response.start")
    else:
        raise ProtocolViolation("after-done", f"{kind} sent after the response was complete")
    raise ProtocolViolation("unknown-type", f"unexpected message type {kind!r}")


def status_line(status: int) -> str:
    """Return PEP 3333's status line, ``"200 OK"``, for an ASGI status code.

    :param status: an int from 100 to 999.
    :raise ProtocolViolation: for anything else (rule ``status``).
    """
    if type(status) is int:
        line = _STATUS_CACHE.get(status)
        if line is not None:
            return line
    try:
        line = _response.status_line(status)
    except InvalidResponse as exc:
        raise ProtocolViolation("status", f"status {status!r}") from exc
    _STATUS_CACHE[status] = line  # at most 900 entries
    return line


def start_args(message: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """Return ``(status, headers)`` for ``start_response`` from ``http.response.start``.

    Header names and values are decoded from latin-1, PEP 3333's "native
    strings" ("Unicode Issues").

    :param message: an ``http.response.start`` message.
    :raise ProtocolViolation: for a bad status (rule ``status``) or headers
        (rule ``headers``).
    """
    line = status_line(message.get("status"))  # type: ignore[arg-type]
    raw = message.get("headers", ())
    try:
        headers = _response.decode_headers(raw)
    except (InvalidResponse, TypeError) as exc:
        raise ProtocolViolation("headers", f"headers {raw!r}") from exc
    return line, headers


def body_bytes(message: Mapping[str, Any]) -> bytes:
    """Return the ``body`` of an ``http.response.body`` message as ``bytes``.

    :raise ProtocolViolation: when ``body`` is not bytes-like (rule ``body``).
    """
    body = message.get("body", b"")
    if type(body) is bytes:
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise ProtocolViolation("body", f"body of type {type(body).__name__}")
