"""Cross-file pass of the audit: resolve the call graph and report hazards.

Every ``async def`` of the project is an entry point. From each call site in
an ``async def`` that calls a *sync* project function, a breadth-first search
follows call edges into sync functions (an awaited ``async def`` is its own
entry point, so it is not entered again), stopping at boundaries that make
blocking safe: functions decorated with a wrapper from
:data:`~asgishift.audit._tables.SAFE_WRAPPERS` or listed in
``config.extra_safe``, and calls to those (their function arguments are
references, never edges). The search from one callee is done once and shared
by every call site that reaches it.

**One finding per call site:** a hazard reached from eight call sites in async
code is eight findings, each with the shortest chain from its call site (the
text report groups them under the hazard). A hazard written directly in an
``async def`` has an empty chain.

Names are resolved by :class:`~asgishift.audit._symbols.Symbols` (aliases,
re-exports, typed globals, class members, return annotations, base classes);
a name that leaves the project is matched against the rule catalogue by its
canonical dotted name (``"requests.Session.get"``).

Rule families plug in through :func:`link`'s arguments: link-time hazard
conditions (``"fk"``, ``"tlocal"``) and whole-project checks (``ASH304``,
``ASH305``, ``ASH401``, ``ASH402``), see :mod:`asgishift.audit.rules`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from asgishift.audit._guards import COMPLEX, pruned, unsatisfied
from asgishift.audit._model import AuditConfig, Finding, Hop
from asgishift.audit._records import FileIndex, Hazard, Site
from asgishift.audit._symbols import Resolved, Symbols
from asgishift.audit._tables import (
    ASYNC_TO_SYNC,
    PROPERTY_DECORATORS,
    PROPERTY_READ,
    SAFE_WRAPPERS,
)

_ASH301 = "ASH301"
_NONE: frozenset[str] = frozenset()
_NO_INDICES: tuple[frozenset[int], frozenset[int]] = (frozenset(), frozenset())
#: Prefix of a method name replaced on the receiver in the left-out set
#: (parameter names never hold a dot).
_REPLACED = "self."

Add = Callable[[Finding], None]


class Edge(NamedTuple):
    """What calling a target means.

    :param code: the rule code of a hazard (``""`` if none).
    :param callee: the sync project function entered (``""`` if none).
    :param name: the matched callable name, for the message.
    :param why: for ``ASH301``, the assignment or decorator that made the
        callee an ``async_to_sync`` wrapper (``""`` when the call says it).
    """

    code: str
    callee: str
    name: str
    why: str


_NO_EDGE = Edge("", "", "", "")


class Graph(Symbols):
    """The project's call graph: the symbols (:class:`Symbols`) and what each call does.

    :param summaries: file path to its index and marshalled bodies.
    :param config: the run's configuration.
    :param blocking: canonical callable name to rule code (the catalogue's
        :func:`~asgishift.audit.rules.calls_index`).
    :param conditions: link-time hazard conditions by kind.
    :param other_names: file path to the other dotted names its module is
        importable by (:attr:`~asgishift.audit._discover.SourceFile.names`).
    """

    def __init__(
        self,
        summaries: dict[str, tuple[FileIndex, bytes]],
        config: AuditConfig,
        blocking: dict[str, str],
        conditions: Mapping[str, Callable[[Graph, str], bool]],
        other_names: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(summaries, other_names)
        self.blocking = dict(blocking)
        for name in config.extra_blocking:
            self.blocking.setdefault(name, "ASH199")
        self.safe = frozenset(SAFE_WRAPPERS | set(config.extra_safe))
        self.conditions = conditions
        self._edges: dict[str, Edge] = {}
        self._safe_func: dict[str, bool] = {}
        self.follow = config.follow_chains

    @staticmethod
    def finding(
        code: str, path: str, where: Site | Hazard, args: dict[str, str], chain: tuple[Hop, ...]
    ) -> Finding:
        """Build a :class:`Finding` at ``where`` (the engine attaches the snippet)."""
        return Finding(
            code=code,
            path=path,
            line=where.line,
            col=where.col,
            end_line=where.end_line,
            end_col=where.end_col,
            args=args,
            chain=chain,
        )

    # ------------------------------------------------------------ edges
    def is_safe(self, qual: str) -> bool:
        """Return whether a function is a boundary (never descended into)."""
        hit = self._safe_func.get(qual)
        if hit is None:
            func = self.funcs[qual][0]
            hit = qual in self.safe or any(
                name in self.safe for dec in func.decorators for name in self.resolve(dec).seen
            )
            self._safe_func[qual] = hit
        return hit

    def is_async_to_sync(self, qual: str) -> bool:
        """Return whether a function is decorated with ``async_to_sync``."""
        func = self.funcs[qual][0]
        return any(
            name in ASYNC_TO_SYNC for dec in func.decorators for name in self.resolve(dec).seen
        )

    def edge(self, target: str) -> Edge:
        """Classify a call target: a hazard code, a sync callee, or nothing."""
        hit = self._edges.get(target)
        if hit is not None:
            return hit
        if target.endswith(PROPERTY_READ):
            result = self._property_edge(target[: -len(PROPERTY_READ)])
            self._edges[target] = result
            return result
        kind, key, seen = self.resolve(target)
        result = _NO_EDGE
        for name in seen:
            code = self.blocking.get(name)
            if code is not None:
                why = self._wrapper_evidence(seen) if code == _ASH301 else ""
                result = Edge(code, "", name, why)
                break
        else:
            if not any(name in self.safe for name in seen):
                callee = ""
                if kind == "func":
                    callee = key
                elif kind == "class":
                    init = self.member(key, ["__init__"], 0)
                    if init.kind == "func":
                        callee = init.key
                if callee and self.is_async_to_sync(callee):
                    func, path = self.funcs[callee]
                    shown = self.display(callee)
                    why = f"{shown} is decorated with @async_to_sync at {path}:{func.line}"
                    result = Edge(_ASH301, "", callee, why)
                elif callee and not self.funcs[callee][0].is_async and not self.is_safe(callee):
                    result = Edge("", callee, "", "")
        self._edges[target] = result
        return result

    def _property_edge(self, attribute: str) -> Edge:
        """Classify the read of ``attribute`` (``"shop.Store.size"``) on an instance.

        It enters the getter when the name resolves to a sync project function
        decorated with one of :data:`~asgishift.audit._tables.PROPERTY_DECORATORS`
        (``@property``, ``@cached_property``, ``@reify``), or when the class
        body made the attribute one by calling it (``size = property(get_size)``,
        :attr:`~asgishift.audit._records.ClassSummary.properties`) with a sync
        project function; any other attribute (a field, a method not called
        here, an external type's) is no edge.
        """
        kind, key, _ = self.resolve(attribute)
        if kind == "func":
            if self._hidden(attribute, key):
                return _NO_EDGE
            decorators = (
                name for dec in self.funcs[key][0].decorators for name in self.resolve(dec).seen
            )
            if not any(name in PROPERTY_DECORATORS for name in decorators):
                return _NO_EDGE
            getter = key
        else:
            found = self._assigned_property(attribute)
            if found is None:
                return _NO_EDGE
            getter = found
        if self.funcs[getter][0].is_async or self.is_safe(getter):
            return _NO_EDGE
        return Edge("", getter, "", "")

    def _assigned_property(self, attribute: str) -> str | None:
        """Return the getter of ``size = property(get_size)`` that ``attribute`` reads.

        The first project class in the MRO that binds the attribute decides:
        a ``property(...)`` call there gives its getter when it resolves to a
        project function; a method, a plain or typed class attribute gives
        ``None``, as does an owner that is not a project class.
        """
        owner, _, attr = attribute.rpartition(".")
        resolved = self.resolve(owner)
        if resolved.kind != "class":
            return None
        for cls in self.mro(resolved.key)[0]:
            info = self.classes[cls][0]
            getter = dict(info.properties).get(attr)
            if getter is not None:
                kind, key, _ = self.resolve(getter)
                return key if kind == "func" else None
            if f"{cls}.{attr}" in self.funcs or attr in info.plain:
                return None
            if attr in self.members.get(cls, ()):
                return None
        return None

    def _hidden(self, attribute: str, getter: str) -> bool:
        """Return whether a class before ``getter``'s in the MRO assigns the attribute.

        ``class Fixed(Store): size = 0`` hides ``Store.size``: reading
        ``fixed.size`` runs no getter, though :meth:`member` (which knows only
        methods and typed attributes) resolves it to ``Store.size``.
        """
        owner, _, attr = attribute.rpartition(".")
        resolved = self.resolve(owner)
        if resolved.kind != "class":
            return False
        for cls in self.mro(resolved.key)[0]:
            if f"{cls}.{attr}" == getter:
                return False
            if attr in self.classes[cls][0].plain or attr in self.members.get(cls, ()):
                return True
        return False

    def _wrapper_evidence(self, seen: tuple[str, ...]) -> str:
        """Return where an attribute on the resolution path was made an async_to_sync wrapper."""
        for name in seen:
            cls, _, attr = name.rpartition(".")
            info = self.classes.get(cls)
            if info is None:
                continue
            for wrapped, line in info[0].wrappers:
                if wrapped == attr:
                    return f"self.{attr} = async_to_sync(...) at {info[1]}:{line}"
        return ""

    def entering(self, caller: str, index: int, callee: str) -> frozenset[str]:
        """Return the guarded parameters of ``callee`` that call site ``index`` leaves out.

        :param caller: the function holding the call site; :param index: the
            site's position in its calls (see :mod:`asgishift.audit._guards`).
        """
        params = self.funcs[callee][0].params
        left = _NONE
        body = self.body(caller)
        if params:
            count = body.arity[index]
            if count == COMPLEX:
                found = next(args for args in body.call_args if args[0] == index)
                left = unsatisfied(params, found)
            else:
                left = unsatisfied(params, count)
        if body.call_replaced:
            for at, names in body.call_replaced:
                if at == index:
                    left = left | {_REPLACED + name for name in names}
        return left

    def runs(self, caller: str, index: int, callee: str) -> bool:
        """Return whether call site ``index`` of ``caller`` runs ``callee``'s body: a
        generator function made a generator at a call in ``FuncSummary.created`` runs none."""
        created = self.body(caller).created
        return not (created and index in created and self.funcs[callee][0].is_generator)

    def kept(self, qual: str, unsat: frozenset[str]) -> tuple[frozenset[int], frozenset[int]]:
        """Return the indices of the calls and hazards of ``qual`` that ``unsat`` prunes.

        Besides guarded ones (:func:`~asgishift.audit._guards.pruned`), a call
        ``self.m()`` of a method the caller replaced on the receiver is pruned.
        """
        if not unsat:
            return _NO_INDICES
        body = self.body(qual)
        calls = {i for i, clauses in body.call_guards if pruned(clauses, unsat)}
        replaced = [name for name in unsat if name.startswith(_REPLACED)]
        if replaced:
            owner = self.display(qual).rpartition(".")[0]
            gone = {f"{owner}.{name[len(_REPLACED) :]}" for name in replaced}
            calls.update(i for i, site in enumerate(body.calls) if site.target in gone)
        return (
            frozenset(calls),
            frozenset(i for i, clauses in body.hazard_guards if pruned(clauses, unsat)),
        )

    def walk(
        self, starts: list[tuple[str, tuple[Hop, ...], frozenset[str]]]
    ) -> Iterator[tuple[str, tuple[Hop, ...], frozenset[str]]]:
        """Breadth-first over sync callees; yield ``(function, hops, left-out parameters)``.

        A function is entered once per set of guarded parameters its call site
        leaves out (almost always the empty set); call sites that set prunes
        are not followed. With ``follow_chains`` off, yield only the starts.
        """
        seen = {(qual, unsat) for qual, _, unsat in starts}
        queue = deque(starts)
        while queue:
            qual, hops, unsat = queue.popleft()
            yield qual, hops, unsat
            if not self.follow:
                continue
            path = self.funcs[qual][1]
            skip = self.kept(qual, unsat)[0]
            for index, site in enumerate(self.body(qual).calls):
                callee = self.edge(site.target).callee
                if not callee or index in skip or not self.runs(qual, index, callee):
                    continue
                left = self.entering(qual, index, callee)
                if (callee, left) not in seen:
                    seen.add((callee, left))
                    hop = Hop(path, site.line, site.col, self.display(qual), site.target)
                    queue.append((callee, (*hops, hop), left))

    # ------------------------------------------------------------ conditions
    def has_fk(self, model: str, attr: str, nullable: bool = False) -> bool:
        """Return whether ``attr`` is a ForeignKey/OneToOneField of project model ``model``.

        :param nullable: only one declared with ``null=True`` counts.
        """
        resolved = self.resolve(model)
        if resolved.kind != "class":
            return False
        for cls in self.mro(resolved.key)[0]:
            summary = self.classes[cls][0]
            if attr in summary.fk_fields:  # the nearest declaration decides
                return not nullable or attr in summary.nullable_fks
        return False

    def condition(self, hazard: Hazard) -> bool:
        """Evaluate a hazard's link-time condition (see :class:`~._records.Hazard`)."""
        if not hazard.cond:
            return True
        kind, _, argument = hazard.cond.partition(":")
        check = self.conditions.get(kind)
        return check is not None and check(self, argument)


def _call_args(edge: Edge, function: str) -> dict[str, str]:
    """Return the message arguments of a hazard matched by callable name.

    Besides ``call`` and ``function``, fills the keys some templates use
    (``method``, ``async_call``, ``field``, ``why``) from the callable's last
    name, so any rule's message formats whichever way its finding was made.
    """
    last = edge.name.rsplit(".", 1)[-1]
    return {
        "call": edge.name,
        "function": function,
        "method": last,
        "async_call": "a" + last,
        "field": last,
        "why": f" ({edge.why})" if edge.why else "",
    }


def _hazard_args(hazard: Hazard, function: str) -> dict[str, str]:
    """Return the message arguments of a syntax hazard."""
    args = {"call": hazard.call, "function": function, "why": ""}
    args.update(hazard.extra)
    return args


#: One hazard reachable from a sync function: ``(code, path, where, args, hops)``.
_Reached = tuple[str, str, Site | Hazard, dict[str, str], tuple[Hop, ...]]


class _Reach:
    """Hazards reachable from each sync function, computed once per function."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.memo: dict[tuple[str, frozenset[str]], list[_Reached]] = {}

    def hazards_in(
        self, qual: str, hops: tuple[Hop, ...], unsat: frozenset[str] = _NONE
    ) -> Iterator[_Reached]:
        """Yield the hazards written in ``qual``, each with ``hops`` plus its own hop.

        :param unsat: guarded parameters the entering call site leaves out: the
            hazards they guard are not reached.
        """
        graph = self.graph
        path = graph.funcs[qual][1]
        name = graph.display(qual)
        body = graph.body(qual)
        skip_calls, skip_hazards = graph.kept(qual, unsat)
        for index, site in enumerate(body.calls):
            edge = graph.edge(site.target)
            if (
                edge.code
                and not (edge.code == _ASH301 and site.awaited)
                and index not in skip_calls
            ):
                hop = Hop(path, site.line, site.col, name, edge.name)
                yield edge.code, path, site, _call_args(edge, name), (*hops, hop)
        for index, hazard in enumerate(body.hazards):
            if index not in skip_hazards and graph.condition(hazard):
                hop = Hop(path, hazard.line, hazard.col, name, hazard.call)
                yield hazard.code, path, hazard, _hazard_args(hazard, qual), (*hops, hop)

    def from_callee(self, callee: str, unsat: frozenset[str] = _NONE) -> list[_Reached]:
        """Return every hazard reachable from sync function ``callee``, shortest chain each.

        :param unsat: guarded parameters of ``callee`` its call site leaves out.
        """
        hit = self.memo.get((callee, unsat))
        if hit is not None:
            return hit
        found: dict[tuple[str, str, int, int], _Reached] = {}
        for qual, hops, left in self.graph.walk([(callee, (), unsat)]):
            for reached in self.hazards_in(qual, hops, left):
                key = (reached[0], reached[1], reached[2].line, reached[2].col)
                found.setdefault(key, reached)
        result = list(found.values())
        self.memo[(callee, unsat)] = result
        return result


def link(
    summaries: dict[str, tuple[FileIndex, bytes]],
    config: AuditConfig,
    blocking: dict[str, str],
    conditions: Mapping[str, Callable[[Graph, str], bool]],
    checks: tuple[Callable[[Graph, Add], None], ...],
    other_names: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Finding]:
    """Resolve the project's call graph and return every raw finding.

    :param summaries: file path (relative, POSIX) to its index and marshalled
        bodies (:func:`~asgishift.audit._records.from_plain`).
    :param config: the run's configuration (``extra_blocking``, ``extra_safe``,
        ``follow_chains``).
    :param blocking: canonical callable name to rule code.
    :param conditions: link-time hazard conditions by kind.
    :param checks: whole-project checks of the rule families.
    :param other_names: file path to the other dotted names of its module.
    :return: findings before ``noqa``/select filtering: one per hazard and
        call site in async code.
    """
    graph = Graph(summaries, config, blocking, conditions, other_names)
    found: dict[tuple[object, ...], Finding] = {}

    def add(finding: Finding) -> None:
        first = finding.chain[0] if finding.chain else None
        where = (first.path, first.line, first.col) if first is not None else ()
        key = (finding.code, finding.path, finding.line, finding.col, *where)
        if key not in found:
            found[key] = finding

    reach = _Reach(graph)
    for qual in sorted(q for q, (f, _) in graph.funcs.items() if f.is_async):
        path = graph.funcs[qual][1]
        name = graph.display(qual)
        for code, where_path, where, args, _ in reach.hazards_in(qual, ()):
            add(graph.finding(code, where_path, where, args, ()))
        if not graph.follow:
            continue
        for index, site in enumerate(graph.body(qual).calls):
            callee = graph.edge(site.target).callee
            if not callee or not graph.runs(qual, index, callee):
                continue
            first = Hop(path, site.line, site.col, name, site.target)
            left = graph.entering(qual, index, callee)
            for code, where_path, where, args, hops in reach.from_callee(callee, left):
                add(graph.finding(code, where_path, where, args, (first, *hops)))
    for check in checks:
        check(graph, add)
    return list(found.values())


__all__ = ["Add", "Edge", "Graph", "Resolved", "link"]
