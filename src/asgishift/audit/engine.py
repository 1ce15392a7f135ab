"""The audit engine: find files, summarise them in parallel, link, report.

:func:`audit_paths` runs in three stages:

1. **Discover** the Python files (:mod:`asgishift.audit._discover`), honouring
   ``.gitignore``, ``exclude`` and the usual tool directories.
2. **Summarise** each file with one AST walk (:mod:`asgishift.audit._summary`),
   in worker processes when there are many files, reusing the per-file cache
   (key: content hash, module name, asgishift version, catalogue fingerprint).
3. **Link** the summaries into a project-wide call graph
   (:mod:`asgishift.audit._link`) and report every hazard reachable from an
   ``async def``, then apply ``# noqa`` comments and ``select``/``ignore``/
   ``per_file_ignores``.

A file that cannot be read, decoded or parsed becomes a
:class:`~asgishift.audit._model.FileError` and the rest is still audited.

Known limits of the static analysis (each one errs towards silence):

* Calls are followed through imports (aliases, ``from`` imports, relative
  imports, package re-exports), ``self``/``cls``/``super()``, base classes,
  variables assigned from a constructor or typed by a simple annotation, and
  attributes set as ``self.x = X()``. A receiver whose type is unknown (an
  unannotated parameter, the return value of a project function) is not
  followed, nor is ``from x import *`` or ``getattr``.
* The graph is path-insensitive: a blocking call behind an ``if`` that never
  runs in async mode is still reported (silence it with ``# noqa: ASH1xx``).
* ``# noqa`` applies on the line of the hazard or of any hop of its
  (shortest) chain.
* ``ASH203`` knows model instances returned by ``Model.objects`` queries (or
  bound by ``for``/``async for`` over one) in the same function, and
  ForeignKey/OneToOneField attributes declared on project model classes;
  ``select_related``/``prefetch_related`` anywhere in the query silences it.
* ``ASH303`` looks at reads written directly in an ``async def``.
* Every file is parsed, so every file that does not parse is reported. With
  :attr:`~asgishift.audit._model.AuditConfig.whole_project` off
  (``--reachable-only``) only the import closure of async code is parsed; a
  syntax error in a file outside it is then not reported.
"""

from __future__ import annotations

import ast
import concurrent.futures
import gc
import hashlib
import logging
import marshal
import multiprocessing
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import cast

import pathspec

from asgishift import __version__
from asgishift.audit._discover import SourceFile, discover
from asgishift.audit._link import link
from asgishift.audit._model import AuditConfig, AuditResult, FileError, Finding
from asgishift.audit._summary import (
    FileIndex,
    PlainSummary,
    from_plain,
    resolve_relative,
    summarize,
    to_plain,
)
from asgishift.audit.rules import all_rules

logger = logging.getLogger("asgishift.audit")

#: Bump when the summary format or extraction logic changes (invalidates caches).
SUMMARY_VERSION = "5"
#: Below this many files to parse, worker processes cost more than they save.
PARALLEL_MIN_FILES = 64
_BATCH = 48

_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_NOQA_RE = re.compile(
    r"#\s*noqa\b(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?",
    re.IGNORECASE,
)

#: A parsed file as stored in the cache and sent back by workers: a plain
#: summary, or ``(line, message)`` for a file reported as an error.
_Entry = PlainSummary | tuple[int, str]


def _parse_file(source: SourceFile, data: bytes) -> _Entry:
    """Decode, parse and summarise one file; never raises for bad input."""
    try:
        text: str | bytes = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = b"\n".join(data.split(b"\n", 2)[:2])
        if _CODING_RE.search(head) is None:
            line = data.count(b"\n", 0, exc.start) + 1
            return (
                line,
                f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8 "
                "or add it to `exclude`",
            )
        text = data  # a PEP 263 coding cookie: let the parser decode it
    try:
        tree = ast.parse(text, filename=source.rel)
    except SyntaxError as exc:
        return (
            exc.lineno or 0,
            f"syntax error: {exc.msg}; fix the file or add it to `exclude` "
            "(asgishift parses with the Python running it)",
        )
    except (ValueError, RecursionError, MemoryError) as exc:
        return (0, f"cannot parse: {exc}; add it to `exclude`")
    try:
        return to_plain(summarize(tree, source.module, source.is_package))
    except RecursionError:
        return (0, "expression nesting too deep to analyse; add it to `exclude`")


