"""Read, scan, parse and summarise files: in-process or in a pool of worker processes.

One :class:`Task` per file says how far to go:

* :attr:`Step.SCAN` reads the file's :data:`~asgishift.audit._closure.Facts`
  (imports, ``async def`` names) from its text, and when the file is a seed
  of the import closure (it mentions async code) parses and summarises it at
  once: a seed is always in the closure.
* :attr:`Step.PARSE` parses only (a syntax error is still reported).
* :attr:`Step.SUMMARISE` parses and summarises.

Tasks go to the workers, and outcomes come back, as plain tuples through
:mod:`marshal`, several times faster than the pickle :mod:`concurrent.futures`
would otherwise use on the objects.
"""

from __future__ import annotations

import ast
import codecs
import collections
import concurrent.futures
import enum
import gc
import io
import logging
import marshal
import multiprocessing
import os
import queue
import symtable
import sys
import threading
import tokenize
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from asgishift.audit._closure import Facts, file_facts
from asgishift.audit._discover import SourceFile
from asgishift.audit._newer_syntax import needs_python
from asgishift.audit._records import PlainSummary, to_plain
from asgishift.audit._regular import NOT_REGULAR, NotRegularFile, open_regular
from asgishift.audit._summary import summarize

logger = logging.getLogger("asgishift.audit")

#: Below this many files, worker processes cost more than they save.
PARALLEL_MIN_FILES = 64
#: Files per batch sent to a worker process (at most).
BATCH = 48


#: A parsed file as stored in the cache and sent back by workers: a plain
#: summary, or ``(line, message)`` for a file reported as an error.
Entry = PlainSummary | tuple[int, str]
#: The entry of a file that parsed but lies outside the import closure of
#: async code, so it was not summarised (it cannot change a finding).
PARSED_ONLY: tuple[int, str] = (-1, "")
#: A file's ``(st_size, st_mtime_ns)`` when the main process opened it to read it.
Stamp = tuple[int, int]
_NO_STAMP: Stamp = (-1, -1)


#: Source files are opened by :func:`asgishift.audit._regular.open_regular`.
open_source = open_regular


def source_encoding(data: bytes) -> str:
    """Return the encoding Python reads a source file in (:func:`tokenize.detect_encoding`).

    ``"utf-8-sig"`` after a UTF-8 byte order mark (decoding drops it), the
    PEP 263 coding cookie's encoding, else ``"utf-8"``.

    :param data: the file's bytes.
    :raise SyntaxError: for an unknown encoding in the cookie, or a cookie
        that contradicts the byte order mark.
    """
    return tokenize.detect_encoding(io.BytesIO(data).readline)[0]


def source_text(data: bytes) -> str:
    """Decode a source file as Python does, never raising (bad bytes are replaced).

    :param data: the file's bytes.
    :return: its text, without a byte order mark; UTF-8 when the coding cookie is bad.
    """
    try:
        encoding = source_encoding(data)
    except SyntaxError:
        encoding = "utf-8"
    return data.decode(encoding, "replace")


class Step(enum.IntEnum):
    """How far a worker takes one file (see the module docstring)."""

    SCAN = 0
    PARSE = 1
    SUMMARISE = 2


class Task(NamedTuple):
    """One file for a worker."""

    source: SourceFile
    step: Step


class Outcome(NamedTuple):
    """What a worker learnt about one file.

    :param rel: the file's relative path.
    :param facts: its closure facts (``SCAN`` only, else ``None``).
    :param entry: its entry, or ``None`` when a ``SCAN`` found no seed.
    :param trace: when the analysis of the file raised (a bug in asgishift):
        the formatted traceback, and ``entry`` is :func:`internal_error`'s;
        else ``None``. Text, so it crosses from a worker process as it is.
    """

    rel: str
    facts: Facts | None
    entry: Entry | None
    trace: str | None = None


def internal_error(exc: BaseException) -> tuple[int, str]:
    """Return the entry reporting that the analysis of a file raised ``exc``.

    The one wording of an internal error, whichever format shows it: not the
    file's fault but asgishift's, so the message asks for a bug report with
    the traceback (logged through ``logging.getLogger("asgishift.audit")``)
    and names the way around it until it is fixed.

    :param exc: what the analysis raised.
    :return: ``(0, message)``: no line is known.
    """
    text = str(exc).strip().splitlines()
    what = type(exc).__name__ + (f": {text[0][:200]}" if text else "")
    return (
        0,
        f"internal error: asgishift's analysis of this file raised {what}; this is a bug "
        "in asgishift, not in the file: please report it with the traceback the "
        "asgishift.audit logger wrote (on stderr by default); meanwhile add the file to "
        "`exclude` to audit the rest without it",
    )


