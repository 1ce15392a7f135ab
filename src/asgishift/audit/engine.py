"""The audit engine: find files, summarise them in parallel, link, report.

:func:`audit_paths` runs in these stages:

1. **Discover** the Python files (:mod:`asgishift.audit._discover`), honouring
   ``.gitignore``, ``exclude`` and the usual tool directories, and read them.
2. **Scan** the text of every file not in the cache for its imports and
   ``async def`` names (:mod:`asgishift.audit._closure`), in worker processes;
   files that mention async code are parsed and summarised on the way.
3. **Summarise** the rest of the *import closure of async code* with one AST
   walk per file (:mod:`asgishift.audit._walk_body`, with the rule families'
   hooks), and parse every other file so a syntax error anywhere is reported
   (with CPython's parser through :mod:`symtable`, which builds no Python AST
   objects: about two thirds of the cost of :func:`ast.parse`).
   Summaries are cached per file (key: content digest, module name, asgishift
   version and a hash of the extractor's source code).
4. **Link** the summaries into a project-wide call graph
   (:mod:`asgishift.audit._link`) and report every hazard reachable from an
   ``async def``, one finding per call site, then apply ``# noqa`` comments and
   ``select``/``ignore``/``per_file_ignores``. An unchanged tree (same
   digests, same linking settings, same audit code) reuses the last run's
   findings.

A file that cannot be read, decoded or parsed becomes a
:class:`~asgishift.audit._model.FileError` and the rest is still audited.

Known limits of the static analysis (each one errs towards silence):

* Calls are followed through imports (aliases, ``from`` imports, relative
  imports, package re-exports, namespace packages), ``self``/``cls``/
  ``super()``, base classes, variables assigned from a constructor, typed by
  an annotation (also of containers and dicts) or by a project function's
  return annotation, and attributes set as ``self.x = X()`` or from an
  annotated ``__init__`` parameter. A receiver whose type is unknown (an
  unannotated parameter, an unannotated return value) is not followed, nor is
  ``from x import *`` or ``getattr``.
* The graph is path-insensitive: a blocking call behind an ``if`` that never
  runs in async mode is still reported (silence it with ``# noqa: ASH1xx``).
* ``# noqa`` applies on the line of the hazard or of any hop of its chain
  (each call site's shortest chain).
* ``ASH203`` knows model instances returned by ``Model.objects`` queries (or
  bound by ``for``/``async for`` over one) in the same function, and
  ForeignKey/OneToOneField attributes declared on project model classes;
  ``select_related``/``prefetch_related`` anywhere in the query silences it,
  and only the first read of a field in a function is a query.
* ``ASH303`` looks at reads written directly in an ``async def``.
* Every file is parsed, so every file that does not parse is reported. With
  :attr:`~asgishift.audit._model.AuditConfig.whole_project` off
  (``--reachable-only``) only the import closure of async code is parsed; a
  syntax error in a file outside it is then not reported.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pathspec

from asgishift import __version__
from asgishift.audit._closure import Facts, import_closure
from asgishift.audit._discover import SourceFile, discover
from asgishift.audit._link import link
from asgishift.audit._model import AuditConfig, AuditResult, FileError, Finding, Hop
from asgishift.audit._parse import (
    BATCH,
    PARALLEL_MIN_FILES,
    PARSED_ONLY,
    Entry,
    Outcome,
    Parser,
    Step,
    Task,
    no_gc,
)
from asgishift.audit._records import FileIndex, from_plain
from asgishift.audit._summary import LINKER_MODULES, extractor_fingerprint, source_fingerprint
from asgishift.audit.rules import calls_index, conditions, link_checks

logger = logging.getLogger("asgishift.audit")

_NOQA_RE = re.compile(
    r"#\s*noqa\b(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?",
    re.IGNORECASE,
)


def _cache_path(cache_dir: str, root: str) -> str:
    """Return the cache file for this root, asgishift version and catalogue."""
    fingerprint = hashlib.blake2b(digest_size=8)
    tag = f"{__version__}|{extractor_fingerprint()}|{sys.version_info[:2]}|{root}"
    fingerprint.update(tag.encode())
    return os.path.join(cache_dir, f"audit-{fingerprint.hexdigest()}.marshal")


def _load_cache(path: str) -> dict[str, _Record]:
    """Load the per-file cache, or an empty one if absent or unreadable.

    The cache is one :mod:`marshal` file of ``{path: (digest, entry)}``;
    marshal reads plain tuples of strings several times faster than pickle
    (the file name carries the Python version, marshal's format is per version).
    """
    try:
        with open(path, "rb") as fh:
            data = marshal.load(fh)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # a corrupt or foreign cache is only a slower run
        logger.info("ignoring unreadable audit cache %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: str, entries: dict[str, _Record]) -> None:
    """Write the cache atomically; failures are logged, never raised."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            marshal.dump(entries, fh)
        os.replace(tmp, path)
        gitignore = os.path.join(os.path.dirname(path), ".gitignore")
        if not os.path.exists(gitignore):
            with open(gitignore, "w", encoding="utf-8") as fh:
                fh.write("*\n")
    except (OSError, ValueError) as exc:
        logger.warning("cannot write audit cache %s: %s", path, exc)


def _digest(source: SourceFile, data: bytes) -> str:
    """Return the cache key of one file's content and module name."""
    h = hashlib.blake2b(data, digest_size=16)
    h.update(f"\0{source.module}\0{int(source.is_package)}".encode())
    return h.hexdigest()


#: One cache record: ``(content digest, closure facts, entry or None)``.
_Record = tuple[str, Facts, Entry | None]


class _Intake:
    """Read, digest and look up each file as discovery finds it; scan the misses at once.

    Discovery calls it with every file it finds (``on_file``), so the worker
    processes already scan the text of the first files (and summarise the
    seeds among them) while the main process still walks and reads the rest
    of the tree: the main process's serial start no longer leaves the other
    cores idle.

    :param config: the run's configuration (``max_file_bytes``).
    :param parser: the run's :class:`~asgishift.audit._parse.Parser`.
    :param cache: the per-file cache, or ``None`` to look files up later
        (:meth:`lookup_rest`): a run that may reuse the last run's findings
        needs every digest first, and then no per-file cache at all.
    """

    def __init__(self, config: AuditConfig, parser: Parser, cache: dict[str, _Record] | None):
        self.max_bytes = config.max_file_bytes
        self.parser = parser
        self.cache = cache
        self.contents: dict[str, bytes] = {}
        self.digests: dict[str, str] = {}
        self.errors: list[FileError] = []
        self.facts: dict[str, Facts] = {}
        self.entries: dict[str, Entry] = {}
        self.scan: list[Task] = []  # misses not yet handed to the workers
        self.sent = 0  # misses handed to the workers
        self.unchecked: list[SourceFile] = []

    def __call__(self, source: SourceFile) -> None:
        """Read one file found by discovery; look it up or queue it for scanning."""
        try:
            size = os.path.getsize(source.abspath)
            if size > self.max_bytes:
                self.errors.append(
                    FileError(
                        source.rel,
                        0,
                        f"file is {size} bytes, over max_file_bytes={self.max_bytes}; raise "
                        "`max_file_bytes` or add it to `exclude`",
                    )
                )
                return
            with open(source.abspath, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            self.errors.append(FileError(source.rel, 0, f"cannot read: {exc}"))
            return
        self.contents[source.rel] = data
        self.digests[source.rel] = _digest(source, data)
        if self.cache is None:
            self.unchecked.append(source)
        else:
            self._lookup(source, self.cache)

    def _lookup(self, source: SourceFile, cache: dict[str, _Record]) -> None:
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
            and self.sent + len(self.scan) >= PARALLEL_MIN_FILES
        ):
            self.parser.submit(self.scan, self.contents, BATCH)
            self.sent += len(self.scan)
            self.scan = []

    def lookup_rest(self, cache: dict[str, _Record]) -> None:
        """Look up the files read while no cache was given."""
        self.cache = cache
        unchecked, self.unchecked = self.unchecked, []
        for source in unchecked:
            self._lookup(source, cache)

    def scanned(self) -> Iterator[list[Outcome]]:
        """Yield the outcome batches of every queued scan (run the rest first)."""
        if self.sent:
            if self.scan:
                self.parser.submit(self.scan, self.contents, BATCH)
            yield from self.parser.collect(self.contents)
        else:
            yield from self.parser.run(self.scan, self.contents)
        self.sent = 0
        self.scan = []

    @property
    def changed(self) -> bool:
        """Whether any file missed the cache (so the cache is written again)."""
        return bool(self.sent or self.scan)


def _summarise(
    files: list[SourceFile],
    intake: _Intake,
    config: AuditConfig,
    cache: dict[str, _Record],
    cache_file: str | None,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Entry]:
    """Return the plain summary (or error) of every file that can matter.

    Only the *import closure of async code* (:func:`~asgishift.audit._closure.
    import_closure`) is summarised: code outside it cannot be reached by a
    call from an ``async def`` (the engine resolves calls through imports
    only), so summarising it changes no finding; on Django it is three files
    in four. In the default mode (``whole_project``) every other file is still
    parsed (without building its AST, see :func:`~asgishift.audit._parse.parse_file`),
    so a syntax error anywhere is reported; it is cached as
    :data:`~asgishift.audit._parse.PARSED_ONLY`. With ``whole_project`` off
    those files are not parsed at all.

    Two rounds of work, each spread over the worker pool: the first scans the
    text of every file not in the cache (and summarises the seeds on the way;
    :class:`_Intake` starts it during discovery), the second parses what the
    closure then asks for.
    """
    total = len(files)
    facts = intake.facts
    entries = intake.entries
    contents = intake.contents
    changed = intake.changed
    parser = intake.parser
    if progress is not None:
        progress(len(entries), total)
    try:
        for batch in intake.scanned():
            for outcome in batch:
                if outcome.facts is not None:
                    facts[outcome.rel] = outcome.facts
                if outcome.entry is not None:
                    entries[outcome.rel] = outcome.entry
            if progress is not None:
                progress(len(entries), total)
        closure = import_closure(files, facts, contents)
        tasks: list[Task] = []
        for source in files:
            wanted = source.rel in closure
            entry = entries.get(source.rel)
            if wanted and (entry is None or entry == PARSED_ONLY):
                tasks.append(Task(source, Step.SUMMARISE))
            elif entry is None and config.whole_project:
                tasks.append(Task(source, Step.PARSE))
        done = total - len(tasks)
        if progress is not None:
            progress(done, total)
        for batch in parser.run(tasks, contents):
            for outcome in batch:
                if outcome.entry is not None:
                    entries[outcome.rel] = outcome.entry
            done += len(batch)
            if progress is not None:
                progress(done, total)
    finally:
        parser.close()
    if progress is not None:
        progress(total, total)
    digests = intake.digests
    if cache_file and (changed or tasks):
        records = {rel: cache[rel] for rel in cache if rel not in digests}
        for source in files:
            rel = source.rel
            if rel in facts:
                records[rel] = (digests[rel], facts[rel], entries.get(rel))
        _save_cache(cache_file, records)
    return {rel: entry for rel, entry in entries.items() if config.whole_project or rel in closure}


def _code_filter(config: AuditConfig) -> Callable[[str, str], bool]:
    """Build ``keep(code, path)`` from select/ignore/per_file_ignores."""
    select = tuple(s.upper() for s in config.select)
    ignore = tuple(s.upper() for s in config.ignore)
    per_file = [
        (pathspec.GitIgnoreSpec.from_lines([glob]), tuple(c.upper() for c in codes))
        for glob, codes in config.per_file_ignores.items()
    ]
    memo: dict[tuple[str, str], bool] = {}

    def keep(code: str, path: str) -> bool:
        key = (code, path)
        if key not in memo:
            ok = (not select or code.startswith(select)) and not (
                ignore and code.startswith(ignore)
            )
            if ok:
                for spec, codes in per_file:
                    if codes and code.startswith(codes) and spec.match_file(path):
                        ok = False
                        break
            memo[key] = ok
        return memo[key]

    return keep


def noqa_codes(line: str) -> frozenset[str] | None:
    """Return the codes a ``# noqa`` comment on ``line`` suppresses.

    :param line: one source line.
    :return: ``None`` when the line has no ``noqa`` comment, an empty set for
        a bare ``# noqa`` (suppresses everything), else the listed codes or
        prefixes, upper-cased.
    """
    if "noqa" not in line.lower():
        return None
    match = _NOQA_RE.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    if not codes:
        return frozenset()
    return frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c)


