"""The summary data model: what the per-file pass hands to the cross-file pass.

A :class:`FileSummary` holds what the linker (:mod:`asgishift.audit._link`)
needs from one module and nothing else: its import and alias table, every
function with its call sites (targets already rewritten to canonical dotted
names through the import table), the hazards decided by syntax alone, and the
few facts the ``ASH3xx``/``ASH4xx`` rules need.

Summaries travel as plain tuples (:func:`to_plain`): they pickle into the
per-file cache and across worker processes through :mod:`marshal`, which
cannot write named tuples. The linker reads them back as the named records
of this module (:func:`from_plain`, :func:`decode_bodies`); no code reads a
record by index.
"""

from __future__ import annotations

import marshal
from typing import Any, NamedTuple

from asgishift.audit._guards import CallArgs, Indexed, Params


class Site(NamedTuple):
    """A call (or a function reference) in a function body.

    :param target: the dotted name as far as the file alone can resolve it
        (``"requests.get"``, ``"shop.helpers.load"``, ``"shop.C.__super__.save"``).
    :param line: 1-based line; :param col: 1-based column.
    :param end_line: last line; :param end_col: 1-based column just past the end.
    :param awaited: the call's result is awaited (``await f(...)``), so the
        code expects ``f`` to be a coroutine function there.
    """

    target: str
    line: int
    col: int
    end_line: int
    end_col: int
    awaited: bool


class Hazard(NamedTuple):
    """A hazard found by syntax in one function.

    :param code: the rule code (``"ASH201"``).
    :param call: the ``call`` message argument.
    :param extra: the other message arguments as ``(key, value)`` pairs.
    :param cond: ``""`` (unconditional) or ``"<kind>:<argument>"``, a
        condition the linker decides with the whole project in view (see
        :data:`asgishift.audit.rules.CONDITIONS`): ``"fk:<model>:<attr>"``
        holds when ``<attr>`` is a ForeignKey of project model ``<model>``,
        ``"fknull:<model>:<attr>"`` when it is one declared with ``null=True``.
    """

    code: str
    line: int
    col: int
    end_line: int
    end_col: int
    call: str
    extra: tuple[tuple[str, str], ...]
    cond: str


class FuncSummary(NamedTuple):
    """One function or method, as the walker builds it.

    :param qualname: module-qualified name (``"shop.views.Checkout.post"``).
    :param decorators: canonical targets of its decorators.
    :param calls: call sites in its body (nested defs and lambdas excluded).
    :param hazards: syntax hazards in its body.
    :param discarded: calls whose result is thrown away (``ASH402``).
    :param thread_targets: function references handed to another thread.
    :param insensitive: references wrapped by ``sync_to_async(...,
        thread_sensitive=False)``.
    :param flask_uses: uses of Flask request globals (``ASH304`` candidates).
    :param is_middleware: a ``def mw(get_response)`` middleware factory.
    :param returns: canonical target of the return annotation, or ``""``.
    :param params: the optional parameters its guards name
        (:data:`~asgishift.audit._guards.Params`, :mod:`asgishift.audit._guards`).
    :param arity: one byte per call site: its positional argument count, or
        :data:`~asgishift.audit._guards.COMPLEX` (see ``call_args``).
    :param call_args: the arguments of its complex call sites.
    :param call_guards: ``(index in calls, clauses)`` of guarded call sites.
    :param hazard_guards: ``(index in hazards, clauses)`` of guarded hazards.
    :param call_replaced: ``(index in calls, method names)`` of calls
        ``obj.m()`` on a variable whose methods were replaced first
        (``obj.create = lambda: None``).
    :param created: indices in calls of the calls whose result the function
        only keeps (``gen = numbers()``, the variable never read again) or,
        in an ``async def``, returns: calling a generator function there runs
        none of its body.
    """

    qualname: str
    line: int
    col: int
    is_async: bool
    is_generator: bool
    decorators: tuple[str, ...]
    calls: tuple[Site, ...]
    hazards: tuple[Hazard, ...]
    discarded: tuple[Site, ...]
    thread_targets: tuple[Site, ...]
    insensitive: tuple[Site, ...]
    flask_uses: tuple[Hazard, ...]
    is_middleware: bool
    returns: str
    params: Params = ()
    arity: bytes = b""
    call_args: tuple[CallArgs, ...] = ()
    call_guards: Indexed = ()
    hazard_guards: Indexed = ()
    call_replaced: tuple[tuple[int, tuple[str, ...]], ...] = ()
    created: tuple[int, ...] = ()