def _parses(text: str | bytes, filename: str) -> bool:
    """Return whether ``text`` parses, without building Python AST objects.

    :func:`symtable.symtable` runs CPython's parser and builds only its C-level
    tree and symbol table: about two thirds of the CPU time of
    :func:`ast.parse`, which turns every node into a Python object. It rejects
    a few files :func:`ast.parse` accepts (``nonlocal`` at module level, a
    name used before its ``global`` declaration): ``False`` then means only
    "ask :func:`ast.parse`", which decides and words the error.
    """
    try:
        symtable.symtable(text, filename, "exec")  # type: ignore[arg-type]
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def parse_file(source: SourceFile, data: bytes, summarise: bool = True) -> Entry:
    """Decode, parse and (if ``summarise``) summarise one file; never raises for bad input.

    :param source: the file.
    :param data: its bytes.
    :param summarise: build its summary; else only check that it parses
        (with :mod:`symtable`, no Python AST objects; :func:`ast.parse` only
        words the error of a file that fails that check).
    :return: the plain summary, :data:`PARSED_ONLY` when the file parsed and
        ``summarise`` is false, or ``(line, message)`` for a file reported as
        an error (a message naming what to do).
    """
    text: str | bytes = data
    try:
        encoding = source_encoding(data)
        text = data.decode(encoding)
    except SyntaxError:
        pass  # a bad coding cookie: the parser words the error
    except UnicodeDecodeError as exc:
        if encoding.startswith("utf-8"):
            line = data.count(b"\n", 0, exc.start) + 1
            return (
                line,
                f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8 "
                "or add it to `exclude`",
            )
        # Not valid in its PEP 263 coding cookie's encoding: the parser words the error.
    if not summarise and _parses(text, source.rel):
        return PARSED_ONLY
    try:
        tree = ast.parse(text, filename=source.rel)
    except SyntaxError as exc:
        needs = needs_python(exc)
        if needs:
            running = f"{sys.version_info[0]}.{sys.version_info[1]}"
            return (
                exc.lineno or 0,
                f"needs Python {needs} to parse (this is Python {running}); "
                f"run the audit with Python {needs} or newer",
            )
        return (
            exc.lineno or 0,
            f"syntax error: {exc.msg}; fix the file or add it to `exclude` "
            "(asgishift parses with the Python running it)",
        )
    except (ValueError, RecursionError, MemoryError) as exc:
        return (0, f"cannot parse: {exc}; add it to `exclude`")
    if not summarise:
        return PARSED_ONLY
    try:
        return to_plain(summarize(tree, source.module, source.is_package))
    except RecursionError:
        return (0, "expression nesting too deep to analyse; add it to `exclude`")


def run_task(task: Task, data: bytes) -> Outcome:
    """Take one file as far as its :class:`Step` says; never raises for one file.

    An exception of the analysis itself (a bug in asgishift that this file
    shows) becomes the file's :func:`internal_error` entry with the
    traceback in :attr:`Outcome.trace`, so the other files are still
    audited, in a worker process as in this one.
    """
    source = task.source
    facts = None
    try:
        if task.step is Step.SCAN:
            # The import scan reads bytes: a byte order mark would hide the first line.
            facts = file_facts(source, data.removeprefix(codecs.BOM_UTF8))
            entry = parse_file(source, data, True) if facts[0] else None
            return Outcome(source.rel, facts, entry)
        return Outcome(source.rel, None, parse_file(source, data, task.step is Step.SUMMARISE))
    except Exception as exc:
        return Outcome(source.rel, facts, internal_error(exc), traceback.format_exc())


#: In a worker process: the files' bytes the main process had read when it
#: forked the worker (set once by :func:`_inherit`; empty when not forked).
_inherited: Mapping[str, bytes] = {}


def _inherit(contents: Mapping[str, bytes]) -> None:
    """Worker initialiser: keep the main process's file contents.

    Under the ``fork`` start method the mapping is the parent's own memory,
    shared copy-on-write: no file is read twice.
    """
    global _inherited
    _inherited = contents