def _finish(
    findings: list[Finding],
    contents: dict[str, bytes],
    keep: Callable[[str, str], bool],
) -> list[Finding]:
    """Apply filters and ``# noqa``, attach snippets, sort.

    A ``# noqa`` comment covering the finding's code silences it when it sits
    on the hazard's line or on the line of any hop of its chain (so the call
    in the ``async def`` can carry it). The chain is the shortest one found:
    a comment on a hop of that chain also hides longer chains to the hazard.
    """
    lines_cache: dict[str, list[str]] = {}

    def line_of(path: str, number: int) -> str:
        lines = lines_cache.get(path)
        if lines is None:
            lines = contents.get(path, b"").decode("utf-8", "replace").splitlines()
            lines_cache[path] = lines
        return lines[number - 1] if 0 < number <= len(lines) else ""

    def silenced(code: str, text: str) -> bool:
        codes = noqa_codes(text)
        return codes is not None and (not codes or code.startswith(tuple(codes)))

    out: list[Finding] = []
    for finding in findings:
        if not keep(finding.code, finding.path):
            continue
        text = line_of(finding.path, finding.line)
        if silenced(finding.code, text) or any(
            silenced(finding.code, line_of(hop.path, hop.line)) for hop in finding.chain[:-1]
        ):
            continue
        out.append(
            Finding(
                code=finding.code,
                path=finding.path,
                line=finding.line,
                col=finding.col,
                end_line=finding.end_line,
                end_col=finding.end_col,
                args=finding.args,
                chain=finding.chain,
                snippet=text.strip(),
            )
        )
    out.sort(
        key=lambda f: (
            f.path,
            f.line,
            f.col,
            f.code,
            len(f.chain),
            tuple((h.path, h.line, h.col) for h in f.chain),
        )
    )
    return out


