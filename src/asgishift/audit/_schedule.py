"""Which file goes to which worker step, and when: the audit's pipeline of work.

The main process reads the files discovery finds and hands the worker
processes, as early as it can, everything they will have to do:

1. **Scan** (:attr:`~asgishift.audit._parse.Step.SCAN`) every file not in the
   cache, batch by batch while discovery still walks the tree (the seeds of
   the import closure are summarised on the way).
2. **Summarise** each file of the import closure of async code as soon as it
   is known to be in it (:class:`~asgishift.audit._closure.Closure` grows
   with each scanned file), behind the scans still queued, so the workers
   never wait for the main process to work out the closure.
3. When every file is scanned: summarise the files that may discard a
   coroutine (they need every seed), then **check the syntax** of every other
   file, so a syntax error anywhere is reported: ruff's parser checks them
   all at once beside the workers (:mod:`~asgishift.audit._syntax`), and
   the workers **parse** (largest first) the files it rejected, or every
   one of them without ruff.
4. As soon as every summary is in, the caller links them (``on_closure``)
   while the files outside the closure, which give no summary, are still
   checked: the main process's linking overlaps that work.

With one process, or a small run, the same tasks run in this process in the
same order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from asgishift.audit._cache import Record, digest, save_cache
from asgishift.audit._closure import Closure, Facts
from asgishift.audit._config import TABLE, config_key
from asgishift.audit._discover import SourceFile
from asgishift.audit._model import AuditConfig, FileError
from asgishift.audit._parse import (
    BATCH,
    NOT_REGULAR,
    PARALLEL_MIN_FILES,
    PARSED_ONLY,
    Entry,
    NotRegularFile,
    Parser,
    Stamp,
    Step,
    Task,
    open_source,
)
from asgishift.audit._syntax import MIN_FILES as RUFF_MIN_FILES
from asgishift.audit._syntax import SyntaxCheck, ruff_binary

logger = logging.getLogger("asgishift.audit")

#: Closure files queued before they are handed to the workers as one batch,
#: while files are still being scanned.
SUMMARY_BATCH = 16
#: The facts of a file whose scan gave none (it could not be read again).
_NO_FACTS: Facts = (False, (), ())


def _changed(source: SourceFile, stamps: Mapping[str, Stamp]) -> bool:
    """Return whether ``source`` is not, on disk, the file whose stamp the intake took."""
    try:
        stat = os.stat(source.abspath)
    except OSError:
        return True
    return (stat.st_size, stat.st_mtime_ns) != stamps.get(source.rel)


def _crashed(intake: Intake, rel: str, trace: str) -> None:
    """Record that the analysis of ``rel`` raised, and log its traceback here.

    The traceback comes as text from whichever process ran the task, so it is
    logged once, in this process, where the caller's logging setup applies.
    """
    intake.crashed.add(rel)
    logger.error(
        "internal error analysing %s (a bug in asgishift; please report it with this "
        "traceback):\n%s",
        rel,
        trace.rstrip(),
    )


class Intake:
    """Read, digest and look up each file as discovery finds it; scan the misses at once.

    Discovery calls it with every file it finds, so the worker processes
    already scan the text of the first files (and summarise the seeds among
    them) while the main process still walks and reads the rest of the tree.

    :param config: the run's configuration (``max_file_bytes``).
    :param parser: the run's :class:`~asgishift.audit._parse.Parser`.
    :param cache: the per-file cache, or ``None`` to look files up later
        (:meth:`lookup_rest`): a run that may reuse the last run's findings
        needs every digest first, and then no per-file cache at all.
    """

    def __init__(self, config: AuditConfig, parser: Parser, cache: dict[str, Record] | None):
        self.max_bytes = config.max_file_bytes
        self.parser = parser
        self.cache = cache
        self.contents: dict[str, bytes] = {}
        #: Each file's size and mtime when read (workers that read it again check them).
        self.stamps: dict[str, Stamp] = {}
        self.digests: dict[str, str] = {}
        self.errors: list[FileError] = []
        self.facts: dict[str, Facts] = {}
        self.entries: dict[str, Entry] = {}
        self.scan: list[Task] = []  # misses not yet handed to the workers
        self.scanning: set[str] = set()  # misses handed to the workers
        self.unchecked: list[SourceFile] = []
        #: Files whose analysis raised (a bug in asgishift): reported, never cached.
        self.crashed: set[str] = set()

    def __call__(self, source: SourceFile) -> None:
        """Read one file found by discovery; look it up or queue it for scanning."""
        try:
            with open_source(source.abspath) as fh:
                # The open file's: no second look-up of the path.
                stat = os.fstat(fh.fileno())
                size = stat.st_size
                if size > self.max_bytes:
                    key = config_key("max_file_bytes")
                    self.errors.append(
                        FileError(
                            source.rel,
                            0,
                            f"file is {size} bytes, over {key} = {self.max_bytes}; raise "
                            f"`{key}` in {TABLE} or add it to `exclude`",
                        )
                    )
                    return
                data = fh.read()
        except NotRegularFile:
            self.errors.append(FileError(source.rel, 0, NOT_REGULAR))
            return
        except OSError as exc:
            self.errors.append(FileError(source.rel, 0, f"cannot read: {exc}"))
            return
        self.contents[source.rel] = data
        self.stamps[source.rel] = (size, stat.st_mtime_ns)
        self.digests[source.rel] = digest(source, data)
        if self.cache is None:
            self.unchecked.append(source)
        else:
            self._lookup(source, self.cache)

    def _lookup(self, source: SourceFile, cache: dict[str, Record]) -> None:
        hit = cache.get(source.rel)
        if isinstance(hit, tuple) and len(hit) == 3 and hit[0] == self.digests[source.rel]:
            self.facts[source.rel] = hit[1]
            if hit[2] is not None:
                self.entries[source.rel] = hit[2]
            return
        self.scan.append(Task(source, Step.SCAN))
        # Stream once the run is known to be big enough for worker processes.
        if (
            self.parser.jobs > 1
            and len(self.scan) >= BATCH
            and len(self.scanning) + len(self.scan) >= PARALLEL_MIN_FILES
        ):
            self.parser.start(self.contents, self.stamps)
            self._send(self.scan, BATCH)

    def _send(self, tasks: list[Task], size: int) -> None:
        self.parser.submit(tasks, size)
        self.scanning.update(task.source.rel for task in tasks)
        self.scan = []

    def lookup_rest(self, cache: dict[str, Record]) -> None:
        """Look up the files read while no cache was given."""
        self.cache = cache
        unchecked, self.unchecked = self.unchecked, []
        for source in unchecked:
            self._lookup(source, cache)

    def flush(self) -> None:
        """Hand every scan not yet sent to the workers (or queue it here)."""
        if not self.scan:
            return
        if self.parser.parallel:
            self._send(self.scan, BATCH)
            return
        if len(self.scan) >= PARALLEL_MIN_FILES:
            self.parser.start(self.contents, self.stamps)
        self._send(*self.parser.plan(self.scan, self.contents))


OnClosure = Callable[[Mapping[str, Entry], set[str]], None]


def summarise(
    files: list[SourceFile],
    intake: Intake,
    config: AuditConfig,
    cache: dict[str, Record],
    cache_file: str | None,
    progress: Callable[[int, int], None] | None,
    on_closure: OnClosure,
) -> dict[str, Entry]:
    """Return the plain summary (or error) of every file that can matter.

    Only the *import closure of async code* (:class:`~asgishift.audit._closure.
    Closure`) is summarised: code outside it cannot be reached by a call from
    an ``async def`` (the engine resolves calls through imports only), so
    summarising it changes no finding; on Django it is three files in four.
    In the default mode (``whole_project``) every other file is still parsed
    (without building its AST, see :func:`~asgishift.audit._parse.parse_file`),
    so a syntax error anywhere is reported; it is cached as
    :data:`~asgishift.audit._parse.PARSED_ONLY`. With ``whole_project`` off
    those files are not parsed at all. The order of the work is in the module
    docstring.

    :param files: every file read, sorted by relative path.
    :param intake: what discovery read, found in the cache and sent to scan.
    :param cache: the per-file cache loaded (records of other files are kept).
    :param cache_file: where to write the cache, or ``None``.
    :param progress: ``progress(done, total)`` in files, or ``None``.
    :param on_closure: called once, as ``on_closure(entries, closure)``, as
        soon as every file of the closure has its entry (files outside it may
        still be parsing): ``entries`` by relative path, ``closure`` the
        relative paths of the closure.
    :return: the entries of the closure, and of every file with
        ``whole_project``.
    """
    total = len(files)
    facts = intake.facts
    entries = intake.entries
    contents = intake.contents
    parser = intake.parser
    by_rel = {source.rel: source for source in files}
    closure = Closure(files)
    queued: list[Task] = []

    def want(sources: list[SourceFile]) -> None:
        for source in sources:
            entry = entries.get(source.rel)
            if entry is None or entry == PARSED_ONLY:
                queued.append(Task(source, Step.SUMMARISE))

    for source in files:
        known = facts.get(source.rel)
        if known is not None:
            want(closure.add(source, known))
    intake.flush()
    scanning = set(intake.scanning)
    handed = bool(scanning)  # any task handed out: the cache is written again
    summarising: set[str] = set()
    wanted: set[str] | None = None
    # The ruff check running, if any, and the tasks of the files it checks.
    pending: list[tuple[SyntaxCheck, list[Task]]] = []
    left = 0  # tasks handed out after the closure was complete, not yet back

    def send(tasks: list[Task], size: int) -> None:
        nonlocal handed
        handed = True
        parser.submit(tasks, size)
        summarising.update(task.source.rel for task in tasks if task.step is Step.SUMMARISE)

    def complete() -> set[str]:
        """Every file is scanned: finish the closure, hand out the rest of the work."""
        nonlocal left
        done = closure.finish(contents)
        in_flight = summarising.union(task.source.rel for task in queued)
        rest: list[Task] = []
        parse: list[Task] = []
        for source in files:
            rel = source.rel
            entry = entries.get(rel)
            if rel in done:
                if rel not in in_flight and (entry is None or entry == PARSED_ONLY):
                    rest.append(Task(source, Step.SUMMARISE))
            elif entry is None and config.whole_project:
                parse.append(Task(source, Step.PARSE))
        summaries = queued + rest
        queued.clear()
        checking: list[Task] = []
        binary = None
        if config.syntax_check == "ruff" and len(parse) >= RUFF_MIN_FILES:
            binary = ruff_binary()
            if binary is not None:
                # ruff checks these while the workers summarise; what it rejects
                # goes to them afterwards (see _syntax.py and recheck()).
                checking, parse = parse, []
        left = len(summarising) + len(summaries) + len(parse) + len(checking)
        if not parser.parallel and len(summaries) + len(parse) >= PARALLEL_MIN_FILES:
            parser.start(contents, intake.stamps)
        if summaries:
            send(*parser.plan(summaries, contents))
        if parse:
            send(*parser.plan(parse, contents))
        if binary is not None:
            # Started after the pool: forking is only safe with one thread.
            paths = [task.source.abspath for task in checking]
            pending.append((SyntaxCheck(binary, paths), checking))
        return done

    def recheck() -> list[Task]:
        """Take ruff's verdict: the files it parsed are done; return those CPython must check."""
        nonlocal left
        check, checking = pending.pop()
        rejected = check.rejected()
        left -= len(checking)
        again: list[Task] = []
        for task in checking:
            source = task.source
            if rejected is None or source.abspath in rejected or _changed(source, intake.stamps):
                again.append(task)
            else:
                entries[source.rel] = PARSED_ONLY
        return again

    if not scanning:
        wanted = complete()
    if progress is not None:
        progress(len(entries), total)
    linked = False
    try:
        if wanted is not None and not summarising:
            linked = True
            on_closure(entries, wanted)
        while True:
            for batch in parser.results(contents):
                for outcome in batch:
                    rel = outcome.rel
                    if outcome.entry is not None:
                        entries[rel] = outcome.entry
                    if outcome.trace is not None:
                        _crashed(intake, rel, outcome.trace)
                    if rel in scanning:
                        scanning.discard(rel)
                        if outcome.facts is not None:
                            facts[rel] = outcome.facts
                        want(closure.add(by_rel[rel], outcome.facts or _NO_FACTS))
                    else:
                        summarising.discard(rel)
                        if wanted is not None:
                            left -= 1
                if wanted is None:
                    if not scanning:
                        wanted = complete()
                    elif len(queued) >= SUMMARY_BATCH:
                        send(queued[:], SUMMARY_BATCH)
                        queued.clear()
                if wanted is not None and not linked and not summarising:
                    linked = True
                    on_closure(entries, wanted)
                if progress is not None:
                    progress(len(entries) if wanted is None else total - left, total)
            if not pending:
                break
            # ruff's check of the files outside the closure is the last work:
            # what it rejected, CPython checks on the workers (and words).
            again = recheck()
            if again:
                left += len(again)
                send(*parser.plan(again, contents))
    finally:
        parser.close()
    if wanted is None:  # pragma: no cover - every scan gives an outcome
        raise RuntimeError("audit scan incomplete")
    if not linked:
        on_closure(entries, wanted)
    if progress is not None:
        progress(total, total)
    digests = intake.digests
    if cache_file and handed:
        records = {rel: cache[rel] for rel in cache if rel not in digests}
        crashed = intake.crashed
        for source in files:
            rel = source.rel
            # A crash is not cached: the next run analyses the file again
            # (and logs the traceback again), with a fixed asgishift too.
            if rel in facts and rel not in crashed:
                records[rel] = (digests[rel], facts[rel], entries.get(rel))
        save_cache(cache_file, records)
    return {rel: entry for rel, entry in entries.items() if config.whole_project or rel in wanted}


__all__ = ["SUMMARY_BATCH", "Intake", "OnClosure", "summarise"]
