"""The audit's two caches: per-file records, and the last run's findings.

* The per-file cache maps each file's relative path to a :data:`Record`
  (content digest, closure facts, entry): a file whose digest is unchanged is
  neither scanned nor parsed again.
* The run memo keeps the raw findings of the last run with a key over every
  file's digest and the linking settings: an unchanged tree reuses them and
  links nothing.

Both are :mod:`marshal` files (plain tuples of strings are read several times
faster than with pickle; the file name carries the Python version, marshal's
format is per version). A missing, corrupt or unwritable cache only makes a
run slower: it is logged, never raised.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import sys

from asgishift import __version__
from asgishift.audit._closure import Facts
from asgishift.audit._discover import SourceFile
from asgishift.audit._model import AuditConfig, FileError, Finding, Hop
from asgishift.audit._parse import Entry
from asgishift.audit._regular import open_regular
from asgishift.audit._summary import LINKER_MODULES, extractor_fingerprint, source_fingerprint

logger = logging.getLogger("asgishift.audit")

#: One cache record: ``(content digest, closure facts, entry or None)``.
Record = tuple[str, Facts, Entry | None]
#: A run's raw findings, the files it reported, and how many files it parsed.
RunResult = tuple[list[Finding], list[FileError], int]


def cache_path(cache_dir: str, root: str) -> str:
    """Return the cache file for this root, asgishift version and catalogue.

    :param cache_dir: the cache directory (absolute).
    :param root: the project root (absolute).
    """
    fingerprint = hashlib.blake2b(digest_size=8)
    tag = f"{__version__}|{extractor_fingerprint()}|{sys.version_info[:2]}|{root}"
    fingerprint.update(tag.encode())
    return os.path.join(cache_dir, f"audit-{fingerprint.hexdigest()}.marshal")


def load_cache(path: str) -> dict[str, Record]:
    """Load the per-file cache ``{path: record}``, or an empty one if absent or unreadable."""
    try:
        with open_regular(path) as fh:  # a FIFO there must not block the run
            data = marshal.load(fh)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # a corrupt or foreign cache is only a slower run
        logger.info("ignoring unreadable audit cache %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_cache(path: str, entries: dict[str, Record]) -> None:
    """Write the per-file cache atomically; failures are logged, never raised."""
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


def digest(source: SourceFile, data: bytes) -> str:
    """Return the cache key of one file's content and module name (32 hex digits).

    SHA-256 (hardware-accelerated on most CPUs) hashes source files about
    twice as fast as BLAKE2 here.
    """
    h = hashlib.sha256(data)
    h.update(f"\0{source.module}\0{int(source.is_package)}".encode())
    return h.hexdigest()[:32]


def run_key(files: list[SourceFile], digests: dict[str, str], config: AuditConfig) -> str:
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


def load_run(path: str, key: str) -> RunResult | None:
    """Return the raw findings of a previous run with the same key, or ``None``.

    A warm run over an unchanged tree then reads one small file instead of
    every summary and links nothing.
    """
    try:
        with open_regular(path) as fh:  # a FIFO there must not block the run
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


def save_run(
    path: str, key: str, findings: list[Finding], errors: list[FileError], parsed: int
) -> None:
    """Write the raw findings of this run for :func:`load_run`; failures are logged."""
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


__all__ = [
    "Record",
    "RunResult",
    "cache_path",
    "digest",
    "load_cache",
    "load_run",
    "run_key",
    "save_cache",
    "save_run",
]