def _analyse(
    files: list[SourceFile],
    intake: _Intake,
    config: AuditConfig,
    cache: dict[str, _Record],
    cache_file: str | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[Finding], list[FileError], int]:
    """Summarise and link: return raw findings, files reported, files parsed."""
    errors: list[FileError] = []
    with no_gc():
        parsed = _summarise(files, intake, config, cache, cache_file, progress)
        summaries: dict[str, tuple[FileIndex, bytes]] = {}
        for source in files:
            item = parsed.get(source.rel)
            if item is None:
                continue  # outside the import closure of async code
            if isinstance(item[1], bytes):
                summaries[source.rel] = from_plain(item)
            elif item != PARSED_ONLY:
                line, message = item
                errors.append(FileError(source.rel, line, message))
        other_names = {source.rel: source.names for source in files if source.names}
        raw = link(summaries, config, calls_index(), conditions(), link_checks(), other_names)
    return raw, errors, len(parsed)


def _run_key(files: list[SourceFile], digests: dict[str, str], config: AuditConfig) -> str:
    """Return the key of a whole run: every file's digest and names, the linking settings."""
    h = hashlib.blake2b(digest_size=16)
    h.update(source_fingerprint(LINKER_MODULES).encode())
    settings = (
        sorted(config.extra_blocking),
        sorted(config.extra_safe),
        config.follow_chains,
        config.whole_project,
    )
    h.update(repr(settings).encode())
    for source in files:
        h.update(f"\0{source.rel}\0{digests[source.rel]}\0{source.names}".encode())
    return h.hexdigest()


