"""Read an unfinished request body ahead of the app, so that a client leaving is noticed.

uvicorn, hypercorn, daphne and granian all drop ``send()`` calls silently
once the client has gone, so a streaming response learns of a disconnect only
from ``receive()`` returning ``http.disconnect``. When the request body is
complete, ``Request`` watches ``receive()`` for that directly. When it is not
(a body larger than ``buffer_size`` the app has not read, a chunked upload), a
watcher cannot simply drop what ``receive()`` returns: the app may still read
the body while its response streams. :class:`BodyWatch` therefore keeps the
body messages it reads, in order, for the app's reads and the final drain, and
stops reading while it holds ``limit`` bytes, so the memory it takes stays
bounded and an app that reads slowly still holds the client back.

While it holds ``limit`` bytes it cannot read on without holding more, so it
would not see the client leave. An app that has read none of the body since
its response began streaming (not even from its ``wsgi.input`` buffer), and
sends another block while the watch is full,
is taken to ignore the body (an upload answered with a stream, as Starlette's
``StreamingResponse`` ignores it while it listens for ``http.disconnect``):
:meth:`BodyWatch.streamed` then lets the watch read on, dropping the body bytes
it cannot hold, so the disconnect is seen and the request aborted as anywhere
else in the bridge. Nothing is lost silently: an app that reads after all gets
the bytes held, then :class:`~asgishift.bridge.RequestBodyTooLarge` (an
``OSError``) where the dropped bytes began. An app that reads while it streams
keeps the watch holding, never loses a byte, and still holds the client back.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable
from typing import Final

from asgishift._types import Message, Receive
from asgishift.bridge._errors import RequestBodyTooLarge

__all__ = ["BodyWatch", "WatchMode"]

_DISCONNECT: Final[Message] = {"type": "http.disconnect"}
#: The type of the queue entry that stands for the body bytes dropped in
#: ``DROPPING`` mode: ``{"type": _GAP, "size": bytes dropped, "more_body": bool}``.
_GAP: Final = "asgishift.body_dropped"


class WatchMode(enum.Enum):
    """What a :class:`BodyWatch` does with the server's messages.

    ``HOLDING``
        reads ahead, holding at most ``limit`` body bytes for the app.
    ``DROPPING``
        the app ignores the body (:meth:`BodyWatch.streamed`): reads on,
        dropping the body bytes it cannot hold, to see the client leave.
    ``STOPPED``
        the client left or :meth:`BodyWatch.stop` was called: no reading ahead.
    """

    HOLDING = 0
    DROPPING = 1
    STOPPED = 2


HOLDING: Final = WatchMode.HOLDING
DROPPING: Final = WatchMode.DROPPING
STOPPED: Final = WatchMode.STOPPED


class BodyWatch:
    """Read ahead of the app's reads of one request body; tell when the client leaves.

    :meth:`start` a task that reads, then take every later message through
    :meth:`receive` instead of the server's ``receive``: together they deliver
    exactly the server's messages, in order.

    :param receive: the server's ``receive`` (ASGI HTTP spec, "Request").
    :param limit: the most body bytes held ahead of the app (bytes, ≥ 0). One
        message is always taken, whatever its size, so that a watch with
        ``limit`` 0 still sees the client leave while the app reads.
    :param on_leave: called (on the loop) once the client has gone: the
        server's ``receive`` returned ``http.disconnect`` or raised.

    :param progress: returns how many body bytes the app has read so far
        (from its ``wsgi.input`` buffer too); ``None``: only messages taken
        through :meth:`receive` count as reading (see :meth:`streamed`).

    :attr:`dropped` counts the body bytes dropped in ``DROPPING`` mode.

    Not thread-safe: use it from the event loop only.
    """

    __slots__ = (
        "_arrived",
        "_held",
        "_limit",
        "_on_leave",
        "_progress",
        "_queue",
        "_receive",
        "_room",
        "_start_progress",
        "_taken",
        "dropped",
        "mode",
        "task",
    )

    def __init__(
        self,
        receive: Receive,
        limit: int,
        on_leave: Callable[[], None],
        progress: Callable[[], int] | None = None,
    ) -> None:
        self._receive = receive
        self._progress = progress
        self._start_progress = 0
        self._limit = limit
        self._on_leave = on_leave
        self._queue: deque[Message] = deque()
        self._held = 0  # body bytes in _queue (bytes)
        self._arrived = asyncio.Event()  # set when _queue gains a message or the watch ends
        self._room = asyncio.Event()  # set when a body message leaves _queue, or on DROPPING
        self._taken = 0  # body messages the app took through receive()
        self.dropped = 0  # body bytes dropped in DROPPING mode (bytes)
        self.mode = STOPPED
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start reading ahead in a task of the running loop; return that task."""
        self.mode = HOLDING
        if self._progress is not None:
            self._start_progress = self._progress()
        self.task = asyncio.get_running_loop().create_task(self._watch())
        return self.task

    async def stop(self) -> None:
        """Stop reading ahead; :meth:`receive` then reads the server itself once nothing is held.

        Reading in the caller's task matters to the final drain: hypercorn
        must have a free place in its queue when the response ends (see
        ``_server_io.drain_body``).
        """
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))
        self.mode = STOPPED
        self._arrived.set()

    def streamed(self) -> None:
        """Note that the app sent another response block (call it on the loop).

        If the app has read none of the body since :meth:`start` (``progress``
        has not moved, and it took no message through :meth:`receive`) and
        the watch holds ``limit`` bytes, the app is taken to ignore the body:
        the watch switches to ``DROPPING`` and reads on.
        """
        if (
            self.mode is HOLDING
            and not self._taken
            and self._full()
            and (self._progress is None or self._progress() == self._start_progress)
        ):
            self.mode = DROPPING
            self._room.set()

    def _full(self) -> bool:
        """Whether the watch holds ``limit`` body bytes (one message is always taken)."""
        return bool(self._held) and self._held >= self._limit

    async def _watch(self) -> None:
        """Read messages until the client leaves (the task :meth:`start` runs)."""
        queue = self._queue
        while True:
            while self.mode is HOLDING and self._full():
                self._room.clear()
                await self._room.wait()
            try:
                message = await self._receive()
            except Exception:  # whatever receive() raises, the client is gone
                message = _DISCONNECT
            if message["type"] != "http.request":
                queue.append(message)
                self._arrived.set()
                self.mode = STOPPED
                self._on_leave()
                return
            size = len(message.get("body", b""))
            if self.mode is DROPPING and (self._full() or (queue and queue[-1]["type"] is _GAP)):
                # Past what the watch holds: keep only the count and whether more follow.
                self.dropped += size
                more = bool(message.get("more_body", False))
                if queue[-1]["type"] is _GAP:
                    queue[-1]["size"] += size
                    queue[-1]["more_body"] = more
                else:
                    queue.append({"type": _GAP, "size": size, "more_body": more})
            else:
                queue.append(message)
                self._held += size
            self._arrived.set()

    async def receive(self) -> Message:
        """Return the server's next message, as its ``receive()`` would have.

        Once the client has left, every call returns the message that said so.
        Where ``DROPPING`` dropped body bytes, the app's read fails; after
        :meth:`stop` (the final drain) an empty body message stands for them.

        :raise RequestBodyTooLarge: where the dropped bytes began, before
            :meth:`stop`; every later call raises it too.
        :raise Exception: what the server's ``receive`` raises, after
            :meth:`stop` and with nothing held.
        """
        queue = self._queue
        while not queue:
            if self.mode is STOPPED:
                return await self._receive()
            self._arrived.clear()
            await self._arrived.wait()
        message = queue[0]
        kind = message["type"]
        if kind is _GAP:
            if self.mode is not STOPPED:
                raise RequestBodyTooLarge(
                    f"{self.dropped} bytes of the request body were dropped: the app "
                    f"streamed its response without reading the body, and at most "
                    f"drain_body_size ({self._limit} bytes) is held for it"
                )
            queue.popleft()
            return {"type": "http.request", "body": b"", "more_body": message["more_body"]}
        if kind != "http.request":
            return message  # kept: after it the server has nothing more to say
        queue.popleft()
        self._taken += 1
        self._held -= len(message.get("body", b""))
        self._room.set()
        return message