def _pack(tasks: Sequence[Task], stamps: Mapping[str, Stamp]) -> bytes:
    """Marshal a batch of tasks for :func:`_run_batch`: plain tuples, cheaper to send than objects.

    A worker needs no file's other importable names (:attr:`SourceFile.names`),
    but does need the :data:`Stamp` of the bytes the main process read.
    """
    return marshal.dumps(
        [
            (
                t.source.abspath,
                t.source.rel,
                t.source.module,
                t.source.is_package,
                int(t.step),
                stamps.get(t.source.rel, _NO_STAMP),
            )
            for t in tasks
        ]
    )


_STEPS = tuple(Step)


def _run_batch(packed: bytes) -> bytes:
    """Worker entry point: run a batch of tasks (:func:`_pack`); marshalled.

    A file's bytes come from the main process's memory when the worker was
    forked, else from disk. A file read from disk whose :data:`Stamp` after
    the read differs from the main process's (edited since) comes back as
    ``(rel,)``: the main process runs its task on the bytes it read, so the
    digest it caches and the facts stay those of one and the same content.
    """
    out: list[tuple[object, ...]] = []
    with no_gc(), warnings.catch_warnings():
        # Invalid escape sequences and the like are the project's business.
        warnings.simplefilter("ignore")
        for abspath, rel, module, is_package, step, stamp in marshal.loads(packed):
            data = _inherited.get(rel)
            if data is None:
                try:
                    with open_source(abspath) as fh:
                        data = fh.read()
                        # After the read: an edit during it shows too.
                        now = os.fstat(fh.fileno())
                except NotRegularFile:
                    out.append((rel, None, (0, NOT_REGULAR), None))
                    continue
                except OSError as exc:
                    out.append((rel, None, (0, f"cannot read: {exc}"), None))
                    continue
                if stamp != _NO_STAMP and (now.st_size, now.st_mtime_ns) != tuple(stamp):
                    out.append((rel,))
                    continue
            source = SourceFile(abspath, rel, module, is_package)
            out.append(tuple(run_task(Task(source, _STEPS[step]), data)))
    return marshal.dumps(out)


class no_gc:
    """Pause the cyclic garbage collector inside a ``with`` block.

    Parsing allocates millions of short-lived AST nodes, freed by reference
    counting; the collector's generational passes over them roughly double
    the parse time and find nothing (AST nodes form no cycles).
    """

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.enable()