def _parse_batch(batch: list[SourceFile]) -> list[tuple[str, _Entry]]:
    """Worker entry point: parse a batch of files, reading them from disk."""
    out: list[tuple[str, _Entry]] = []
    with _no_gc(), warnings.catch_warnings():
        # Invalid escape sequences and the like are the project's business.
        warnings.simplefilter("ignore")
        for source in batch:
            try:
                with open(source.abspath, "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                out.append((source.rel, (0, f"cannot read: {exc}")))
                continue
            out.append((source.rel, _parse_file(source, data)))
    return out


def _parse_batch_marshalled(batch: list[SourceFile]) -> bytes:
    """Worker entry point for the pool: :func:`_parse_batch`, marshalled.

    Marshal moves plain tuples between processes several times faster than
    the pickle the pool would otherwise use.
    """
    return marshal.dumps(_parse_batch(batch))


class _no_gc:
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


def _cache_path(cache_dir: str, root: str) -> str:
    """Return the cache file for this root, asgishift version and catalogue."""
    fingerprint = hashlib.blake2b(digest_size=8)
    tag = f"{__version__}|{SUMMARY_VERSION}|{sys.version_info[:2]}|{root}"
    fingerprint.update(tag.encode())
    for rule in all_rules():
        fingerprint.update(rule.code.encode())
    return os.path.join(cache_dir, f"audit-{fingerprint.hexdigest()}.marshal")


def _load_cache(path: str) -> dict[str, tuple[str, _Entry]]:
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


def _save_cache(path: str, entries: dict[str, tuple[str, _Entry]]) -> None:
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


def _pool_context() -> multiprocessing.context.BaseContext:
    """Pick the cheapest safe start method: fork when single-threaded on POSIX."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    # Forking a multi-threaded process can deadlock (and warns on 3.12+).
    if "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


#: Text that makes a file worth parsing on its own: async code, the
#: ``sync_to_async`` family, middleware, Flask globals and thread starts.
_SEED_RE = re.compile(rb"async|await|get_response|MIDDLEWARE|flask|Thread\(|submit\(|executor")
_IMPORT_LINE_RE = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?([\w, \t]*)|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)


class _Parser:
    """Parse files in-process or in a lazily started worker pool, batch by batch."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def parse(
        self, sources: list[SourceFile], contents: dict[str, bytes]
    ) -> Iterator[list[tuple[str, _Entry]]]:
        """Yield parsed ``(rel, entry)`` batches as they complete."""
        if len(sources) < PARALLEL_MIN_FILES or self.jobs == 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for source in sources:
                    yield [(source.rel, _parse_file(source, contents[source.rel]))]
            return
        if self.pool is None:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=_pool_context()
            )
        # Largest files first so the last batch does not hold the run up.
        ordered = sorted(sources, key=lambda s: len(contents[s.rel]), reverse=True)
        size = max(8, min(_BATCH, len(ordered) // (self.jobs * 4) or 1))
        batches = [ordered[i : i + size] for i in range(0, len(ordered), size)]
        pending = {s.rel: s for s in ordered}
        try:
            futures = [self.pool.submit(_parse_batch_marshalled, batch) for batch in batches]
            for future in concurrent.futures.as_completed(futures):
                batch_result: list[tuple[str, _Entry]] = marshal.loads(future.result())
                for rel, _ in batch_result:
                    pending.pop(rel, None)
                yield batch_result
        except concurrent.futures.process.BrokenProcessPool as exc:
            # E.g. a script without an ``if __name__ == "__main__"`` guard under
            # the forkserver start method: finish in this process instead.
            logger.warning("audit worker processes failed (%s); parsing in-process", exc)
            self.close()
            self.jobs = 1
            yield from self.parse(list(pending.values()), contents)

    def close(self) -> None:
        """Stop the worker pool, if one was started."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def _imports_by_text(source: SourceFile, data: bytes) -> Iterator[str]:
    """Yield the dotted names a file's import lines mention (a cheap pre-parse scan)."""
    for match in _IMPORT_LINE_RE.finditer(data):
        dots, base, names, plain = match.groups()
        if plain is not None:
            for part in plain.split(b","):
                name = part.strip().split()[0] if part.strip() else b""
                if name:
                    yield name.decode("ascii", "replace")
            continue
        module = base.decode("ascii", "replace")
        if dots:
            module = resolve_relative(source.module, source.is_package, len(dots), module or None)
        yield module
        for part in names.split(b","):
            name = part.strip().split()[0] if part.strip() else b""
            if name:
                yield f"{module}.{name.decode('ascii', 'replace')}" if module else name.decode()


def _summarise(
    files: list[SourceFile],
    contents: dict[str, bytes],
    config: AuditConfig,
    root: str,
    progress: Callable[[int, int], None] | None,
) -> dict[str, _Entry]:
    """Return the plain summary (or error) of every file that can matter.

    Only the *import closure of async code* is parsed: files whose text
    mentions async code (or middleware, Flask, threads), files whose import
    lines name a module defining an ``async def`` (they may discard a
    coroutine, ``ASH402``), and every project module those import,
    transitively. Code outside it cannot be reached by a call from an
    ``async def`` (the engine resolves calls through imports only), so
    skipping it changes no finding and, on Django, skips three files in four.
    Cached summaries are reused whatever their round.
    """
    total = len(files)
    cache_file = _cache_path(os.path.abspath(config.cache_dir), root) if config.cache_dir else None
    cache = _load_cache(cache_file) if cache_file else {}
    by_module: dict[str, list[SourceFile]] = {}
    for source in files:
        by_module.setdefault(source.module, []).append(source)
    digests = {source.rel: _digest(source, contents[source.rel]) for source in files}
    results: dict[str, _Entry] = {}
    parsed_now: set[str] = set()
    wanted: set[str] = set()
    done = 0
    parser = _Parser(config.jobs if config.jobs > 0 else (os.cpu_count() or 1))

    def want(sources: Iterable[SourceFile]) -> list[SourceFile]:
        fresh: list[SourceFile] = []
        for source in sources:
            if source.rel not in wanted:
                wanted.add(source.rel)
                fresh.append(source)
        return fresh

    def modules_named(names: Iterable[str]) -> Iterator[SourceFile]:
        # The longest module prefix is the one name resolution consults
        # (``django.db.models.Model`` -> ``django.db.models``).
        for name in names:
            parts = name.split(".")
            for i in range(len(parts), 0, -1):
                found = by_module.get(".".join(parts[:i]))
                if found:
                    yield from found
                    break

    def run(round_files: list[SourceFile]) -> list[SourceFile]:
        """Summarise one round; return the project modules it imports."""
        nonlocal done
        misses: list[SourceFile] = []
        for source in round_files:
            hit = cache.get(source.rel)
            if hit is not None and hit[0] == digests[source.rel]:
                results[source.rel] = hit[1]
            else:
                misses.append(source)
        done += len(round_files) - len(misses)
        if progress is not None:
            progress(done, total)
        for batch in parser.parse(misses, contents):
            for rel, entry in batch:
                results[rel] = entry
                parsed_now.add(rel)
            done += len(batch)
            if progress is not None:
                progress(done, total)
        imported: list[str] = []
        for source in round_files:
            imported.extend(_imported_names(results[source.rel]))
        return list(modules_named(imported))

    try:
        seeds = (
            files
            if config.whole_project
            else [s for s in files if _SEED_RE.search(contents[s.rel])]
        )
        frontier = want(seeds)
        async_modules: dict[str, set[bytes]] | None = None
        while frontier:
            frontier = want(run(frontier))
            if not frontier and async_modules is None:
                # Files that import a module defining an ``async def`` and
                # mention one of its names as a call may discard a coroutine.
                async_modules = {}
                for entry in results.values():
                    module, names = _async_facts(entry)
                    if names:
                        async_modules.setdefault(module, set()).update(names)
                rest = [s for s in files if s.rel not in wanted]
                frontier = want(s for s in rest if _may_call(s, contents[s.rel], async_modules))
    finally:
        parser.close()
    if progress is not None:
        progress(total, total)
    if cache_file and parsed_now:
        entries = {rel: cache[rel] for rel in digests if rel in cache and rel not in results}
        entries.update((rel, (digests[rel], entry)) for rel, entry in results.items())
        _save_cache(cache_file, entries)
    return results


def _imported_names(entry: _Entry) -> tuple[str, ...]:
    """Return the ``imported`` names of a plain summary (none for an error)."""
    if not isinstance(entry[1], bytes):
        return ()
    return cast("tuple[str, ...]", entry[0][7])


def _async_facts(entry: _Entry) -> tuple[str, set[bytes]]:
    """Return ``(module, "name(" of each async def)`` of a plain summary."""
    if not isinstance(entry[1], bytes):
        return "", set()
    functions = cast("tuple[tuple[object, ...], ...]", entry[0][2])
    names = {
        cast(str, f[0]).rsplit(".", 1)[-1].encode() + b"(" for f in functions if f[3] and not f[4]
    }
    return cast(str, entry[0][0]), names


def _may_call(source: SourceFile, data: bytes, async_modules: dict[str, set[bytes]]) -> bool:
    """Return whether a file imports an async module and mentions a call of its coroutines."""
    for name in _closure_names(_imports_by_text(source, data)):
        calls = async_modules.get(name)
        if calls and any(call in data for call in calls):
            return True
    return False


def _closure_names(names: Iterable[str]) -> Iterator[str]:
    """Yield each dotted name and its parent packages."""
    for name in names:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            yield ".".join(parts[:i])


def _read_all(
    files: list[SourceFile], max_bytes: int, errors: list[FileError]
) -> tuple[list[SourceFile], dict[str, bytes]]:
    """Read every file's bytes, reporting unreadable and oversized ones."""
    kept: list[SourceFile] = []
    contents: dict[str, bytes] = {}
    for source in files:
        try:
            size = os.path.getsize(source.abspath)
            if size > max_bytes:
                errors.append(
                    FileError(
                        source.rel,
                        0,
                        f"file is {size} bytes, over max_file_bytes={max_bytes}; raise "
                        "`max_file_bytes` or add it to `exclude`",
                    )
                )
                continue
            with open(source.abspath, "rb") as fh:
                contents[source.rel] = fh.read()
        except OSError as exc:
            errors.append(FileError(source.rel, 0, f"cannot read: {exc}"))
            continue
        kept.append(source)
    return kept, contents


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
    out.sort(key=lambda f: (f.path, f.line, f.col, f.code))
    return out


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
    found = discover(
        paths, Path(root_s), exclude=config.exclude, respect_gitignore=config.respect_gitignore
    )
    errors = list(found.errors)
    files, contents = _read_all(found.files, config.max_file_bytes, errors)
    with _no_gc():
        parsed = _summarise(files, contents, config, root_s, progress)
        summaries: dict[str, tuple[FileIndex, bytes]] = {}
        for source in files:
            item = parsed.get(source.rel)
            if item is None:
                continue  # outside the import closure of async code
            if isinstance(item[1], bytes):
                summaries[source.rel] = from_plain(item)
            else:
                line, message = item
                errors.append(FileError(source.rel, line, message))
        raw = link(summaries, config)
    findings = _finish(raw, contents, _code_filter(config))
    errors.sort(key=lambda e: (e.path, e.line))
    return AuditResult(
        findings=findings,
        errors=errors,
        files_scanned=len(files),
        root=Path(root_s).as_posix(),
    )


__all__ = ["SUMMARY_VERSION", "audit_paths", "noqa_codes"]
