"""A PEP 3333 response as it is produced, turned into ASGI messages (pure).

:class:`WSGIResponse` is fed what the app does (``start_response`` calls, body
blocks, the end of the iterable) and answers with the ASGI messages to send
now, if any. It does no I/O and takes no locks; the worker thread in
``_request.py`` carries its messages to the event loop. The rules it applies:

- ``start_response`` checks (PEP 3333 "The start_response() Callable"): the
  status line and headers (:func:`~._response.encode_start`), a second call only with
  ``exc_info`` and only before anything was sent;
- no body for HEAD and the no-body statuses, no ``Content-Length`` on the
  latter (:func:`~._response.body_allowed`);
- the hold-back policy (:func:`hold_back`);
- a body longer than its declared ``Content-Length`` is cut to it, the way
  gunicorn and asgiref do; the caller logs :attr:`WSGIResponse.dropped`, and
  :attr:`WSGIResponse.short` for a body that ends before it.
"""

from __future__ import annotations

import enum
from typing import Final

from asgishift._types import Message
from asgishift.bridge._errors import InvalidResponse
from asgishift.bridge._response import encode_start

__all__ = [
    "FILE",
    "FOREIGN_FILE",
    "ITERABLE_KINDS",
    "OTHER",
    "SIZED",
    "IterableKind",
    "ResponsePhase",
    "WSGIResponse",
    "hold_back",
    "holds_whole_body",
    "iterable_kind",
]

_START: Final = "http.response.start"
_BODY: Final = "http.response.body"


class ResponsePhase(enum.Enum):
    """Where a :class:`WSGIResponse` stands.

    ``NOT_STARTED`` → ``STARTED`` (``start_response`` called; status, headers
    and any held-back body are still here, and may be replaced through
    ``exc_info``) → ``SENT`` (the ``http.response.start`` message was handed
    out: the status can no longer change).
    """

    NOT_STARTED = "not started"
    STARTED = "started"
    SENT = "sent"


NOT_STARTED: Final = ResponsePhase.NOT_STARTED
STARTED: Final = ResponsePhase.STARTED
SENT: Final = ResponsePhase.SENT


class IterableKind(enum.Enum):
    """What a response iterable is, as far as sending its body goes (decided per type).

    ``SIZED``
        a sequence (its type has ``__len__``: a list, a tuple): the whole body
        is in memory.
    ``OTHER``
        any other iterable; a Django response among them holds its whole body
        when its ``streaming`` attribute is ``False`` (:func:`holds_whole_body`).
    ``FILE``
        the bridge's own ``wsgi.file_wrapper`` (``asgishift.bridge._files``),
        which may be sent by path.
    ``FOREIGN_FILE``
        another file wrapper: the stdlib's ``wsgiref.util.FileWrapper`` or
        Werkzeug's ``werkzeug.wsgi.FileWrapper`` (what ``wrap_file`` gives
        without a ``wsgi.file_wrapper``). Like ``FILE``, a response without a
        body (HEAD, 204, 304) closes it unread (PEP 3333 "Optional
        Platform-Specific File Handling": the server may skip iterating).
    """

    SIZED = "sized"
    OTHER = "other"
    FILE = "file"
    FOREIGN_FILE = "foreign file"


SIZED: Final = IterableKind.SIZED
OTHER: Final = IterableKind.OTHER
FILE: Final = IterableKind.FILE
FOREIGN_FILE: Final = IterableKind.FOREIGN_FILE

#: The file wrapper types, by ``(__module__, __qualname__)``: named rather than
#: imported, so this module stays pure and imports neither Werkzeug nor the
#: bridge's I/O modules. Exact types only: a subclass may iterate differently.
_FILE_WRAPPERS: Final[dict[tuple[str, str], IterableKind]] = {
    ("asgishift.bridge._files", "FileWrapper"): FILE,
    ("wsgiref.util", "FileWrapper"): FOREIGN_FILE,
    ("werkzeug.wsgi", "FileWrapper"): FOREIGN_FILE,
}

#: Response iterable type -> its :class:`IterableKind`. ``hasattr`` on a class
#: that lacks the attribute formats an AttributeError message on Python < 3.12
#: (about 0.4 µs a response); the few iterable types an app returns are cached.
#: The request hand-off reads it directly (``ITERABLE_KINDS.get(type(it))``, a
#: call less per response) and falls back to :func:`iterable_kind` on a miss.
ITERABLE_KINDS: dict[type, IterableKind] = {}
_KINDS_LIMIT = 256