class ClassSummary(NamedTuple):
    """One class.

    :param bases: canonical targets of the bases.
    :param members: ``(attribute, type target)`` for attributes assigned from
        calls in the class body, as ``self.x = X()`` in a method, or from an
        annotated ``__init__`` parameter.
    :param fk_fields: names of ForeignKey/OneToOneField class attributes.
    :param nullable_fks: those of them declared with ``null=True`` (a bare
        ``select_related()`` does not follow them).
    :param plain: names assigned in the class body with no known type
        (``template_name = "x.html"``): one hides a base class's property.
    :param has_markers: the body sets ``async_capable`` or ``sync_capable``.
    :param is_middleware: ``__init__`` takes ``get_response``.
    :param wrappers: ``(attribute, line)`` of ``self.x = async_to_sync(...)``
        assignments in its methods (the ``ASH301`` evidence).
    :param properties: ``(attribute, getter target)`` of the class body's
        ``size = property(get_size)`` (any of
        :data:`~asgishift.audit._tables.PROPERTY_DECORATORS` called with a
        function): reading the attribute on an instance runs the getter.
    :param wrapped: ``(method, decorator target)`` for each decorator a class
        decorator ``@method_decorator(dec, name="dispatch")`` applies to a
        method (inherited or not) of the class.
    :param http_method_names: the lower-cased strings of a class-body
        ``http_method_names = [...]`` (or tuple) of string literals; ``None``
        when the body assigns none or assigns something else (a Django view's
        ``view_is_async`` checks only the handlers this names).
    """

    qualname: str
    line: int
    col: int
    bases: tuple[str, ...]
    members: tuple[tuple[str, str], ...]
    fk_fields: tuple[str, ...]
    nullable_fks: tuple[str, ...]
    plain: tuple[str, ...]
    has_markers: bool
    is_middleware: bool
    wrappers: tuple[tuple[str, int], ...]
    properties: tuple[tuple[str, str], ...] = ()
    wrapped: tuple[tuple[str, str], ...] = ()
    http_method_names: tuple[str, ...] | None = None


class FileSummary(NamedTuple):
    """Everything the cross-file pass needs from one module.

    :param module: dotted module name.
    :param aliases: module-level ``name -> target``: imports, and globals
        assigned from calls (typed by the callee).
    :param functions: every function and method of the module.
    :param classes: every class of the module.
    :param middleware_refs: string entries of a module-level ``MIDDLEWARE`` list.
    :param routed: targets of the file's ``X.as_view()`` calls (a URLconf's views,
        or a ``get_urls()`` method's), as written: the linker resolves them.
    :param marked: module-level names given ``.async_capable``/``.sync_capable``.
    :param imported: every dotted name an import statement of the file names.
    :param stars: the modules of its ``from m import *`` statements, in order.
    """

    module: str
    aliases: tuple[tuple[str, str], ...]
    functions: tuple[FuncSummary, ...]
    classes: tuple[ClassSummary, ...]
    middleware_refs: tuple[Site, ...]
    routed: tuple[str, ...]
    marked: tuple[str, ...]
    imported: tuple[str, ...]
    stars: tuple[str, ...] = ()


class FuncInfo(NamedTuple):
    """The always-loaded part of a :class:`FuncSummary` (see :class:`FileIndex`).

    :param slot: position of the function's body in the file's body tuple.
    :param params: see :class:`FuncSummary` (``()`` for most functions).
    """

    qualname: str
    line: int
    col: int
    is_async: bool
    is_generator: bool
    decorators: tuple[str, ...]
    thread_targets: tuple[Site, ...]
    insensitive: tuple[Site, ...]
    is_middleware: bool
    returns: str
    slot: int
    params: Params


class Body(NamedTuple):
    """The bulky part of a function, decoded only when the function is reached.

    ``arity``, ``call_args``, ``call_guards``, ``hazard_guards``,
    ``call_replaced`` and ``created`` stay plain (see
    :class:`FuncSummary`); the linker reads them only on guarded chains.
    """

    calls: tuple[Site, ...]
    hazards: tuple[Hazard, ...]
    discarded: tuple[Site, ...]
    flask_uses: tuple[Hazard, ...]
    arity: bytes
    call_args: tuple[CallArgs, ...]
    call_guards: Indexed
    hazard_guards: Indexed
    call_replaced: tuple[tuple[int, tuple[str, ...]], ...]
    created: tuple[int, ...]


