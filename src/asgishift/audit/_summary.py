"""Summarise one parsed module, and fingerprint the code that does it.

:func:`summarize` runs the single AST walk (:class:`~asgishift.audit._walk_body.
Walker`) with the hooks of every rule family (:func:`asgishift.audit.rules.
walk_hooks`). :func:`extractor_fingerprint` hashes the source of every module
that decides what a summary holds, so the per-file cache is invalidated by any
change to them, never by a hand-kept version number.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache

from asgishift.audit._records import FileSummary
from asgishift.audit._walk_body import Walker
from asgishift.audit.rules import walk_hooks


def summarize(tree: ast.Module, module: str, is_package: bool) -> FileSummary:
    """Extract the summary of one parsed module.

    :param tree: the module's AST.
    :param module: its dotted module name (``"shop.views"``).
    :param is_package: the file is a package's ``__init__.py`` (relative
        imports resolve against the package itself).
    :return: the :class:`~asgishift.audit._records.FileSummary`.
    """
    return Walker(module, is_package, walk_hooks()).run(tree)


#: The modules whose code decides what a cached entry holds.
EXTRACTOR_MODULES: tuple[str, ...] = (
    "asgishift.audit._closure",
    "asgishift.audit._guards",
    "asgishift.audit._loops",
    "asgishift.audit._newer_syntax",
    "asgishift.audit._parse",
    "asgishift.audit._records",
    "asgishift.audit._regular",
    "asgishift.audit._scope",
    "asgishift.audit._summary",
    "asgishift.audit._tables",
    "asgishift.audit._values",
    "asgishift.audit._walk",
    "asgishift.audit._walk_body",
    "asgishift.audit._walk_calls",
    "asgishift.audit._walk_names",
    "asgishift.audit.rules",
    "asgishift.audit.rules._family",
    "asgishift.audit.rules.auth_mixins",
    "asgishift.audit.rules.blocking",
    "asgishift.audit.rules.held_locks",
    "asgishift.audit.rules.hidden_queries",
    "asgishift.audit.rules.mail_backends",
    "asgishift.audit.rules.migration",
    "asgishift.audit.rules.orm",
    "asgishift.audit.rules.wrappers",
)


#: The modules whose code decides the findings made from the summaries.
LINKER_MODULES: tuple[str, ...] = (
    *EXTRACTOR_MODULES,
    "asgishift.audit._link",
    "asgishift.audit._model",
    "asgishift.audit._symbols",
    "asgishift.audit.engine",
)


def extractor_fingerprint() -> str:
    """Return a hex digest of the source of :data:`EXTRACTOR_MODULES`.

    :return: 16 hex digits; changes whenever any of those files changes.
    """
    return source_fingerprint(EXTRACTOR_MODULES)


@cache
def source_fingerprint(modules: tuple[str, ...]) -> str:
    """Return a hex digest of the source files of ``modules`` (dotted names).

    :return: 16 hex digits; changes whenever any of those files changes.
    """
    digest = hashlib.blake2b(digest_size=8)
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:  # pragma: no cover - a frozen build: fall back to the name
            digest.update(name.encode())
            continue
        with open(origin, "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()


__all__ = [
    "EXTRACTOR_MODULES",
    "LINKER_MODULES",
    "extractor_fingerprint",
    "source_fingerprint",
    "summarize",
]