def iterable_kind(iterable: object) -> IterableKind:
    """Return the :class:`IterableKind` of a response iterable (cached per type).

    :param iterable: what the WSGI app returned.
    """
    kind = type(iterable)
    found = ITERABLE_KINDS.get(kind)
    if found is None:
        found = _FILE_WRAPPERS.get((getattr(kind, "__module__", ""), kind.__qualname__))
        if found is None:
            found = SIZED if hasattr(kind, "__len__") else OTHER
        if len(ITERABLE_KINDS) < _KINDS_LIMIT:
            ITERABLE_KINDS[kind] = found
    return found


def holds_whole_body(iterable: object) -> bool:
    """Return whether a response iterable already holds its whole body in memory.

    True for a sequence (its type has ``__len__``: a list, a tuple) and for a
    Django response that is not streaming (``streaming`` is ``False``). Such a
    body may be held back without delaying it (:func:`hold_back`; PEP 3333
    "Buffering and Streaming").

    :param iterable: what the WSGI app returned.
    """
    kind = iterable_kind(iterable)
    return kind is SIZED or (kind is OTHER and getattr(iterable, "streaming", None) is False)


def hold_back(total: int, buffer_size: int, in_memory: bool, declared: int | None) -> bool:
    """Return whether a response body of ``total`` bytes so far may be held back.

    PEP 3333 "Buffering and Streaming": a server may not delay a block the app
    has produced. Holding one back delays nothing only when the whole body is
    already in memory (the iterable is a sequence, or a non-streaming Django
    response) or this block completes the declared ``Content-Length`` (Flask's
    one-item responses). Held-back bytes are bounded by ``buffer_size``.

    :param total: bytes held so far, the new block included.
    :param buffer_size: the most bytes ever held (``BridgeOptions.buffer_size``).
    :param in_memory: whether the iterable already holds the whole body.
    :param declared: the ``Content-Length`` the app declared (``None``: none).
    """
    return total <= buffer_size and (in_memory or total == declared)


