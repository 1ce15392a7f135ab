"""Refuse reads of a streamed request body on the event loop that delivers it.

A sync route's ``async def`` hook or error handler runs on the server's loop
while the route's worker thread waits (:class:`~._loop.LoopBinding`). A body
that arrives in several ASGI messages is the bridge's streaming
``wsgi.input``, which fetches each further message through that same loop; a
read from the loop thread would wait for itself and hang the server. Before
such a hook runs, :func:`guard_streamed_body` wraps the request's
``wsgi.input`` in :class:`LoopGuardedInput`, which reads through on any other
thread (the view keeps streaming the upload) and raises a clear error on the
loop's thread. A body that came in one message is a ``BytesIO`` and is left
alone: reading it needs no loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import has_request_context
from flask.globals import request_ctx

from asgishift.flask_integration._wire import StreamInput

__all__ = ["BodyReadOnLoop", "LoopGuardedInput", "guard_streamed_body"]


class BodyReadOnLoop(RuntimeError):
    """A streamed request body of a sync route was read on the event loop."""


class LoopGuardedInput:
    """A PEP 3333 input stream that refuses reads on one thread (the loop's).

    :param stream: the bridge's streaming ``wsgi.input``.
    :param loop_thread: :func:`threading.get_ident` of the event loop's thread.
    """

    def __init__(self, stream: StreamInput, loop_thread: int) -> None:
        self._stream = stream
        self._loop_thread = loop_thread

    def _check(self) -> None:
        if threading.get_ident() == self._loop_thread:
            raise BodyReadOnLoop(
                "the request body of a sync view was read by an async def function on the "
                "event loop (an async before_request or after_request function or error "
                "handler): the body streams in through that loop, so the read would never "
                "return. Read it in the view, or make that function a plain def "
                "(docs/flask.md, 'What runs where')"
            )

    def read(self, size: int | None = -1, /) -> bytes:
        """Read up to ``size`` bytes (PEP 3333 ``read``).

        :raise BodyReadOnLoop: on the event loop's thread.
        """
        self._check()
        return self._stream.read(size)

    def readline(self, size: int | None = -1, /) -> bytes:
        """Read one line (PEP 3333 ``readline``).

        :raise BodyReadOnLoop: on the event loop's thread.
        """
        self._check()
        return self._stream.readline(size)

    def readlines(self, hint: int | None = -1, /) -> list[bytes]:
        """Read lines until EOF or ``hint`` bytes (PEP 3333 ``readlines``).

        :raise BodyReadOnLoop: on the event loop's thread.
        """
        self._check()
        return self._stream.readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over lines (PEP 3333 ``__iter__``)."""
        return self

    def __next__(self) -> bytes:
        """Return the next line.

        :raise BodyReadOnLoop: on the event loop's thread.
        :raise StopIteration: at the end of the body.
        """
        self._check()
        return next(self._stream)


def guard_streamed_body(loop_thread: int) -> None:
    """Wrap the current request's streamed ``wsgi.input`` in :class:`LoopGuardedInput`.

    Call it on the worker thread before an ``async def`` function runs on the
    loop; without a request context, for a body in memory, or when already
    wrapped, it does nothing.

    :param loop_thread: :func:`threading.get_ident` of the event loop's thread.
    """
    if not has_request_context():
        return
    environ: dict[str, Any] = request_ctx.request.environ
    stream = environ.get("wsgi.input")
    if isinstance(stream, StreamInput):
        environ["wsgi.input"] = LoopGuardedInput(stream, loop_thread)
