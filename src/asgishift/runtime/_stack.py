"""Stacks of runtime reports, trimmed to the application's own frames.

A blocking call under a server is typically thirty frames deep, most of them the
server, the framework, the standard library and asgishift itself. By default a
report keeps the application's frames and folds each run of *library* frames into
one line (``  … 7 library frames …``); ``--full-stack`` (``asgishift serve``) or
``--asgishift-full-stack`` (pytest) prints every frame.

A frame is a library frame when its file lies under the standard library, an
installed-packages directory (``site-packages``/``dist-packages``, the running
interpreter's ``purelib``/``platlib``) or the :mod:`asgishift` package, or is a
frozen module (``<frozen importlib._bootstrap>``). Every other file, the project's
and its tests', is an application frame. A stack with no application frame is
printed whole: folding all of it would show nothing.
"""

from __future__ import annotations

import functools
import os
import sysconfig
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})


@dataclass(frozen=True)
class StackFrame:
    """One frame of a reported stack, as plain values (no live frame objects).

    :param filename: the code's file name as Python reports it.
    :param lineno: 1-based line being run.
    :param name: the function's name.
    :param line: the stripped source line, or ``""`` when unavailable.
    """

    filename: str
    lineno: int
    name: str
    line: str

    def format(self) -> str:
        """Two lines in :mod:`traceback`'s layout (one when the source is unknown)."""
        text = f'  File "{self.filename}", line {self.lineno}, in {self.name}\n'
        return text + (f"    {self.line}\n" if self.line else "")


def capture(frame: types.FrameType | None, limit: int) -> tuple[StackFrame, ...]:
    """Return the ``limit`` innermost frames ending at ``frame``, outermost first.

    :param frame: the innermost frame (the caller of the blocking function).
    :param limit: how many frames to keep (positive).
    """
    summary = traceback.extract_stack(frame, limit=limit)
    return tuple(
        StackFrame(entry.filename, entry.lineno or 0, entry.name, (entry.line or "").strip())
        for entry in summary
    )


@functools.cache
def library_roots() -> tuple[str, ...]:
    """Directories whose files are library frames: stdlib, installed packages, asgishift,
    and the interpreter's console scripts (``.venv/bin/asgishift``, ``uvicorn``), which
    are the outermost frame of every server's stack."""
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
    roots = {paths[key] for key in keys if key in paths}
    roots.add(str(Path(__file__).resolve().parents[1]))  # the asgishift package
    return tuple(sorted({os.path.realpath(root) + os.sep for root in roots}))


@functools.lru_cache(maxsize=4096)
def is_library(filename: str) -> bool:
    """Whether a frame of ``filename`` belongs to a library rather than the application.

    :param filename: a code object's ``co_filename``.
    """
    if filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):
        return False  # <string>, <stdin>: code the application ran itself
    path = os.path.realpath(filename)
    if _PACKAGE_DIRS.intersection(Path(path).parts):
        return True
    return path.startswith(library_roots())


def format_stack(frames: Sequence[StackFrame], *, full: bool = False) -> str:
    """Format ``frames`` (outermost first), folding runs of library frames unless ``full``.

    :param frames: from :func:`capture`.
    :param full: print every frame.
    :return: the text, one or two lines per frame and one per folded run.
    """
    if full or all(is_library(f.filename) for f in frames):
        return "".join(f.format() for f in frames)
    parts: list[str] = []
    folded = 0
    for frame in frames:
        if is_library(frame.filename):
            folded += 1
            continue
        if folded:
            parts.append(_fold(folded))
            folded = 0
        parts.append(frame.format())
    if folded:
        parts.append(_fold(folded))
    return "".join(parts)


def _fold(count: int) -> str:
    return f"  … {count} library frame{'s' if count != 1 else ''} …\n"


__all__ = [
    "StackFrame",
    "capture",
    "format_stack",
    "is_library",
    "library_roots",
]
