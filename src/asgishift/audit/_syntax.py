"""Check that files parse with ruff's parser: the default mode's files outside the closure.

In the default mode the audit reports a syntax error in every file, also in the
files outside the import closure of async code, which it does not analyse.
Checking those with CPython's parser (:func:`~asgishift.audit._parse.parse_file`,
through :mod:`symtable`) was the largest single cost of a cold run: on
Django's source, more CPU time than parsing the closure. ruff's parser, run
as a subprocess over the files, does the same check in about a quarter of
that CPU time (``benchmarks/audit/SPEED.md``).

ruff is only a filter, never the judge: each file it rejects, and each file
that changed on disk after the audit read it, goes to CPython's parser, which
decides and words the error, so every message is CPython's and the "needs
Python 3.12" advice still applies. ruff is told the running Python's version
(``--target-version``), so syntax newer than the running Python counts as an
error there too. When ruff is not installed, is older than
:data:`MIN_RUFF`, or fails, every file goes to CPython as before.

This module only runs ruff and reads its report: no AST, no caching.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import metadata
from typing import Final

logger = logging.getLogger("asgishift.audit")

__all__ = ["MIN_FILES", "MIN_RUFF", "SyntaxCheck", "ruff_binary"]

#: The fewest files worth starting ruff for (it takes a few tens of
#: milliseconds to start; CPython checks fewer files in about that time).
MIN_FILES: Final = 128

#: The oldest ruff whose parser reports syntax newer than ``--target-version``.
MIN_RUFF: Final = (0, 12)

#: The most bytes of file paths handed to one ruff process (the command line).
_ARGS_BYTES: Final = 96 * 1024

#: The codes of ruff's diagnostics that send a file to CPython: its parser
#: rejected it (``invalid-syntax``; ``None`` in older releases), or it could not
#: read it (``E902``, the one rule selected), so it gave no verdict.
_RECHECK_CODES: Final = frozenset({"invalid-syntax", None, "E902"})


def _version(text: str) -> tuple[int, ...]:
    """Return the leading numbers of a version string: ``"0.12.0rc1"`` is ``(0, 12, 0)``."""
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _chunks(paths: Sequence[str], limit: int) -> Iterator[list[str]]:
    """Split ``paths`` into lists whose lengths, plus a separator each, stay under ``limit``.

    A single path longer than ``limit`` is a list of its own.
    """
    chunk: list[str] = []
    size = 0
    for path in paths:
        if chunk and size + len(path) + 1 > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(path)
        size += len(path) + 1
    if chunk:
        yield chunk


@cache
def ruff_binary() -> str | None:
    """Return the path of the installed ruff executable, or ``None`` when it cannot be used.

    Only the ``ruff`` Python package installed beside asgishift counts (not a
    ``ruff`` found on ``PATH``), and only from :data:`MIN_RUFF` on.
    """
    try:
        version = metadata.version("ruff")
    except metadata.PackageNotFoundError:
        return None
    if _version(version) < MIN_RUFF:
        logger.debug("ruff %s is older than %s: syntax checked by Python", version, MIN_RUFF)
        return None
    try:
        from ruff import find_ruff_bin  # type: ignore[import-untyped]
    except ImportError:
        try:  # where older releases define it
            from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]
        except ImportError:
            return None
    try:
        path = find_ruff_bin()
    except FileNotFoundError:
        return None
    return str(path)


class SyntaxCheck:
    """ruff's parser run over some files, in the background.

    :param binary: the ruff executable (:func:`ruff_binary`).
    :param paths: absolute paths of the files to check.

    The check starts at once, on a thread that runs ruff (one process per
    :data:`_ARGS_BYTES` of paths, one after another, each on one core so that
    it does not crowd the audit's worker processes); :meth:`rejected` waits
    for it.
    """

    def __init__(self, binary: str, paths: Sequence[str]) -> None:
        self.binary = binary
        self.paths = list(paths)
        self._rejected: set[str] | None = set()
        self._thread = threading.Thread(target=self._run, name="asgishift-ruff", daemon=True)
        self._thread.start()

    def rejected(self) -> set[str] | None:
        """Wait for the check; return the paths ruff could not parse.

        :return: a subset of the paths given, or ``None`` when ruff failed
            (the reason is logged): then no file is known to parse.
        """
        self._thread.join()
        return self._rejected

    def _command(self, paths: Sequence[str]) -> list[str]:
        target = f"py3{sys.version_info[1]}"
        return [
            self.binary, "check", "--isolated", "--no-cache", "--exit-zero", "--quiet",
            "--select", "E902", "--target-version", target, "--output-format", "json", "--",
            *paths,
        ]  # fmt: skip

    def _run(self) -> None:
        try:
            self._run_chunks()
        except Exception:  # never a half-filled verdict: CPython checks everything then
            logger.warning("ruff's syntax check failed; Python's parser checks it", exc_info=True)
            self._rejected = None

    def _run_chunks(self) -> None:
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        for chunk in _chunks(self.paths, _ARGS_BYTES):
            if not self._check(chunk, env):
                self._rejected = None
                return

    def _check(self, paths: list[str], env: dict[str, str]) -> bool:
        """Run ruff over ``paths``; add the rejected ones; ``False`` when ruff failed."""
        try:
            done = subprocess.run(
                self._command(paths), capture_output=True, env=env, check=False, timeout=600
            )
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("ruff could not check syntax (%s); Python's parser checks it", exc)
            return False
        try:
            report = json.loads(done.stdout or b"[]")
        except ValueError:
            report = None
        if done.returncode != 0 or not isinstance(report, list):
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            logger.warning(
                "ruff exited with %s (%s); Python's parser checks these files",
                done.returncode,
                tail[0] if tail else "no message",
            )
            return False
        rejected = self._rejected
        assert rejected is not None
        given = set(paths)
        real: dict[str, str] | None = None
        for diagnostic in report:
            if not isinstance(diagnostic, dict) or diagnostic.get("code") not in _RECHECK_CODES:
                continue
            name = os.path.normpath(str(diagnostic.get("filename")))
            if name not in given:
                # ruff may name the file by another spelling of its path (a
                # symbolic link resolved): match it by its real path.
                if real is None:
                    real = {os.path.realpath(path): path for path in paths}
                found = real.get(os.path.realpath(name))
                if found is None:
                    logger.warning(
                        "ruff reported %s, which it was not asked about; "
                        "Python's parser checks these files",
                        name,
                    )
                    return False
                name = found
            rejected.add(name)
        return True
