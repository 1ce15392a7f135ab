"""The audit engine: find files, summarise them in parallel, link, report.

:func:`audit_paths` runs in these stages:

1. **Discover** the Python files (:mod:`asgishift.audit._discover`), honouring
   ``.gitignore``, ``exclude`` and the usual tool directories, and read them.
2. **Scan** the text of every file not in the cache for its imports and
   ``async def`` names (:mod:`asgishift.audit._closure`), in worker processes,
   from the first files discovery finds; files that mention async code are
   parsed and summarised on the way.
3. **Summarise** the rest of the *import closure of async code* with one AST
   walk per file (:mod:`asgishift.audit._walk_body`, with the rule families'
   hooks), each as soon as it is known to be in the closure, and check every
   other file's syntax so a syntax error anywhere is reported (ruff's parser
   first, :mod:`asgishift.audit._syntax`; CPython's parser, through
   :mod:`symtable`, which builds no Python AST objects, for the files ruff
   rejects or without ruff; CPython words every error). The order of this work is
   :mod:`asgishift.audit._schedule`'s. Summaries are cached per file (key:
   content digest, module name, asgishift version and a hash of the
   extractor's source code; :mod:`asgishift.audit._cache`). A worker that
   reads a file from disk again checks its size and mtime against the main
   process's read, and hands back a file edited since, which the main process
   then takes from the bytes it digested: a digest and its facts always
   describe the same content.
4. **Link** the summaries into a project-wide call graph
   (:mod:`asgishift.audit._link`) as soon as the last one is in (the workers
   may still be parsing other files) and report every hazard reachable from
   an ``async def``, one finding per call site, then apply ``# noqa``
   comments and ``select``/``ignore``/``per_file_ignores``. An unchanged tree
   (same digests, same linking settings, same audit code) reuses the last
   run's findings.

A file that cannot be read, decoded or parsed becomes a
:class:`~asgishift.audit._model.FileError` and the rest is still audited. So
does a file whose analysis raises (a bug in asgishift: ``internal`` is set,
the ``asgishift.audit`` logger has the traceback, and neither cache keeps
it); an exception anywhere else propagates.

Known limits of the static analysis (each one errs towards silence):

* Calls are followed through imports (aliases, ``from`` imports, relative
  imports, package re-exports, namespace packages), ``self``/``cls``/
  ``super()``, base classes, variables assigned from a constructor, typed by
  an annotation (also of containers and dicts) or by a project function's
  return annotation, and attributes set as ``self.x = X()`` or from an
  annotated ``__init__`` parameter. Reading an attribute of a typed variable
  (``self.size``, ``store.size``) enters the getter when it is a project
  ``@property``/``@cached_property``/``@reify``, or a class attribute
  made by calling one (``size = property(get_size)``); a sync ``with X():`` enters
  ``X.__enter__`` and ``X.__exit__`` when they are project methods; and
  ``handlers[k]()`` on a dict of functions (module-level, or local when every
  value names a function) calls each of them. A receiver whose type is
  unknown (an unannotated parameter, an unannotated return value) is not
  followed, nor is ``from x import *`` or ``getattr``.
* The graph is path-insensitive: a blocking call behind an ``if`` that never
  runs in async mode is still reported (silence it with ``# noqa: ASH1xx``).
* ``# noqa`` applies on the line of the hazard or of any hop of its chain
  (each call site's shortest chain).
* ``ASH203`` knows model instances returned by ``Model.objects`` queries (or
  bound by ``for``/``async for`` over one) in the same function, and
  ForeignKey/OneToOneField attributes declared on project model classes; a
  relation named by ``select_related``/``prefetch_related`` anywhere in the
  query (``"a"`` or ``"a__b"``, or ``Prefetch("a")``) is loaded, as is every
  non-null one after a bare ``select_related()``; a relation argument that is
  not a literal silences the query's reads; and only the first read of a
  field in a function is a query.
* ``ASH303`` looks at reads written directly in an ``async def``.
* Every file is checked, so every file that does not parse is reported (a
  file that ruff's parser accepts and CPython's would reject is the one
  exception, see :mod:`asgishift.audit._syntax`). With
  :attr:`~asgishift.audit._model.AuditConfig.whole_project` off
  (``--reachable-only``) only the import closure of async code is parsed; a
  syntax error in a file outside it is then not reported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pathspec

from asgishift.audit._cache import (
    Record,
    RunResult,
    cache_path,
    load_cache,
    load_run,
    run_key,
    save_run,
)
from asgishift.audit._closure import imports_by_text
from asgishift.audit._discover import SourceFile, discover
from asgishift.audit._lines import SourceLines
from asgishift.audit._link import link
from asgishift.audit._model import AuditConfig, AuditResult, FileError, Finding
from asgishift.audit._parse import PARSED_ONLY, Entry, Parser, no_gc
from asgishift.audit._records import FileIndex, from_plain
from asgishift.audit._schedule import Intake, summarise
from asgishift.audit.rules import calls_index, conditions, link_checks

logger = logging.getLogger("asgishift.audit")

_NOQA_RE = re.compile(
    r"#\s*noqa\b(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?",
    re.IGNORECASE,
)


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
    """Apply filters and ``# noqa``, attach snippets, count columns in characters, sort.

    A ``# noqa`` comment covering the finding's code silences it when it sits
    on the hazard's line or on the line of any hop of its chain (so the call
    in the ``async def`` can carry it). The chain is the shortest one found:
    a comment on a hop of that chain also hides longer chains to the hazard.
    """
    source = SourceLines(contents)
    line_of = source.line

    def silenced(code: str, path: str, line: int) -> bool:
        codes = noqa_codes(source.comment(path, line))
        return codes is not None and (not codes or code.startswith(tuple(codes)))

    out: list[Finding] = []
    for finding in findings:
        if not keep(finding.code, finding.path):
            continue
        text = line_of(finding.path, finding.line)
        if silenced(finding.code, finding.path, finding.line) or any(
            silenced(finding.code, hop.path, hop.line) for hop in finding.chain[:-1]
        ):
            continue
        path = finding.path
        out.append(
            Finding(
                code=finding.code,
                path=path,
                line=finding.line,
                col=source.char_col(path, finding.line, finding.col),
                end_line=finding.end_line,
                end_col=source.char_col(path, finding.end_line, finding.end_col),
                args=finding.args,
                chain=tuple(
                    dataclasses.replace(hop, col=source.char_col(hop.path, hop.line, hop.col))
                    for hop in finding.chain
                ),
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
    intake: Intake,
    config: AuditConfig,
    cache: dict[str, Record],
    cache_file: str | None,
    progress: Callable[[int, int], None] | None,
) -> RunResult:
    """Summarise and link: return raw findings, files reported, files parsed.

    Linking starts as soon as every summary is in, while the worker processes
    still parse the files outside the import closure (see
    :mod:`asgishift.audit._schedule`).
    """
    raw: list[Finding] = []

    def link_closure(entries: Mapping[str, Entry], closure: set[str]) -> None:
        summaries: dict[str, tuple[FileIndex, bytes]] = {}
        for source in files:
            rel = source.rel
            item = entries.get(rel)
            if item is None or not (config.whole_project or rel in closure):
                continue  # not parsed, or outside the import closure of async code
            if isinstance(item[1], bytes):
                summaries[rel] = from_plain(item)
        other_names = {source.rel: source.names for source in files if source.names}
        raw.extend(link(summaries, config, calls_index(), conditions(), link_checks(), other_names))

    errors: list[FileError] = []
    with no_gc():
        parsed = summarise(files, intake, config, cache, cache_file, progress, link_closure)
        for source in files:
            item = parsed.get(source.rel)
            if item is None or isinstance(item[1], bytes) or item == PARSED_ONLY:
                continue
            line, message = item
            errors.append(FileError(source.rel, line, message, source.rel in intake.crashed))
    return raw, errors, len(parsed)


def audit_paths(
    paths: Sequence[Path],
    *,
    root: Path,
    config: AuditConfig,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit the Python files under ``paths`` and return every finding.

    :param paths: files and directories to audit (directories recursively).
        When they are a part of the project (``root`` is not one of them),
        the project modules they import are read and linked too, and a
        finding is kept when the ``async def`` it is reached from is under
        ``paths`` (see ``docs/audit/index.md``).
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
    unparsable files, symlink loops and paths that are not regular files (a
    FIFO, socket or device named ``*.py``, never opened to wait on) are listed
    in ``errors``; so is a file whose analysis raised (``internal`` set, the
    traceback logged), in a worker process or this one. Any other exception
    (a bug in discovery or linking) propagates.
    """
    root_s = os.path.abspath(root)
    cache_file = cache_path(os.path.abspath(config.cache_dir), root_s) if config.cache_dir else None
    run_file = f"{cache_file}.run" if cache_file else None
    # A run that may reuse the last run's findings needs every file's digest
    # before it knows whether any file must be scanned: it reads the whole
    # tree first. Any other run starts scanning while discovery goes on.
    may_reuse = run_file is not None and os.path.exists(run_file)
    cache = load_cache(cache_file) if cache_file and not may_reuse else {}
    parser = Parser(config.jobs if config.jobs > 0 else (os.cpu_count() or 1))
    intake = Intake(config, parser, None if may_reuse else cache)

    def imports(source: SourceFile) -> list[str]:
        return imports_by_text(source, intake.contents.get(source.rel, b""))

    # Given a part of the project, follow what it imports from the rest.
    part = root_s not in {os.path.abspath(path) for path in paths}
    try:
        with no_gc():
            found = discover(
                paths,
                Path(root_s),
                exclude=config.exclude,
                respect_gitignore=config.respect_gitignore,
                on_file=intake,
                follow=imports if part else None,
            )
        errors = [*found.errors, *intake.errors]
        every = sorted([*found.files, *found.imported], key=lambda source: source.rel)
        files = [source for source in every if source.rel in intake.contents]
        contents = intake.contents
        key = run_key(files, intake.digests, config)
        memo = load_run(run_file, key) if run_file else None
        if memo is not None:
            raw, file_errors, files_parsed = memo
            if progress is not None:
                progress(len(files), len(files))
        else:
            if may_reuse:
                cache = load_cache(cache_file) if cache_file else {}
                intake.lookup_rest(cache)
            raw, file_errors, files_parsed = _analyse(
                files, intake, config, cache, cache_file, progress
            )
            if run_file and not intake.crashed:
                # After a crash the next run must analyse (and log) it again.
                save_run(run_file, key, raw, file_errors, files_parsed)
    finally:
        parser.close()
    errors.extend(file_errors)
    outside = {source.rel for source in found.imported}
    if outside:
        # Only what an ``async def`` under the given paths reaches is theirs.
        raw = [f for f in raw if (f.chain[0].path if f.chain else f.path) not in outside]
        # A crash is kept: the findings it hides may start under the paths.
        errors = [error for error in errors if error.internal or error.path not in outside]
    findings = _finish(raw, contents, _code_filter(config))
    errors.sort(key=lambda e: (e.path, e.line))
    return AuditResult(
        findings=findings,
        errors=errors,
        files_scanned=sum(source.rel not in outside for source in files),
        root=Path(root_s).as_posix(),
        files_parsed=files_parsed,
    )


__all__ = ["audit_paths", "noqa_codes"]
