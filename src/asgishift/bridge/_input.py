"""The streaming ``wsgi.input`` used when a request body spans several ASGI messages.

A body that arrives in one ``http.request`` message (``more_body`` false) is
handed to the app as an :class:`io.BytesIO`, which needs no event-loop crossing
at all; this module covers the rest: bodies streamed in several messages,
chunked uploads and HTTP/2 bodies without ``Content-Length``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = ["StreamInput"]

#: Returns the next body chunk and whether more follow; raises
#: :class:`~asgishift.bridge.ClientDisconnected` when the client has gone.
Fetch = Callable[[], tuple[bytes, bool]]


class StreamInput:
    """Read a request body that arrives in pieces, as a PEP 3333 input stream.

    Each piece is pulled from the event loop only when the app asks for more
    bytes than are buffered, so the client is slowed down (backpressure) rather
    than the body piling up in memory: at most the app's read size plus one
    ASGI message is held.

    :param first: the body of the first ``http.request`` message (bytes).
    :param fetch: called on the worker thread to get the next chunk; see
        :data:`Fetch`. It raises :class:`~asgishift.bridge.ClientDisconnected` (an
        :class:`OSError`) after a disconnect, which every read method lets through
        so that an upload is never silently truncated.

    :attr:`consumed` counts the body bytes handed to the app so far; the event
    loop may read it to tell whether the app reads its body at all.
    """

    __slots__ = ("_buf", "_fetch", "_more", "_pos", "consumed")

    def __init__(self, first: bytes, fetch: Fetch) -> None:
        self._buf = bytearray(first)
        self._pos = 0
        self._fetch = fetch
        self._more = True
        self.consumed = 0  # bytes returned by the read methods

    def _fill(self) -> bool:
        """Append the next non-empty chunk to the buffer; return ``False`` at EOF."""
        while self._more:
            chunk, self._more = self._fetch()
            if chunk:
                if self._pos:
                    # Drop what was consumed before growing: positions shift,
                    # callers keep offsets relative to ``_pos``.
                    del self._buf[: self._pos]
                    self._pos = 0
                self._buf += chunk
                return True
        return False

    def _take(self, end: int) -> bytes:
        """Return ``_buf[_pos:end]`` and consume it (one copy)."""
        buf = self._buf
        if self._pos == 0 and end >= len(buf):
            data = bytes(buf)
            buf.clear()
            self.consumed += len(data)
            return data
        with memoryview(buf) as view:
            data = bytes(view[self._pos : end])
        if end >= len(buf):
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        self.consumed += len(data)
        return data

    def read(self, size: int | None = -1, /) -> bytes:
        """Read up to ``size`` bytes, or everything left for ``None`` or a negative size.

        :return: fewer than ``size`` bytes only at the end of the body.
        :raise ClientDisconnected: if the client went away.
        :raise RequestBodyTooLarge: if the body exceeds ``max_body_size``.
        """
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buf))
        while len(self._buf) - self._pos < size and self._fill():
            pass
        return self._take(min(self._pos + size, len(self._buf)))

    def readline(self, size: int | None = -1, /) -> bytes:
        """Read one line including its ``b"\\n"``, at most ``size`` bytes if given.

        :raise ClientDisconnected: if the client went away.
        :raise RequestBodyTooLarge: if the body exceeds ``max_body_size``.
        """
        limit = -1 if size is None else size
        scanned = 0  # bytes after _pos already searched for a newline
        while True:
            idx = self._buf.find(b"\n", self._pos + scanned)
            if idx >= 0:
                end = idx + 1
                break
            scanned = len(self._buf) - self._pos
            if 0 <= limit <= scanned or not self._fill():
                end = len(self._buf)
                break
        if limit >= 0:
            end = min(end, self._pos + limit)
        return self._take(end)

    def readlines(self, hint: int | None = -1, /) -> list[bytes]:
        """Read lines until EOF, or until their total length reaches ``hint`` bytes.

        :raise ClientDisconnected: if the client went away.
        """
        lines: list[bytes] = []
        total = 0
        limit = -1 if hint is None else hint
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < limit <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over lines, as a file does."""
        return self

    def __next__(self) -> bytes:
        """Return the next line.

        :raise StopIteration: at the end of the body.
        """
        line = self.readline()
        if not line:
            raise StopIteration
        return line