class FileIndex(NamedTuple):
    """The always-loaded part of a :class:`FileSummary`.

    Call sites and hazards (most of a summary's weight) stay marshalled in the
    file's body bytes until the linker reaches one of its functions.

    :param discard_names: last components of the targets of discarded calls,
        so the ``ASH402`` check decodes only bodies that may discard a coroutine.
    """

    module: str
    aliases: tuple[tuple[str, str], ...]
    functions: tuple[FuncInfo, ...]
    classes: tuple[ClassSummary, ...]
    middleware_refs: tuple[Site, ...]
    routed: tuple[str, ...]
    marked: tuple[str, ...]
    discard_names: tuple[str, ...]
    imported: tuple[str, ...]
    stars: tuple[str, ...] = ()


#: A summary as stored in the cache and sent back by workers: the index as
#: plain tuples, and the marshalled bodies.
PlainSummary = tuple[tuple[object, ...], bytes]


def _plain(items: tuple[tuple[object, ...], ...]) -> tuple[tuple[object, ...], ...]:
    return tuple(map(tuple, items))


def to_plain(summary: FileSummary) -> PlainSummary:
    """Split a summary into a plain-tuple index and marshalled bodies."""
    funcs = []
    bodies: list[Any] = []
    names: set[str] = set()
    for slot, f in enumerate(summary.functions):
        funcs.append(
            (
                f.qualname,
                f.line,
                f.col,
                f.is_async,
                f.is_generator,
                f.decorators,
                f.thread_targets,
                f.insensitive,
                f.is_middleware,
                f.returns,
                slot,
                f.params,
            )
        )
        # The walker builds sites as plain tuples (:meth:`~asgishift.audit.
        # _walk.WalkerBase.site`); hazards are named records, made plain here.
        bodies.append(
            (
                f.calls,
                _plain(f.hazards),
                f.discarded,
                _plain(f.flask_uses),
                f.arity,
                # the rarely filled fields in one slot: one empty tuple for most
                (f.call_args, f.call_guards, f.hazard_guards, f.call_replaced, f.created)
                if f.call_args or f.call_guards or f.hazard_guards or f.call_replaced or f.created
                else (),
            )
        )
        names.update(target.rsplit(".", 1)[-1] for target, *_ in f.discarded)
    index = (
        summary.module,
        summary.aliases,
        tuple(funcs),
        tuple(tuple(c) for c in summary.classes),
        summary.middleware_refs,
        summary.routed,
        summary.marked,
        tuple(sorted(names)),
        summary.imported,
        summary.stars,
    )
    return index, marshal.dumps(tuple(bodies))


def _sites(items: tuple[tuple[str, int, int, int, int, bool], ...]) -> tuple[Site, ...]:
    return tuple(map(Site._make, items)) if items else ()


def from_plain(plain: PlainSummary) -> tuple[FileIndex, bytes]:
    """Rebuild the index of :func:`to_plain` output; bodies stay marshalled."""
    index: Any = plain[0]
    (module, aliases, funcs, classes, middleware, routed, marked, discard, imported, stars) = index
    functions = tuple(
        FuncInfo(q, ln, c, a, g, d, _sites(t), _sites(i), m, r, s, p)
        for q, ln, c, a, g, d, t, i, m, r, s, p in funcs
    )
    return (
        FileIndex(
            module,
            aliases,
            functions,
            tuple(ClassSummary._make(c) for c in classes),
            _sites(middleware),
            routed,
            marked,
            discard,
            imported,
            stars,
        ),
        plain[1],
    )


def decode_bodies(data: bytes) -> tuple[tuple[Any, ...], ...]:
    """Decode the marshalled bodies of one file (see :func:`to_plain`), still plain tuples."""
    bodies: tuple[tuple[Any, ...], ...] = marshal.loads(data)
    return bodies


def body_record(plain: tuple[Any, ...]) -> Body:
    """Turn one plain body of :func:`decode_bodies` into a :class:`Body` of records."""
    calls, hazards, discarded, flask, arity, extra = plain
    args, call_guards, hazard_guards, replaced, created = extra or ((), (), (), (), ())
    make_hazard = Hazard._make
    return Body(
        _sites(calls),
        tuple(map(make_hazard, hazards)),
        _sites(discarded),
        tuple(map(make_hazard, flask)),
        arity,
        args,
        call_guards,
        hazard_guards,
        replaced,
        created,
    )


__all__ = [
    "Body",
    "ClassSummary",
    "FileIndex",
    "FileSummary",
    "FuncInfo",
    "FuncSummary",
    "Hazard",
    "PlainSummary",
    "Site",
    "body_record",
    "decode_bodies",
    "from_plain",
    "to_plain",
]