def _pool_context() -> multiprocessing.context.BaseContext:
    """Pick the cheapest safe start method: fork when single-threaded on POSIX."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    # Forking a multi-threaded process can deadlock (and warns on 3.12+).
    if "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


_COST = {Step.SCAN: 1, Step.PARSE: 2, Step.SUMMARISE: 3}


class Parser:
    """Run tasks in a lazily started worker pool, or in this process, and yield what they gave.

    :meth:`submit` tasks as they come (to the pool once :meth:`start` has
    started it, else queued to run in this process), and iterate
    :meth:`results` for their outcomes as they complete: tasks submitted while
    :meth:`results` is being iterated are part of it too. :meth:`run` does
    both for one list of tasks.

    :param jobs: worker processes; ``1`` runs everything in this process.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.shared: Mapping[str, bytes] | None = None
        self.done: queue.SimpleQueue[concurrent.futures.Future[bytes]] = queue.SimpleQueue()
        self.outstanding = 0  # batches submitted to the pool, not yet yielded
        self.local: collections.deque[Task] = collections.deque()
        self.pending: dict[str, Task] = {}
        self.stamps: Mapping[str, Stamp] = {}

    @property
    def parallel(self) -> bool:
        """Whether submitted tasks go to the worker pool."""
        return self.pool is not None

    def start(
        self, contents: Mapping[str, bytes], stamps: Mapping[str, Stamp] | None = None
    ) -> None:
        """Start (fork) the worker pool now, unless ``jobs`` is 1 or it already runs.

        :param contents: the files' bytes by relative path, the same mapping
            for every call of one run (bytes added to it later are read from
            disk by the workers).
        :param stamps: the :data:`Stamp` of each of those files, the same
            mapping for the whole run (entries may be added later). A worker
            that reads a file from disk and finds another stamp hands its
            task back, and :meth:`results` runs it here on ``contents``.
            ``None``: no check.
        """
        if self.pool is not None and contents is not self.shared:
            self.close()  # its workers hold another run's bytes
        if stamps is not None:
            self.stamps = stamps
        if self.pool is None and self.jobs > 1:
            self.shared = contents
            context = _pool_context()
            # Forked workers share the parent's memory: hand them the bytes
            # read so far (a file read after the fork is read again by the
            # worker). Other start methods would copy them: read again.
            shared = contents if context.get_start_method() == "fork" else {}
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=context, initializer=_inherit, initargs=(shared,)
            )

    def submit(self, tasks: Sequence[Task], size: int = BATCH) -> None:
        """Hand ``tasks`` to the worker pool in batches of ``size``, or queue them here.

        The outcomes come out of :meth:`results`.
        """
        pool = self.pool
        if pool is None:
            self.local.extend(tasks)
            return
        put = self.done.put
        for i in range(0, len(tasks), size):
            future = pool.submit(_run_batch, _pack(tasks[i : i + size], self.stamps))
            future.add_done_callback(put)
            self.outstanding += 1
        for task in tasks:
            self.pending[task.source.rel] = task

    def results(self, contents: Mapping[str, bytes]) -> Iterator[list[Outcome]]:
        """Yield the :class:`Outcome` batches of every submitted task as they complete.

        Ends when every task submitted so far, including those submitted
        while iterating, has given its outcome.

        :param contents: every file's bytes by relative path (tasks run in
            this process read them from here).

        If the pool breaks (e.g. a script without an ``if __name__ ==
        "__main__"`` guard under the forkserver start method), the tasks not
        yet done run in this process instead.
        """
        while True:
            if self.local:
                task = self.local.popleft()
                with warnings.catch_warnings():
                    # Invalid escape sequences and the like are the project's business.
                    warnings.simplefilter("ignore")
                    outcome = run_task(task, contents[task.source.rel])
                yield [outcome]
                continue
            if not self.outstanding:
                return
            future = self.done.get()
            self.outstanding -= 1
            try:
                raw: list[tuple[str, Facts | None, Entry | None, str | None]] = marshal.loads(
                    future.result()
                )
            except concurrent.futures.process.BrokenProcessPool as exc:
                logger.warning("audit worker processes failed (%s); parsing in-process", exc)
                rest = list(self.pending.values())
                self.close()
                self.jobs = 1
                self.local.extend(rest)
                continue
            pending = self.pending
            outcomes: list[Outcome] = []
            for item in raw:
                waiting = pending.pop(item[0], None)
                if len(item) == 1:  # edited since this process read it
                    if waiting is not None:
                        logger.debug(
                            "%s changed during the audit; using the bytes read first", item[0]
                        )
                        self.local.append(waiting)
                    continue
                outcomes.append(Outcome._make(item))
            if outcomes:
                yield outcomes

    def run(self, tasks: list[Task], contents: Mapping[str, bytes]) -> Iterator[list[Outcome]]:
        """Run ``tasks`` (with any submitted before) and yield their outcome batches.

        Worker processes take them when the pool runs already, or when there
        are at least :data:`PARALLEL_MIN_FILES` of them.

        :param tasks: the files and how far to take each.
        :param contents: every file's bytes by relative path (in-process runs
            read them from here; forked workers too, others from disk).
        """
        if len(tasks) >= PARALLEL_MIN_FILES:
            self.start(contents)
        self.submit(*self.plan(tasks, contents))
        yield from self.results(contents)

    def plan(self, tasks: list[Task], contents: Mapping[str, bytes]) -> tuple[list[Task], int]:
        """Return ``tasks`` largest (costliest) first, and the batch size to submit them in.

        Largest first, so the last batch does not hold the run up; batches of
        at most :data:`BATCH` and about a quarter of a worker's share.
        """
        ordered = sorted(
            tasks, key=lambda t: len(contents.get(t.source.rel, b"")) * _COST[t.step], reverse=True
        )
        return ordered, max(8, min(BATCH, len(ordered) // (self.jobs * 4) or 1))

    def close(self) -> None:
        """Stop the worker pool, if one was started; forget what was not done."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        self.done = queue.SimpleQueue()  # cancelled batches report to the old one
        self.outstanding = 0
        self.pending = {}


__all__ = [
    "BATCH",
    "NOT_REGULAR",
    "PARALLEL_MIN_FILES",
    "PARSED_ONLY",
    "Entry",
    "NotRegularFile",
    "Outcome",
    "Parser",
    "Stamp",
    "Step",
    "Task",
    "internal_error",
    "no_gc",
    "open_source",
    "parse_file",
    "run_task",
    "source_encoding",
    "source_text",
]
