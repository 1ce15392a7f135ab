"""Open the files the audit reads without ever waiting on a FIFO.

Every file the audit opens to read (source files, ``.gitignore`` files, the
``pyproject.toml`` settings, a ``--baseline``, the cache) goes through
:func:`open_regular`: a FIFO, socket or device with one of those names is
refused at once instead of blocking the run until a writer appears.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import BinaryIO

#: The :class:`~asgishift.audit._model.FileError` message of a path that is
#: not a regular file (a FIFO, socket or device named ``*.py``).
NOT_REGULAR = "not a regular file; remove it or add it to `exclude`"
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFile(OSError):
    """The path is a FIFO, socket or device, not a regular file: it is not read."""


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file for reading, refusing anything but a regular file.

    The file is opened with ``O_NONBLOCK`` (no effect on a regular file), so
    a FIFO does not wait for a writer, and its type is checked on the open
    descriptor, so it cannot be swapped after the check. Symbolic links are
    followed.

    :param path: the file's path.
    :return: the open file, binary mode (blocking reads are fine: it is regular).
    :raise NotRegularFile: when ``path`` is a FIFO, socket, device or directory.
    :raise OSError: when it cannot be opened (``FileNotFoundError`` when absent).
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        # A Unix socket cannot be opened at all (ENXIO on Linux); a directory
        # gives EISDIR on some systems.
        mode = stat.S_IFREG
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(exc.errno, "not a regular file", os.fspath(path)) from exc
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(0, "not a regular file", os.fspath(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """Return the bytes of a regular file (see :func:`open_regular`).

    :param path: the file's path.
    :return: its whole content.
    :raise NotRegularFile: when ``path`` is not a regular file.
    :raise OSError: when it cannot be opened or read.
    """
    with open_regular(path) as handle:
        return handle.read()


__all__ = ["NOT_REGULAR", "NotRegularFile", "open_regular", "read_regular"]