def _load_run(path: str, key: str) -> tuple[list[Finding], list[FileError], int] | None:
    """Return the raw findings of a previous run with the same key, or ``None``.

    A warm run over an unchanged tree then reads one small file instead of
    every summary and links nothing.
    """
    try:
        with open(path, "rb") as fh:
            data = marshal.load(fh)
        stored_key, findings, errors, parsed = data
        if stored_key != key:
            return None
        return (
            [
                Finding(c, p, ln, col, el, ec, dict(args), tuple(Hop(*h) for h in chain))
                for c, p, ln, col, el, ec, args, chain in findings
            ],
            [FileError(*e) for e in errors],
            parsed,
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # a corrupt or foreign memo is only a slower run
        logger.info("ignoring unreadable audit run cache %s: %s", path, exc)
        return None


def _save_run(
    path: str, key: str, findings: list[Finding], errors: list[FileError], parsed: int
) -> None:
    """Write the raw findings of this run for :func:`_load_run`; failures are logged."""
    plain = [
        (
            f.code,
            f.path,
            f.line,
            f.col,
            f.end_line,
            f.end_col,
            tuple(f.args.items()),
            tuple((h.path, h.line, h.col, h.function, h.callee) for h in f.chain),
        )
        for f in findings
    ]
    errs = [(e.path, e.line, e.message) for e in errors]
    try:
        # A run that parsed no file has not created the cache directory yet.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            marshal.dump((key, plain, errs, parsed), fh)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        logger.warning("cannot write audit run cache %s: %s", path, exc)


def audit_paths(
    paths: Sequence[Path],
    *,
    root: Path,
    config: AuditConfig,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit the Python files under ``paths`` and return every finding.

    :param paths: files and directories to audit (directories recursively).
    :param root: the project root; reported paths are relative to it (POSIX),
        module names come from the package layout (``__init__.py`` files).
    :param config: the run's :class:`~asgishift.audit._model.AuditConfig`:
        ``select``/``ignore``/``per_file_ignores``/``exclude`` filter,
        ``extra_blocking`` callables are reported as ``ASH199``,
        ``extra_safe`` callables are boundaries, ``jobs`` worker processes
        parse (``0``: one per CPU), ``cache_dir`` holds the per-file cache,
        ``follow_chains=False`` reports only hazards written in an ``async def``.
    :param progress: called as ``progress(done, total)`` (files) while
        files are summarised.
    :return: an :class:`~asgishift.audit._model.AuditResult`; findings are
        sorted by ``(path, line, col, code)`` and already filtered by
        ``# noqa`` comments and the configuration.

    Never raises for a bad file: unreadable, non-UTF-8, oversized or
    unparsable files and symlink loops are listed in ``errors``.
    """
    root_s = os.path.abspath(root)
    cache_file = (
        _cache_path(os.path.abspath(config.cache_dir), root_s) if config.cache_dir else None
    )
    run_file = f"{cache_file}.run" if cache_file else None
    # A run that may reuse the last run's findings needs every file's digest
    # before it knows whether any file must be scanned: it reads the whole
    # tree first. Any other run starts scanning while discovery goes on.
    may_reuse = run_file is not None and os.path.exists(run_file)
    cache = _load_cache(cache_file) if cache_file and not may_reuse else {}
    parser = Parser(config.jobs if config.jobs > 0 else (os.cpu_count() or 1))
    intake = _Intake(config, parser, None if may_reuse else cache)
    try:
        with no_gc():
            found = discover(
                paths,
                Path(root_s),
                exclude=config.exclude,
                respect_gitignore=config.respect_gitignore,
                on_file=intake,
            )
        errors = [*found.errors, *intake.errors]
        files = [source for source in found.files if source.rel in intake.contents]
        contents = intake.contents
        key = _run_key(files, intake.digests, config)
        memo = _load_run(run_file, key) if run_file else None
        if memo is not None:
            raw, file_errors, files_parsed = memo
            if progress is not None:
                progress(len(files), len(files))
        else:
            if may_reuse:
                cache = _load_cache(cache_file) if cache_file else {}
                intake.lookup_rest(cache)
            raw, file_errors, files_parsed = _analyse(
                files, intake, config, cache, cache_file, progress
            )
            if run_file:
                _save_run(run_file, key, raw, file_errors, files_parsed)
    finally:
        parser.close()
    errors.extend(file_errors)
    findings = _finish(raw, contents, _code_filter(config))
    errors.sort(key=lambda e: (e.path, e.line))
    return AuditResult(
        findings=findings,
        errors=errors,
        files_scanned=len(files),
        root=Path(root_s).as_posix(),
        files_parsed=files_parsed,
    )


__all__ = ["audit_paths", "noqa_codes"]
