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
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final

from asgishift._types import Message, Receive

__all__ = ["BodyWatch"]

_DISCONNECT: Final[Message] = {"type": "http.disconnect"}


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

    Not thread-safe: use it from the event loop only.
    """

    __slots__ = (
        "_arrived",
        "_held",
        "_limit",
        "_on_leave",
        "_queue",
        "_receive",
        "_room",
        "_watching",
        "task",
    )

    def __init__(self, receive: Receive, limit: int, on_leave: Callable[[], None]) -> None:
        self._receive = receive
        self._limit = limit
        self._on_leave = on_leave
        self._queue: deque[Message] = deque()
        self._held = 0  # body bytes in _queue (bytes)
        self._arrived = asyncio.Event()  # set when _queue gains a message or the watch ends
        self._room = asyncio.Event()  # set when a body message leaves _queue
        self._watching = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start reading ahead in a task of the running loop; return that task."""
        self._watching = True
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
        self._watching = False
        self._arrived.set()

    async def _watch(self) -> None:
        """Read messages until the client leaves (the task :meth:`start` runs)."""
        queue = self._queue
        while True:
            while self._held and self._held >= self._limit:
                self._room.clear()
                await self._room.wait()
            try:
                message = await self._receive()
            except Exception:  # whatever receive() raises, the client is gone
                message = _DISCONNECT
            queue.append(message)
            self._arrived.set()
            if message["type"] != "http.request":
                self._watching = False
                self._on_leave()
                return
            self._held += len(message.get("body", b""))

    async def receive(self) -> Message:
        """Return the server's next message, as its ``receive()`` would have.

        Once the client has left, every call returns the message that said so.

        :raise Exception: what the server's ``receive`` raises, after
            :meth:`stop` and with nothing held.
        """
        queue = self._queue
        while not queue:
            if not self._watching:
                return await self._receive()
            self._arrived.clear()
            await self._arrived.wait()
        message = queue[0]
        if message["type"] != "http.request":
            return message  # kept: after it the server has nothing more to say
        queue.popleft()
        self._held -= len(message.get("body", b""))
        self._room.set()
        return message
