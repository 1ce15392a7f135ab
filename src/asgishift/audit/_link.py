"""Cross-file pass of the audit: resolve the call graph and report hazards.

Every ``async def`` of the project is an entry point. A breadth-first search
from all of them at once follows call edges into *sync* functions (an awaited
``async def`` is its own entry point, so it is not entered again), stopping at
boundaries that make blocking safe: functions decorated with a wrapper from
:data:`~asgishift.audit._summary.SAFE_WRAPPERS` or listed in
``config.extra_safe``, and calls to those (their function arguments are
references, never edges). Because the search starts from every entry point
together, the first time a function is reached is along a shortest chain.

**Deduplication:** one finding per hazard site ``(code, path, line, col)``,
carrying the shortest chain from any ``async def`` (ties broken by the order
in which entry points are sorted, i.e. by qualified name). Reporting the same
``requests.get`` once per view that reaches it would bury the user in copies
of one fix.

Name resolution follows module aliases and re-exports (``from .x import y``
in a package ``__init__``), module globals typed by the call that made them
(``LOCK = threading.Lock()``), class members (methods, ``self.x = X()``
attributes) and base classes depth-first; a name that leaves the project is
kept as the canonical dotted name (``"requests.Session.get"``) and matched
against the rule catalogue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from asgishift.audit._model import AuditConfig, Finding, Hop
from asgishift.audit._summary import (
    SAFE_WRAPPERS,
    Body,
    ClassSummary,
    FileIndex,
    FuncInfo,
    Hazard,
    Site,
    decode_bodies,
)
from asgishift.audit.rules import calls_index

_MAX_DEPTH = 12
_COPY_CONTEXT = frozenset(
    {"flask.copy_current_request_context", "flask.ctx.copy_current_request_context"}
)
_MIDDLEWARE_MARKERS = frozenset(
    {
        "sync_and_async_middleware",
        "async_only_middleware",
        "sync_only_middleware",
    }
)
_THREAD_LOCALS = frozenset({"threading.local", "_threading_local.local"})
_KNOWN_COROUTINES = frozenset(
    {
        "asyncio.sleep",
        "asyncio.wait_for",
        "asyncio.wait",
        "asyncio.open_connection",
        "asyncio.create_subprocess_exec",
        "asyncio.create_subprocess_shell",
    }
)
_ASYNC_TO_SYNC = frozenset({"asgiref.sync.async_to_sync", "asgiref.sync.AsyncToSync"})
_ORM_CODES = frozenset({"ASH201", "ASH202", "ASH203", "ASH204", "ASH205", "ASH206"})

# (kind, key, names seen while resolving)
_Resolved = tuple[str, str, tuple[str, ...]]
# (code or "", callee function qualname or "", matched name)
_Edge = tuple[str, str, str]
_Add = Callable[[Finding], None]


class _Graph:
    """The project's symbols, with memoised resolution."""

    def __init__(self, summaries: dict[str, tuple[FileIndex, bytes]], config: AuditConfig) -> None:
        self.modules: dict[str, dict[str, str]] = {}
        self.funcs: dict[str, tuple[FuncInfo, str]] = {}
        self.classes: dict[str, tuple[ClassSummary, str]] = {}
        self.members: dict[str, dict[str, str]] = {}
        self.summaries = summaries
        self._raw_bodies = {path: data for path, (_, data) in summaries.items()}
        self._bodies: dict[str, tuple[Body, ...]] = {}
        for path, (summary, _) in summaries.items():
            # Two files can map to one module name (scripts or test directories
            # without __init__.py); the first (by path) owns the name, the
            # others stay entry points under a path-qualified key.
            self.modules.setdefault(summary.module, dict(summary.aliases))
            for func in summary.functions:
                key = func.qualname
                if key in self.funcs:
                    key = f"{key}@{path}"
                self.funcs[key] = (func, path)
            for cls in summary.classes:
                if cls.qualname not in self.classes:
                    self.classes[cls.qualname] = (cls, path)
                    self.members[cls.qualname] = dict(cls.members)
        self.blocking = calls_index()
        for name in config.extra_blocking:
            self.blocking.setdefault(name, "ASH199")
        self.safe = frozenset(SAFE_WRAPPERS | set(config.extra_safe))
        self._resolved: dict[str, _Resolved] = {}
        self._mro: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._edges: dict[str, _Edge] = {}
        self._safe_func: dict[str, bool] = {}
        self.follow = config.follow_chains

    def body(self, qual: str) -> Body:
        """Return a function's calls/hazards/discarded/flask uses (decoded lazily)."""
        func, path = self.funcs[qual]
        bodies = self._bodies.get(path)
        if bodies is None:
            bodies = decode_bodies(self._raw_bodies[path])
            self._bodies[path] = bodies
        return bodies[func.slot]

    # ------------------------------------------------------------ resolution
    def resolve(self, name: str, depth: int = 0) -> _Resolved:
        """Resolve a dotted name to a project function/class or an external name."""
        hit = self._resolved.get(name)
        if hit is not None:
            return hit
        if depth > _MAX_DEPTH:
            return ("none", name, (name,))
        result = self._resolve(name, depth)
        self._resolved[name] = result
        return result

    def _resolve(self, name: str, depth: int) -> _Resolved:
        if name in self.funcs:
            return ("func", name, (name,))
        if name in self.classes:
            return ("class", name, (name,))
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
                target = ".".join([alias, *rest])
                kind, key, seen = self.resolve(target, depth + 1)
                return (kind, key, (name, *seen))
            cls = f"{mod}.{head}"
            if rest and cls in self.classes:
                kind, key, seen = self.member(cls, rest, depth + 1)
                return (kind, key, (name, *seen))
            return ("none", name, (name,))
        return ("ext", name, (name,))

    def mro(self, cls: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return ``(project classes depth-first from cls, external bases)``."""
        hit = self._mro.get(cls)
        if hit is not None:
            return hit
        self._mro[cls] = ((cls,), ())  # cycle guard
        project: list[str] = [cls]
        external: list[str] = []
        info = self.classes.get(cls)
        if info is not None:
            for base in info[0].bases:
                kind, key, _ = self.resolve(base)
                if kind == "class":
                    for c in self.mro(key)[0]:
                        if c not in project:
                            project.append(c)
                    for e in self.mro(key)[1]:
                        if e not in external:
                            external.append(e)
                elif kind == "ext" and key not in external:
                    external.append(key)
        result = (tuple(project), tuple(external))
        self._mro[cls] = result
        return result

    def member(self, cls: str, rest: list[str], depth: int) -> _Resolved:
        """Resolve ``cls.rest[0].rest[1]...`` through members and bases."""
        attr, tail = rest[0], rest[1:]
        project, external = self.mro(cls)
        if attr == "__super__":
            if not tail:
                return ("none", cls, (cls,))
            project = project[1:]
            attr, tail = tail[0], tail[1:]
        for c in project:
            qual = f"{c}.{attr}"
            if qual in self.funcs:
                return ("func", qual, (qual,)) if not tail else ("none", qual, (qual,))
            if qual in self.classes:
                return self.member(qual, tail, depth + 1) if tail else ("class", qual, (qual,))
            typ = self.members.get(c, {}).get(attr)
            if typ is not None:
                return self.resolve(".".join([typ, *tail]), depth + 1)
        if external:
            return self.resolve(".".join([external[0], attr, *tail]), depth + 1)
        return ("none", f"{cls}.{attr}", (f"{cls}.{attr}",))

    # ------------------------------------------------------------ edges
    def is_safe(self, qual: str) -> bool:
        """Return whether a function is a boundary (never descended into)."""
        hit = self._safe_func.get(qual)
        if hit is None:
            func = self.funcs[qual][0]
            hit = qual in self.safe or any(
                name in self.safe for dec in func.decorators for name in self.resolve(dec)[2]
            )
            self._safe_func[qual] = hit
        return hit

    def is_async_to_sync(self, qual: str) -> bool:
        """Return whether a function is decorated with ``async_to_sync``."""
        func = self.funcs[qual][0]
        return any(
            name in _ASYNC_TO_SYNC for dec in func.decorators for name in self.resolve(dec)[2]
        )

    def edge(self, target: str) -> _Edge:
        """Classify a call target: a hazard code, a sync callee, or nothing."""
        hit = self._edges.get(target)
        if hit is not None:
            return hit
        kind, key, seen = self.resolve(target)
        result: _Edge = ("", "", "")
        for name in seen:
            code = self.blocking.get(name)
            if code is not None:
                result = (code, "", name)
                break
        else:
            if not any(name in self.safe for name in seen):
                callee = ""
                if kind == "func":
                    callee = key
                elif kind == "class":
                    init = self.member(key, ["__init__"], 0)
                    if init[0] == "func":
                        callee = init[1]
                if callee and self.is_async_to_sync(callee):
                    result = ("ASH301", "", callee)
                elif callee and not self.funcs[callee][0].is_async and not self.is_safe(callee):
                    result = ("", callee, "")
        self._edges[target] = result
        return result

    def walk(
        self, starts: list[tuple[str, tuple[Hop, ...]]]
    ) -> Iterator[tuple[str, tuple[Hop, ...]]]:
        """Breadth-first over sync callees; yield ``(function, hops to reach it)``.

        With ``follow_chains`` off, yield only the starting functions.
        """
        seen = {qual for qual, _ in starts}
        queue = deque(starts)
        while queue:
            qual, hops = queue.popleft()
            yield qual, hops
            if not self.follow:
                continue
            path = self.funcs[qual][1]
            for site in self.body(qual)[0]:
                callee = self.edge(site[0])[1]
                if callee and callee not in seen:
                    seen.add(callee)
                    hop = Hop(path, site[1], site[2], _name(qual), site[0])
                    queue.append((callee, (*hops, hop)))

    # ------------------------------------------------------------ conditions
    def fk_holds(self, model: str, attr: str) -> bool:
        """Return whether ``attr`` is a ForeignKey of project model ``model``."""
        kind, key, _ = self.resolve(model)
        if kind != "class":
            return False
        return any(attr in self.classes[cls][0].fk_fields for cls in self.mro(key)[0])

    def is_thread_local(self, target: str) -> bool:
        """Return whether ``target`` names a ``threading.local`` instance."""
        kind, key, seen = self.resolve(target)
        if any(name in _THREAD_LOCALS for name in seen):
            return True
        if kind == "class":
            return any(e in _THREAD_LOCALS for e in self.mro(key)[1])
        return False

    def condition(self, hazard: Hazard) -> bool:
        """Evaluate a hazard's link-time condition."""
        cond = hazard[7]
        if not cond:
            return True
        if cond.startswith("fk:"):
            model, _, attr = cond[3:].rpartition(":")
            return self.fk_holds(model, attr)
        if cond.startswith("tlocal:"):
            return self.is_thread_local(cond[7:])
        return False


def _name(key: str) -> str:
    """Return the display name of a function key (drops a ``@path`` suffix)."""
    return key.split("@", 1)[0]


def _finding(
    code: str,
    path: str,
    where: Site | Hazard,
    args: dict[str, str],
    chain: tuple[Hop, ...],
) -> Finding:
    """Build a :class:`Finding` (snippet is attached later by the engine)."""
    return Finding(
        code=code,
        path=path,
        line=where[1],
        col=where[2],
        end_line=where[3],
        end_col=where[4],
        args=args,
        chain=chain,
    )


def _call_args(name: str, function: str) -> dict[str, str]:
    """Return the message arguments of a hazard matched by callable name.

    Besides ``call`` and ``function``, fills the keys some templates use
    (``method``, ``async_call``, ``field``) from the callable's last name, so
    any rule's message formats whichever way its finding was made.
    """
    last = name.rsplit(".", 1)[-1]
    return {
        "call": name,
        "function": function,
        "method": last,
        "async_call": "a" + last,
        "field": last,
    }


def _hazard_args(hazard: Hazard, function: str) -> dict[str, str]:
    """Return the message arguments of a syntax hazard."""
    args = {"call": hazard[5], "function": function}
    args.update(hazard[6])
    return args


def link(summaries: dict[str, tuple[FileIndex, bytes]], config: AuditConfig) -> list[Finding]:
    """Resolve the project's call graph and return every raw finding.

    :param summaries: file path (relative, POSIX) to its index and marshalled
        bodies (:func:`~asgishift.audit._summary.from_plain`).
    :param config: the run's configuration (``extra_blocking``, ``extra_safe``,
        ``follow_chains``).
    :return: findings before ``noqa``/select filtering, one per hazard site.
    """
    graph = _Graph(summaries, config)
    found: dict[tuple[str, str, int, int], Finding] = {}

    def add(finding: Finding) -> None:
        key = (finding.code, finding.path, finding.line, finding.col)
        if key not in found:
            found[key] = finding

    entries = sorted(q for q, (f, _) in graph.funcs.items() if f.is_async)
    starts: list[tuple[str, tuple[Hop, ...]]] = [(q, ()) for q in entries]
    for qual, hops in graph.walk(starts):
        path = graph.funcs[qual][1]
        calls, hazards, _, _ = graph.body(qual)
        for site in calls:
            code, _, name = graph.edge(site[0])
            if code:
                chain = (*hops, Hop(path, site[1], site[2], _name(qual), name)) if hops else ()
                add(_finding(code, path, site, _call_args(name, _name(qual)), chain))
        for hazard in hazards:
            if graph.condition(hazard):
                chain = (
                    (*hops, Hop(path, hazard[1], hazard[2], _name(qual), hazard[5])) if hops else ()
                )
                add(_finding(hazard[0], path, hazard, _hazard_args(hazard, qual), chain))

    async_names = {q.rsplit(".", 1)[-1] for q in entries}
    async_names.update(name.rsplit(".", 1)[-1] for name in _KNOWN_COROUTINES)
    for summary_path, (summary, _) in summaries.items():
        may_discard = not async_names.isdisjoint(summary.discard_names)
        for func in summary.functions:
            key = func.qualname
            if graph.funcs[key][1] != summary_path:
                key = f"{key}@{summary_path}"
            _thread_rules(graph, key, func, summary_path, add, may_discard)
        _middleware_rule(graph, summary, summary_path, add)
    return list(found.values())


def _thread_rules(
    graph: _Graph, own: str, func: FuncInfo, path: str, add: _Add, may_discard: bool
) -> None:
    """ASH304 (request globals in threads), ASH401 (insensitive ORM), ASH402.

    :param own: the function's key in the graph (its qualname, or
        ``qualname@path`` when another file owns that name).
    """
    for site in graph.body(own)[2] if may_discard else ():
        kind, key, seen = graph.resolve(site[0])
        is_coroutine = kind == "func" and graph.funcs[key][0].is_async
        is_coroutine = (
            is_coroutine
            and not graph.funcs[key][0].is_generator
            and not graph.is_async_to_sync(key)
        )
        if is_coroutine or any(name in _KNOWN_COROUTINES for name in seen):
            name = key if kind == "func" else seen[-1]
            add(_finding("ASH402", path, site, {"call": name, "function": func.qualname}, ()))
    for site in func.thread_targets:
        kind, key, _ = graph.resolve(site[0])
        if kind != "func" or graph.funcs[key][0].is_async:
            continue
        target = graph.funcs[key][0]
        if any(n in _COPY_CONTEXT for dec in target.decorators for n in graph.resolve(dec)[2]):
            continue
        start = Hop(path, site[1], site[2], func.qualname, key)
        for qual, hops in graph.walk([(key, (start,))]):
            inner_path = graph.funcs[qual][1]
            for use in graph.body(qual)[3]:
                chain = (*hops, Hop(inner_path, use[1], use[2], _name(qual), use[5]))
                add(
                    _finding(
                        "ASH304", inner_path, use, {"call": use[5], "function": _name(qual)}, chain
                    )
                )
    for site in func.insensitive:
        kind, key, _ = graph.resolve(site[0])
        if kind != "func":
            continue
        hit = _first_orm(graph, key, Hop(path, site[1], site[2], func.qualname, key))
        if hit is not None:
            call = f"sync_to_async({key.rsplit('.', 1)[-1]}, thread_sensitive=False)"
            add(_finding("ASH401", path, site, {"call": call, "function": func.qualname}, hit))


def _first_orm(graph: _Graph, start: str, first: Hop) -> tuple[Hop, ...] | None:
    """Return the chain to the first ORM hazard reachable from ``start``."""
    for qual, hops in graph.walk([(start, (first,))]):
        path = graph.funcs[qual][1]
        calls, hazards, _, _ = graph.body(qual)
        for hazard in hazards:
            if hazard[0] in _ORM_CODES and graph.condition(hazard):
                return (*hops, Hop(path, hazard[1], hazard[2], _name(qual), hazard[5]))
        for site in calls:
            code, _, name = graph.edge(site[0])
            if code in _ORM_CODES:
                return (*hops, Hop(path, site[1], site[2], _name(qual), name))
    return None


def _middleware_rule(graph: _Graph, summary: FileIndex, path: str, add: _Add) -> None:
    """ASH305: project middleware (by shape or listed in MIDDLEWARE) without markers."""
    listed: set[str] = set()
    for site in summary.middleware_refs:
        kind, key, _ = graph.resolve(site[0])
        if kind in ("class", "func"):
            listed.add(key)
    candidates: list[tuple[str, Site]] = []
    for cls in summary.classes:
        if cls.is_middleware or cls.qualname in listed:
            if _class_marked(graph, cls.qualname):
                continue
            where = (cls.qualname, cls.line, cls.col, cls.line, cls.col)
            candidates.append((cls.qualname, where))
    marked = set(summary.marked)
    for func in summary.functions:
        if not (func.is_middleware or func.qualname in listed):
            continue
        short = func.qualname.rsplit(".", 1)[-1]
        if short in marked or func.is_async:
            continue
        if any(dec.rsplit(".", 1)[-1] in _MIDDLEWARE_MARKERS for dec in func.decorators):
            continue
        where = (func.qualname, func.line, func.col, func.line, func.col)
        candidates.append((func.qualname, where))
    for name, where in candidates:
        add(_finding("ASH305", path, where, {"call": name, "function": name}, ()))
    # MIDDLEWARE entries defined elsewhere in the project are reported at their definition.
    for key in listed:
        if key in graph.classes:
            cls, cls_path = graph.classes[key]
            if cls_path != path and not _class_marked(graph, key):
                where = (key, cls.line, cls.col, cls.line, cls.col)
                add(_finding("ASH305", cls_path, where, {"call": key, "function": key}, ()))


def _class_marked(graph: _Graph, qual: str) -> bool:
    """Return whether a class (or a base) declares async/sync capability."""
    project, external = graph.mro(qual)
    if any(graph.classes[c][0].has_markers for c in project):
        return True
    return any(e.rsplit(".", 1)[-1] == "MiddlewareMixin" for e in external)


__all__ = ["link"]
