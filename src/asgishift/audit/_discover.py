"""Find the Python files an audit reads, and name their modules.

Walks the given paths, skipping version-control and environment directories
(``.git``, ``.venv``, ``__pycache__``, ``node_modules``...), paths matched by
``.gitignore`` files (gitignore semantics through :mod:`pathspec`) and the
configured ``exclude`` globs. Symbolic links are followed, but a directory
reached twice through a link (a loop) is reported instead of walked again:
the link, not its target, since links are walked last. So is a link to a
file audited through its real path, and a ``*.py`` link loop.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pathspec

from asgishift.audit._model import FileError
from asgishift.audit._regular import NOT_REGULAR, NotRegularFile, read_regular

logger = logging.getLogger("asgishift.audit")

#: Directory names never audited.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        "node_modules",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".asgishift_cache",
        "site-packages",
    }
)


@dataclass
class SourceFile:
    """One Python file to audit.

    :param abspath: absolute path (as walked; may go through a symlink).
    :param rel: path relative to the root, POSIX separators.
    :param module: dotted module name, as Python imports it with the root
        (or the nearest ``src`` directory above the file) on ``sys.path``:
        directories without an ``__init__.py`` between them are namespace
        packages (PEP 420), so ``nsb/util.py`` is ``nsb.util`` and
        ``src/ns/mod.py`` is ``ns.mod``. Two files share a name only when a
        directory whose name is no identifier separates them from the root.
    :param is_package: the file is an ``__init__.py``.
    :param names: other dotted names the module is importable by, with
        another of those directories on ``sys.path`` (a script's or a test's
        own directory): ``src/ns/mod.py`` is also ``mod`` and ``src.ns.mod``.
    """

    abspath: str
    rel: str
    module: str
    is_package: bool
    names: tuple[str, ...] = ()


@dataclass
class Discovery:
    """The result of walking the paths: files to read and paths reported.

    :param files: the files under the given paths.
    :param imported: the project's files outside them that they import,
        directly or not (only found with ``follow``, see :func:`discover`).
    :param errors: symlink loops, missing paths, unreadable directories.
    """

    files: list[SourceFile] = field(default_factory=list)
    imported: list[SourceFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


def _rel(path: str, root: str) -> str:
    """Return ``path`` relative to ``root`` with POSIX separators (absolute if outside)."""
    prefix = root.rstrip(os.sep) + os.sep
    if path.startswith(prefix):
        rel = path[len(prefix) :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return Path(path).as_posix()
    if rel.startswith(".."):
        return Path(path).as_posix()
    return Path(rel).as_posix()


_GROUP_RE = re.compile(r"\(\?P<\w+>")


class _Spec(NamedTuple):
    """A parsed ignore file: the spec, and one expression to try first.

    :param spec: the gitignore-style spec (it decides).
    :param any_match: matches every path that some pattern of ``spec``
        matches, ignoring or re-including (``None``: not available); a path
        it does not match is not ignored, without trying the patterns one by
        one (most paths of a tree).
    """

    spec: pathspec.PathSpec[Any]
    any_match: re.Pattern[str] | None


def _compile_spec(lines: Sequence[str]) -> _Spec:
    """Parse gitignore-style ``lines`` into a :class:`_Spec`."""
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    parts: list[str] = []
    for pattern in spec.patterns:
        if pattern.include is None:
            continue  # a comment or blank line
        regex = getattr(pattern, "regex", None)
        if not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
            return _Spec(spec, None)
        # Each pattern marks directory matches with the same named group;
        # one alternation of them all needs plain groups.
        parts.append(f"(?:{_GROUP_RE.sub('(?:', regex.pattern)})")
    try:
        return _Spec(spec, re.compile("|".join(parts) or "(?!)"))
    except re.error:  # pragma: no cover - a pattern form pathspec does not emit today
        return _Spec(spec, None)


def _matches(compiled: _Spec, rel: str) -> bool:
    """Return whether ``rel`` (POSIX, relative to the spec's directory) is ignored."""
    if compiled.any_match is not None and compiled.any_match.search(rel) is None:
        return False
    return compiled.spec.match_file(rel)


class _Ignores:
    """Gitignore files met while walking, plus the configured excludes."""

    def __init__(self, root: str, exclude: Sequence[str], respect_gitignore: bool) -> None:
        self.root = root
        self.exclude = _compile_spec(exclude) if exclude else None
        self.respect_gitignore = respect_gitignore
        self.specs: dict[str, _Spec | None] = {}

    def _spec(self, directory: str) -> _Spec | None:
        """Return the parsed ``.gitignore`` of a directory (memoised)."""
        if directory not in self.specs:
            spec = None
            path = os.path.join(directory, ".gitignore")
            try:
                # Never ``open()``: a FIFO named ``.gitignore`` would block the run.
                spec = _compile_spec(read_regular(path).decode("utf-8").splitlines())
            except NotRegularFile:
                logger.warning("ignoring %s: not a regular file", path)
            except (OSError, UnicodeDecodeError):
                spec = None
            self.specs[directory] = spec
        return self.specs[directory]

    def ignored(self, path: str, is_dir: bool, gitdirs: Sequence[str]) -> bool:
        """Return whether ``path`` is excluded or git-ignored.

        :param gitdirs: directories (root first) whose ``.gitignore`` applies.
        """
        suffix = "/" if is_dir else ""
        if self.exclude is not None:
            rel = _rel(path, self.root)
            if _matches(self.exclude, rel + suffix):
                return True
        if self.respect_gitignore:
            for directory in gitdirs:
                spec = self._spec(directory)
                if spec is not None and _matches(spec, _rel(path, directory) + suffix):
                    return True
        return False


def _gitdirs(start: str, root: str) -> list[str]:
    """Return the directories from ``root`` down to ``start`` (inclusive)."""
    dirs = [start]
    current = start
    while current != root and current.startswith(root):
        parent = os.path.dirname(current)
        if parent == current:
            break
        dirs.append(parent)
        current = parent
    dirs.reverse()
    return dirs


def _module_files(name: str, bases: Sequence[str]) -> Iterator[str]:
    """Yield the files importing dotted ``name`` runs, from each of ``bases`` on ``sys.path``.

    Those are the ``__init__.py`` of each package on the way and the module
    itself (``a/b.py`` or ``a/b/__init__.py`` for ``a.b``); a name that is
    not a module of the project yields nothing.
    """
    parts = name.split(".")
    if not all(part.isidentifier() and part not in SKIP_DIRS for part in parts):
        return
    for base in bases:
        for depth in range(1, len(parts) + 1):
            path = os.path.join(base, *parts[:depth])
            if depth == len(parts) and os.path.isfile(path + ".py"):
                yield path + ".py"
            if not os.path.isdir(path):
                break
            init = os.path.join(path, "__init__.py")
            if os.path.isfile(init):
                yield init


def discover(
    paths: Iterable[Path],
    root: Path,
    *,
    exclude: Sequence[str] = (),
    respect_gitignore: bool = True,
    on_file: Callable[[SourceFile], None] | None = None,
    follow: Callable[[SourceFile], Iterable[str]] | None = None,
) -> Discovery:
    """Walk ``paths`` and return the Python files to audit.

    :param paths: files or directories; directories are walked recursively.
    :param root: project root every reported path is relative to.
    :param exclude: gitignore-style globs relative to ``root``.
    :param respect_gitignore: honour ``.gitignore`` files between ``root``
        and each file.
    :param on_file: called with each file as soon as it is found (in walk
        order, before the sort), so a caller can start work on it while
        the rest of the tree is walked.
    :param follow: returns the dotted names a file (already passed to
        ``on_file``) imports. With it, the modules of those names found under
        ``root`` or ``root/src`` (not excluded, not under ``paths``) are
        added to :attr:`Discovery.imported`, then what they import, and so
        on: the rest of the project is not walked.
    :return: a :class:`Discovery`; files are sorted by relative path and
        unique, symlink loops and missing paths are in ``errors``.
    """
    root_s = os.path.abspath(root)
    ignores = _Ignores(root_s, exclude, respect_gitignore)
    result = Discovery()
    seen_files: set[str] = set()
    package_dirs: dict[str, bool] = {}

    def is_package_dir(directory: str) -> bool:
        if directory not in package_dirs:
            package_dirs[directory] = os.path.isfile(os.path.join(directory, "__init__.py"))
        return package_dirs[directory]

    prefix = root_s.rstrip(os.sep) + os.sep
    layouts: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def layout(directory: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        # The packages enclosing a directory (outermost first), then the
        # identifier-named directories above them up to the root (innermost
        # first): the same for every file of the directory, so worked out once.
        known = layouts.get(directory)
        if known is not None:
            return known
        start = directory
        packages: list[str] = []
        while is_package_dir(directory):
            directory, pkg = os.path.split(directory)
            packages.append(pkg)
            if not pkg:
                break
        packages.reverse()
        outers: list[str] = []
        while directory.startswith(prefix):
            directory, outer = os.path.split(directory)
            if not outer.isidentifier():
                break
            outers.append(outer)
        known = layouts[start] = (tuple(packages), tuple(outers))
        return known

    def add(path: str, into: list[SourceFile] = result.files) -> None:
        # Symlinked directories are deduplicated by inode in _walk; here only
        # the same path given twice (``audit pkg pkg/mod.py``) needs catching.
        path = os.path.normpath(path)
        if path in seen_files:
            return
        seen_files.add(path)
        rel = _rel(path, root_s)
        directory, name = os.path.split(path)
        stem = name[:-3]
        is_package = stem == "__init__"
        packages, outers = layout(directory)
        parts = [*packages] if is_package else [*packages, stem]
        names = [".".join(p for p in parts if p) or stem]
        for outer in outers:
            parts.insert(0, outer)
            names.append(".".join(p for p in parts if p))
        # Imported from the nearest ``src`` directory above, else the root.
        module = names.pop(outers.index("src") if "src" in outers else len(outers))
        found = SourceFile(path, rel, module, is_package, tuple(names))
        into.append(found)
        if on_file is not None:
            on_file(found)

    for given in paths:
        start = os.path.abspath(given)
        if os.path.isfile(start):
            if start.endswith((".py", ".pyi")) or os.path.samefile(start, given):
                add(start)
            continue
        if not os.path.isdir(start):
            # A FIFO, socket or device exists but is never opened (a FIFO blocks).
            missing = (
                "path does not exist (or is a broken symlink); check the path given to "
                "`asgishift audit`"
            )
            message = NOT_REGULAR if os.path.exists(start) else missing
            result.errors.append(FileError(_rel(start, root_s), 0, message))
            continue
        _walk(start, root_s, ignores, result, add)
    if follow is not None:
        bases = (root_s, os.path.join(root_s, "src"))
        frontier = result.files
        while frontier:
            known = len(result.imported)
            for name in sorted({name for source in frontier for name in follow(source)}):
                for path in _module_files(name, bases):
                    gitdirs = _gitdirs(os.path.dirname(path), root_s)
                    if path not in seen_files and not ignores.ignored(path, False, gitdirs):
                        add(path, result.imported)
            frontier = result.imported[known:]
        result.imported.sort(key=lambda f: f.rel)
    result.files.sort(key=lambda f: f.rel)
    return result


def _walk(
    start: str,
    root: str,
    ignores: _Ignores,
    result: Discovery,
    add: Callable[[str], None],
) -> None:
    """Walk one directory tree with loop detection, calling ``add`` per file.

    Symlinked directories are walked after every directory reached without
    one, and linked files are added after every real file, so when a link and
    its target are both in the tree the target's real path is the one audited
    (and the link the one reported), whatever their names' order.
    """
    visited: set[tuple[int, int]] = set()
    base_gitdirs = _gitdirs(start, root) if start.startswith(root) else [start]
    stack: list[tuple[str, list[str]]] = [(start, base_gitdirs)]
    links: list[tuple[str, list[str]]] = []
    real_files: set[tuple[int, int]] = set()
    file_links: list[str] = []
    while stack or links:
        directory, gitdirs = stack.pop() if stack else links.pop()
        try:
            st = os.stat(directory)
        except OSError as exc:
            result.errors.append(FileError(_rel(directory, root), 0, f"cannot read: {exc}"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            result.errors.append(
                FileError(
                    _rel(directory, root),
                    0,
                    "symlink loop: this directory was already audited through another path; "
                    "remove the link or add it to `exclude`",
                )
            )
            continue
        visited.add(key)
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            result.errors.append(FileError(_rel(directory, root), 0, f"cannot list: {exc}"))
            continue
        subdirs = gitdirs
        if ignores.respect_gitignore and any(e.name == ".gitignore" for e in entries):
            subdirs = [*gitdirs, directory] if directory not in gitdirs else gitdirs
        for entry in sorted(entries, key=lambda e: e.name, reverse=True):
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError as exc:
                # A link loop (ELOOP) named *.py is a file the user expects audited.
                if name.endswith(".py") and not ignores.ignored(entry.path, False, subdirs):
                    why = "symlink loop" if exc.errno == errno.ELOOP else "cannot read"
                    result.errors.append(
                        FileError(_rel(entry.path, root), 0, f"{why}: {exc.strerror}; remove it")
                    )
                continue
            if is_dir:
                if name in SKIP_DIRS or name.endswith(".egg-info"):
                    continue
                if ignores.ignored(entry.path, True, subdirs):
                    continue
                (links if entry.is_symlink() else stack).append((entry.path, subdirs))
            elif name.endswith(".py"):
                if ignores.ignored(entry.path, False, subdirs):
                    continue
                if entry.is_symlink():
                    if not os.path.exists(entry.path):
                        result.errors.append(
                            FileError(_rel(entry.path, root), 0, "broken symlink; remove it")
                        )
                    else:
                        file_links.append(entry.path)
                    continue
                # Files share their directory's device; inode() costs no system call.
                real_files.add((st.st_dev, entry.inode()))
                add(entry.path)
    for path in sorted(file_links):
        # After every real file: a link to one of them is the duplicate, not it.
        try:
            target = os.stat(path)
        except OSError:
            continue  # removed since the walk saw it
        key = (target.st_dev, target.st_ino)
        if key in real_files:
            result.errors.append(
                FileError(
                    _rel(path, root),
                    0,
                    "symlink to a file already audited through another path; "
                    "remove the link or add it to `exclude`",
                )
            )
            continue
        real_files.add(key)
        add(path)


__all__ = ["SKIP_DIRS", "Discovery", "SourceFile", "discover"]