class WSGIResponse:
    """The response of one WSGI call, from ``start_response`` to the last block.

    :param method: the request method (``"HEAD"`` responses get no body).
    :param buffer_size: the most body bytes held back (bytes, ≥ 0).

    Not thread-safe: one worker thread drives it. Methods that return a list
    return the ASGI messages to send now, in order; ``None`` means nothing.
    """

    __slots__ = (
        "buffer_size",
        "declared",
        "dropped",
        "has_body",
        "headers",
        "held",
        "held_size",
        "in_memory",
        "method",
        "phase",
        "short",
        "status",
        "written",
    )

    def __init__(self, method: str, buffer_size: int) -> None:
        self.method = method
        self.buffer_size = buffer_size
        self.phase = NOT_STARTED
        # status, headers, has_body and declared (the Content-Length, bytes)
        # are set by start(); nothing reads them before.
        self.status: int
        self.headers: list[tuple[bytes, bytes]]
        self.has_body: bool
        self.declared: int | None
        self.in_memory = False  # the iterable holds the whole body already
        # Held-back blocks; created by the first one (most responses hold one).
        self.held: list[bytes] | None = None
        self.held_size = 0
        self.written = 0  # body bytes accepted (held or sent), counted when declared
        self.dropped = 0  # body bytes past the declared Content-Length, cut off
        self.short = 0  # body bytes the declared Content-Length promised and the app never sent

    def start(self, status: object, headers: object, replacing: bool) -> None:
        """Record a ``start_response`` call (PEP 3333 "The start_response() Callable").

        :param status: the status line, e.g. ``"200 OK"``.
        :param headers: the header list.
        :param replacing: ``True`` when the app passed ``exc_info`` (the
            caller re-raises it instead when :attr:`phase` is ``SENT``).
        :raise InvalidResponse: for a second call without ``exc_info``, or a
            bad status line or header.
        """
        if replacing:
            # The replaced response's held-back body belonged to it.
            self.held = None
            self.held_size = 0
            self.written = 0
        elif self.phase is not NOT_STARTED:
            raise InvalidResponse(
                "start_response() called a second time without exc_info (PEP 3333); "
                "pass sys.exc_info() when replacing the response after an error"
            )
        # has_body is recomputed on each call: a 204 replaced through exc_info
        # by a 500 must get its body back.
        self.status, self.headers, self.has_body, self.declared = encode_start(
            status, headers, self.method
        )
        self.phase = STARTED

    def start_message(self) -> Message:
        """Return the ``http.response.start`` message and mark the response ``SENT``."""
        self.phase = SENT
        return {"type": _START, "status": self.status, "headers": self.headers}

    def body(self, chunk: bytes) -> list[Message] | None:
        """Take one non-empty body block the app produced (a ``bytes`` object).

        :return: the messages to send now; ``None`` when the block is held
            back (:func:`hold_back`) or dropped (no body, or past the declared
            ``Content-Length``).
        :raise InvalidResponse: before ``start_response``.
        """
        phase = self.phase
        if phase is NOT_STARTED:
            raise InvalidResponse(
                "the app produced a body block before calling start_response() (PEP 3333)"
            )
        if not self.has_body:
            return self._bodiless(len(chunk))
        declared = self.declared
        if declared is not None:
            room = declared - self.written
            if len(chunk) > room:
                self.dropped += len(chunk) - max(room, 0)
                if room <= 0:
                    return None
                chunk = chunk[:room]
            self.written += len(chunk)
        if phase is SENT:
            return [{"type": _BODY, "body": chunk, "more_body": True}]
        total = self.held_size + len(chunk)
        if hold_back(total, self.buffer_size, self.in_memory, declared):
            held = self.held
            if held is None:
                self.held = [chunk]
            else:
                held.append(chunk)
            self.held_size = total
            return None
        # Switch to streaming: the headers go out with the first data. The
        # held-back part and the new block stay separate messages so that no
        # message is larger than max(buffer_size, block).
        messages = [self.start_message()]
        if self.held:
            joined = b"".join(self.held)
            messages.append({"type": _BODY, "body": joined, "more_body": True})
            self.held = None
            self.held_size = 0
        messages.append({"type": _BODY, "body": chunk, "more_body": True})
        return messages

    def _bodiless(self, size: int) -> list[Message] | None:
        """Take a block of a response without a body (HEAD, 1xx, 204, 304); drop it.

        The start goes out when the same response with a body would have
        started (:func:`hold_back`), so that a HEAD request to an endless stream
        gets its headers, and the bridge then sees the client leave, instead of
        waiting for an end that never comes.

        :param size: the block's length (bytes, > 0).
        :return: the start and an empty body message once, else ``None``. Daphne
            and granian write a response's head only with its first body message.
        """
        if self.phase is SENT:
            return None
        total = self.held_size + size
        if hold_back(total, self.buffer_size, self.in_memory, self.declared):
            self.held_size = total  # counted, never kept
            return None
        return [self.start_message(), {"type": _BODY, "body": b"", "more_body": True}]

    def finish(self) -> list[Message]:
        """Return the messages that end the response (the iterable is exhausted).

        :raise InvalidResponse: if ``start_response`` was never called.
        """
        phase = self.phase
        if phase is NOT_STARTED:
            raise InvalidResponse("the app returned without calling start_response() (PEP 3333)")
        declared = self.declared
        if declared is not None and self.written < declared and self.has_body:
            self.short = declared - self.written
        if phase is SENT:
            return [{"type": _BODY}]
        held = self.held
        if held is None:
            body = b""
        elif len(held) == 1:
            body = held[0]
        else:
            body = b"".join(held)
        self.phase = SENT
        return [
            {"type": _START, "status": self.status, "headers": self.headers},
            {"type": _BODY, "body": body},
        ]

    def length_mismatch(self, where: str) -> str:
        """Describe a body longer (cut, :attr:`dropped`) or shorter (:attr:`short`) than declared.

        :param where: the request, e.g. ``"GET /shop/cart"``.
        :return: the log line, e.g. ``"the WSGI app sent 6 bytes more than its
            Content-Length of 5 (GET /); they were dropped"``.
        """
        if self.dropped:
            return (
                f"the WSGI app sent {self.dropped} bytes more than its Content-Length of "
                f"{self.declared} ({where}); they were dropped"
            )
        return (
            f"the WSGI app sent {self.short} bytes fewer than its Content-Length of "
            f"{self.declared} ({where}); the client waits for the rest until the connection closes"
        )

    def pathsend(self, path: str) -> list[Message] | None:
        """Return start and ``http.response.pathsend`` messages, or ``None`` if too late.

        Only a response that has started, sent nothing, held nothing back and
        has a body may be sent by path (ASGI "Path Send" extension).

        :param path: an absolute path of a regular file.
        """
        if self.phase is not STARTED or self.held or not self.has_body:
            return None
        return [self.start_message(), {"type": "http.response.pathsend", "path": path}]
