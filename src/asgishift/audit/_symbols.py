"""The project's symbol table: its modules, functions and classes, and name resolution.

:class:`Symbols` indexes the summaries of every file (module alias tables,
functions, classes and their typed members) and resolves a dotted name the
way Python would find it across modules: module aliases and re-exports
(``from .x import y`` in a package ``__init__``), module globals typed by the
call that made them (``LOCK = threading.Lock()``), class members (methods,
``self.x = X()`` attributes, annotated ``__init__`` parameters), the return
annotations of project functions (``def load() -> Path``), base classes in
Python's method resolution order (C3) and the names a ``from m import *``
binds; a name that leaves the project is kept as the canonical dotted name
(``"requests.Session.get"``). Function bodies are decoded lazily, when first
asked for. The linker's :class:`~asgishift.audit._link.Graph` builds the
call graph on top of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from asgishift.audit._records import (
    Body,
    ClassSummary,
    FileIndex,
    FuncInfo,
    Site,
    body_record,
    decode_bodies,
)
from asgishift.audit._tables import PROPERTY_TYPES, RETURN_TYPES, SUBCLASS_METHODS, TYPE_ALIASES

_MAX_DEPTH = 12


class Resolved(NamedTuple):
    """What a dotted name is: ``kind`` is ``"func"``, ``"class"``, ``"ext"`` or ``"none"``.

    :param key: the project function/class key, or the external dotted name.
    :param seen: every name passed through while resolving (aliases, members).
    """

    kind: str
    key: str
    seen: tuple[str, ...]


class Symbols:
    """The project's modules, functions and classes, with memoised name resolution.

    :param summaries: file path to its index and marshalled bodies.
    :param other_names: file path to the other dotted names its module is
        importable by (:attr:`~asgishift.audit._discover.SourceFile.names`).
    """

    def __init__(
        self,
        summaries: dict[str, tuple[FileIndex, bytes]],
        other_names: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.modules: dict[str, dict[str, str]] = {}
        self.funcs: dict[str, tuple[FuncInfo, str]] = {}
        self.classes: dict[str, tuple[ClassSummary, str]] = {}
        self.members: dict[str, dict[str, str]] = {}
        # module -> the modules of its ``from m import *`` statements, in order
        self.stars: dict[str, tuple[str, ...]] = {}
        self.summaries = summaries
        self._raw_bodies = {path: data for path, (_, data) in summaries.items()}
        self._bodies: dict[str, tuple[tuple[Any, ...], ...]] = {}
        self._records: dict[str, Body] = {}
        for path, (summary, _) in summaries.items():
            # Two files can map to one module name (scripts or test directories
            # without __init__.py); the first (by path) owns the name, the
            # others stay entry points under a path-qualified key.
            self.modules.setdefault(summary.module, dict(summary.aliases))
            if summary.stars:
                self.stars.setdefault(summary.module, summary.stars)
            for func in summary.functions:
                key = func.qualname
                if key in self.funcs:
                    key = f"{key}@{path}"
                self.funcs[key] = (func, path)
            for cls in summary.classes:
                if cls.qualname not in self.classes:
                    self.classes[cls.qualname] = (cls, path)
                    self.members[cls.qualname] = dict(cls.members)
        # A module importable by other names (namespace packages) answers to
        # them too: its aliases plus its own top-level functions and classes.
        for path, names in (other_names or {}).items():
            if not names or path not in summaries:
                continue
            summary = summaries[path][0]
            table = dict(summary.aliases)
            for qual in (
                *(f.qualname for f in summary.functions),
                *(c.qualname for c in summary.classes),
            ):
                head, _, name = qual.rpartition(".")
                if head == summary.module:
                    table.setdefault(name, qual)
            for name in names:
                self.modules.setdefault(name, table)
        self._resolved: dict[str, Resolved] = {}
        self._mro: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._lin: dict[str, list[tuple[bool, str]]] = {}

    def body(self, qual: str) -> Body:
        """Return a function's calls/hazards/discarded/flask uses (decoded lazily)."""
        record = self._records.get(qual)
        if record is not None:
            return record
        func, path = self.funcs[qual]
        bodies = self._bodies.get(path)
        if bodies is None:
            bodies = decode_bodies(self._raw_bodies[path])
            self._bodies[path] = bodies
        record = body_record(bodies[func.slot])
        self._records[qual] = record
        return record

    def discarded(self, qual: str, last_names: set[str] | frozenset[str]) -> list[Site]:
        """Return the discarded calls of a function whose callee's last name is in ``last_names``.

        Reads the plain body without building the whole :class:`Body` record:
        the ``ASH402`` check looks at every function that may discard a coroutine.
        """
        func, path = self.funcs[qual]
        bodies = self._bodies.get(path)
        if bodies is None:
            bodies = decode_bodies(self._raw_bodies[path])
            self._bodies[path] = bodies
        return [
            Site._make(site)
            for site in bodies[func.slot][2]
            if site[0].rpartition(".")[2] in last_names
        ]

    @staticmethod
    def display(key: str) -> str:
        """Return the display name of a function key (drops a ``@path`` suffix)."""
        return key.split("@", 1)[0]

    # ------------------------------------------------------------ resolution
    def resolve(self, name: str, depth: int = 0) -> Resolved:
        """Resolve a dotted name to a project function/class or an external name."""
        hit = self._resolved.get(name)
        if hit is not None:
            return hit
        if depth > _MAX_DEPTH:
            return Resolved("none", name, (name,))
        result = self._resolve(name, depth)
        self._resolved[name] = result
        return result

    def _resolve(self, name: str, depth: int) -> Resolved:
        if name in self.funcs:
            return Resolved("func", name, (name,))
        if name in self.classes:
            return Resolved("class", name, (name,))
        owned = SUBCLASS_METHODS.get(name)
        if owned is not None:
            return Resolved("ext", owned, (name, owned))
        canonical = TYPE_ALIASES.get(name.rsplit(".", 1)[0])
        if canonical is not None:
            return self.resolve(f"{canonical}.{name.rsplit('.', 1)[1]}", depth + 1)
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            mod = ".".join(parts[:i])
            aliases = self.modules.get(mod)
            if aliases is None:
                continue
            head = parts[i]
            rest = parts[i + 1 :]
            alias = aliases.get(head)
            if alias is not None and alias != name:
                kind, key, seen = self.resolve(".".join([alias, *rest]), depth + 1)
                return Resolved(kind, key, (name, *seen))
            qual = f"{mod}.{head}"
            if rest and qual in self.classes:
                kind, key, seen = self.member(qual, rest, depth + 1)
                return Resolved(kind, key, (name, *seen))
            if rest and qual in self.funcs:
                return self._returned(qual, rest, depth)
            if mod in self.stars:  # ``head`` may be bound by ``from m import *``
                found = self._starred(mod, head, rest, depth)
                if found is not None:
                    return Resolved(found.kind, found.key, (name, *found.seen))
            return Resolved("none", name, (name,))
        if "." in name:
            # An external object reached through a project global of another
            # module (``from shop.extensions import db`` then ``db.session``):
            # type its attribute reads and method results as the walk does
            # within one module.
            prefix, last = name.rsplit(".", 1)
            typed = self._external_type(prefix, depth)
            if typed is not None:
                kind, key, seen = self.resolve(f"{typed}.{last}", depth + 1)
                return Resolved(kind, key, (name, *seen))
        return Resolved("ext", name, (name,))

    def _starred(self, mod: str, head: str, rest: list[str], depth: int) -> Resolved | None:
        """Resolve ``mod.head.rest`` through ``mod``'s ``from m import *`` statements.

        The last project module that binds ``head`` wins, as at run time. A
        name no project module binds is taken from an external module only
        when ``mod`` star-imports exactly one (``from time import *``): which
        of several binds it is not known here. Names with a leading underscore
        are never star-imported.
        """
        if head.startswith("_"):
            return None
        sources = self.stars[mod]
        external = [src for src in sources if src not in self.modules]
        for src in reversed(sources):
            if src in self.modules:
                found = self.resolve(".".join([src, head, *rest]), depth + 1)
                if found.kind != "none":
                    return found
        if len(external) == 1:
            return self.resolve(".".join([external[0], head, *rest]), depth + 1)
        return None

    def _external_type(self, prefix: str, depth: int) -> str | None:
        """Return the type of the external object ``prefix`` names, when the tables know it.

        ``prefix`` is resolved first (``shop.extensions.db.session`` is
        ``flask_sqlalchemy.SQLAlchemy.session``), then typed by
        :data:`PROPERTY_TYPES` (an attribute read) or :data:`RETURN_TYPES` (a
        call's result; the walk names a call's result by its callee).
        """
        resolved = self.resolve(prefix, depth + 1)
        base = resolved.key if resolved.kind == "ext" else prefix
        typed = PROPERTY_TYPES.get(base) or RETURN_TYPES.get(base)
        if typed is not None and typed != base and not typed.startswith(base + "."):
            return typed
        return base if base != prefix else None

    def _returned(self, func: str, rest: list[str], depth: int) -> Resolved:
        """Resolve ``f.rest`` as a member of what ``f``'s return annotation names."""
        returns = self.funcs[func][0].returns
        if not returns:
            return Resolved("none", f"{func}.{'.'.join(rest)}", (func,))
        return self.resolve(".".join([returns, *rest]), depth + 1)

    def mro(self, cls: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return ``(project classes in method resolution order from cls, external bases)``.

        The order is Python's C3 linearisation of the bases the project
        declares, an external base standing for itself alone: in a diamond
        (``class View(Mixin, AsyncBase)``, both deriving from ``Base``)
        ``AsyncBase`` comes before ``Base``, as at run time. Bases that allow
        no consistent order fall back to depth-first order.
        """
        hit = self._mro.get(cls)
        if hit is None:
            order = self._linearize(cls)
            hit = (
                tuple(name for is_project, name in order if is_project),
                tuple(name for is_project, name in order if not is_project),
            )
            self._mro[cls] = hit
        return hit

    def _linearize(self, cls: str) -> list[tuple[bool, str]]:
        """Return the C3 linearisation of ``cls`` as ``(is a project class, name)`` pairs."""
        hit = self._lin.get(cls)
        if hit is not None:
            return hit
        me = (True, cls)
        self._lin[cls] = [me]  # cycle guard
        heads: list[tuple[bool, str]] = []
        sequences: list[list[tuple[bool, str]]] = []
        info = self.classes.get(cls)
        for base in info[0].bases if info is not None else ():
            resolved = self.resolve(base)
            if resolved.kind == "class":
                node = (True, resolved.key)
                lin = self._linearize(resolved.key)
            elif resolved.kind == "ext":
                node = (False, resolved.key)
                lin = [node]
            else:
                continue
            if me not in lin and node not in heads:  # ``me in lin``: a cycle
                heads.append(node)
                sequences.append(lin)
        merged = _c3_merge([*sequences, heads])
        if merged is None:
            merged = []
            for lin in sequences:  # depth-first, the first occurrence kept
                merged.extend(node for node in lin if node not in merged)
        result = [me, *merged]
        self._lin[cls] = result
        return result

    def member(self, cls: str, rest: list[str], depth: int) -> Resolved:
        """Resolve ``cls.rest[0].rest[1]...`` through members and bases."""
        attr, tail = rest[0], rest[1:]
        project, external = self.mro(cls)
        if attr == "__super__":
            if not tail:
                return Resolved("none", cls, (cls,))
            project = project[1:]
            attr, tail = tail[0], tail[1:]
        for c in project:
            qual = f"{c}.{attr}"
            if qual in self.funcs:
                if not tail:
                    return Resolved("func", qual, (qual,))
                return self._returned(qual, tail, depth)
            if qual in self.classes:
                if tail:
                    return self.member(qual, tail, depth + 1)
                return Resolved("class", qual, (qual,))
            typ = self.members.get(c, {}).get(attr)
            if typ is not None:
                kind, key, seen = self.resolve(".".join([typ, *tail]), depth + 1)
                return Resolved(kind, key, (qual, *seen))
        if external:
            return self.resolve(".".join([external[0], attr, *tail]), depth + 1)
        return Resolved("none", f"{cls}.{attr}", (f"{cls}.{attr}",))


def _c3_merge(sequences: list[list[tuple[bool, str]]]) -> list[tuple[bool, str]] | None:
    """Merge linearisations the C3 way; ``None`` when no consistent order exists."""
    todo = [list(seq) for seq in sequences if seq]
    out: list[tuple[bool, str]] = []
    while todo:
        for seq in todo:
            head = seq[0]
            if not any(head in other[1:] for other in todo):
                break
        else:
            return None
        out.append(head)
        todo = [rest for rest in ([n for n in seq if n != head] for seq in todo) if rest]
    return out


__all__ = ["Resolved", "Symbols"]
