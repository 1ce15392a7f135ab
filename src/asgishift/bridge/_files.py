"""``wsgi.file_wrapper`` and ``wsgi.errors`` for the WSGI→ASGI bridge (PEP 3333)."""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_BLOCK_SIZE", "MIN_BLOCK_SIZE", "ErrorStream", "FileWrapper"]

logger = logging.getLogger("asgishift.bridge")

#: Apps usually ask for 8 KiB blocks; every block streamed costs two
#: event-loop crossings, so blocks are read at least this large (bytes).
MIN_BLOCK_SIZE = 65536
#: ... and at most this large, so one block never holds much memory (bytes).
MAX_BLOCK_SIZE = 1024 * 1024


#: The ``close`` methods that only release the file descriptor: those of the
#: objects ``open()`` returns. A file with any other ``close()`` (one that may
#: delete the file) is never sent by path (:meth:`FileWrapper.sendable_path`).
_PLAIN_CLOSES: frozenset[Any] = frozenset(
    {
        io.FileIO.close,
        io.BufferedReader.close,
        io.BufferedRandom.close,
        io.BufferedWriter.close,
    }
)


class FileWrapper:
    """Wrap a file-like object as a response iterable (PEP 3333 ``wsgi.file_wrapper``).

    Iterating yields blocks of :data:`MIN_BLOCK_SIZE` to :data:`MAX_BLOCK_SIZE` bytes until
    ``read`` returns nothing. When the server offers the
    ``http.response.pathsend`` extension, the bridge asks :meth:`sendable_path`
    instead and lets the server send the file by path.

    :param filelike: an object with ``read(size) -> bytes``; ``close()`` is
        forwarded if present.
    :param block_size: the block size the app asked for (bytes).
    """

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = min(max(int(block_size), MIN_BLOCK_SIZE), MAX_BLOCK_SIZE)
        #: Bytes iteration may still read; ``None``: to the end of the file (see :meth:`limit`).
        self.left: int | None = None

    def limit(self, count: int) -> None:
        """Read at most ``count`` more bytes: the response's declared ``Content-Length``.

        PEP 3333 ("Handling the Content-Length Header"): a server stops iterating
        once the declared length is sent. A ranged response (``f.seek(start)`` and
        a ``Content-Length`` of the range) then reads only its range, not the rest
        of the file, before the response can end.
        """
        self.left = count

    def __iter__(self) -> FileWrapper:
        """Return the wrapper itself: it is its own iterator."""
        return self

    def __next__(self) -> bytes:
        """Return the next block.

        :raise StopIteration: at end of file.
        """
        left = self.left
        if left is None:
            data: bytes = self.filelike.read(self.block_size)
        elif left > 0:
            data = self.filelike.read(min(self.block_size, left))
            self.left = left - len(data)
        else:
            raise StopIteration
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        """Close the wrapped file if it has a ``close`` method (PEP 3333)."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def sendable_path(self, length: int | None = None) -> str | None:
        """Return an absolute path the server may send instead of iterating, or ``None``.

        :param length: the response's declared ``Content-Length`` (bytes): the file
            must be exactly that long, since the server sends all of it (a range of
            a file, ``Range: bytes=0-99``, is iterated instead).

        Only a regular file read from its start qualifies, and only if the name
        still points at the very file that is open (same device and inode), so
        the server sends exactly the bytes iteration would have produced. The
        file's ``close()`` must be the :mod:`io` module's own (:data:`_PLAIN_CLOSES`,
        what ``open()`` returns, subclasses that keep it): the bridge closes the
        iterable once the message is handed over, and the server opens the path
        later (granian does, after ``send()`` has returned), so a ``close()`` that
        deletes the file (``tempfile.NamedTemporaryFile``) left the server nothing
        to open and the client got ``404``.
        """
        filelike = self.filelike
        name = getattr(filelike, "name", None)
        if not isinstance(name, (str, bytes)):
            return None
        if getattr(type(filelike), "close", None) not in _PLAIN_CLOSES:
            return None
        try:
            if filelike.tell() != 0:
                return None
            opened = os.fstat(filelike.fileno())
            path = os.path.abspath(os.fsdecode(name))
            named = os.stat(path)
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(opened.st_mode):
            return None
        if length is not None and opened.st_size != length:
            return None
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            return None
        return path


class ErrorStream:
    """Route ``wsgi.errors`` writes to the ``asgishift.bridge`` logger at ERROR level.

    PEP 3333 "Input and Error Streams": ``write(str)``, ``writelines`` and
    ``flush``. Each write is logged on its own, without its trailing newline;
    writes that are only whitespace are dropped (``print()`` writes the newline
    separately).
    """

    def write(self, text: str) -> None:
        """Log ``text`` at ERROR level."""
        text = text.rstrip("\r\n")
        if text.strip():
            logger.error("wsgi.errors: %s", text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Log each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Do nothing: every write is logged at once."""
