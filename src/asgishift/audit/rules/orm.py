"""Rule family ``ASH2xx``: the Django ORM used synchronously from async code.

The walker hooks below recognise Managers and QuerySets by shape
(``Model.objects...``, a method of a project ``Manager``/``QuerySet``
subclass on ``self``, a variable bound to one) and model instances fetched
from them, and record the hazards: a query method called synchronously
(``ASH201``), a QuerySet evaluated by iteration, ``len``/``list``/``bool``,
a truth test, indexing or a stepped slice (``ASH202``), a foreign key read
from an instance whose query did not name it in ``select_related`` or
``prefetch_related`` (``ASH203``, decided at link time: only fields declared
as ``ForeignKey``/``OneToOneField`` on the project's model count; after a
bare ``select_related()`` only those declared ``null=True``),
``save()``/``delete()`` on an instance (``ASH204``), ``transaction.atomic``
(``ASH205``) and raw cursors (``ASH206``, by call name).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from asgishift.audit._model import FixKind, Rule, Severity
from asgishift.audit._records import Hazard
from asgishift.audit._scope import Hooks, pos, short
from asgishift.audit.rules._family import Family
from asgishift.audit.rules._family import methods as _methods

if TYPE_CHECKING:
    from asgishift.audit._link import Graph
    from asgishift.audit._scope import Scope
    from asgishift.audit._walk import WalkerBase

MANAGER_ATTRS = frozenset({"objects", "_default_manager", "_base_manager"})
#: QuerySet methods returning another QuerySet (no query yet).
LAZY_QS = frozenset(
    {
        "all",
        "filter",
        "exclude",
        "order_by",
        "select_related",
        "prefetch_related",
        "annotate",
        "alias",
        "distinct",
        "values",
        "values_list",
        "only",
        "defer",
        "using",
        "none",
        "reverse",
        "extra",
        "select_for_update",
        "union",
        "intersection",
        "difference",
        "dates",
        "datetimes",
        "complex_filter",
        "raw",
        # a generator that runs the query when iterated, as the QuerySet would
        "iterator",
    }
)
#: QuerySet/Manager methods that run a query; their async twin is ``"a" + name``.
SYNC_QS = frozenset(
    {
        "get",
        "first",
        "last",
        "latest",
        "earliest",
        "count",
        "exists",
        "create",
        "get_or_create",
        "update_or_create",
        "update",
        "delete",
        "bulk_create",
        "bulk_update",
        "in_bulk",
        "aggregate",
        "explain",
        "contains",
    }
)
#: Django functions that run queries; each has an async twin ``"a" + name``
#: in recent Django releases (the auth functions since Django 5.0).
DJANGO_QUERY_FUNCTIONS = (
    "django.shortcuts.get_object_or_404",
    "django.shortcuts.get_list_or_404",
    "django.contrib.auth.authenticate",
    "django.contrib.auth.login",
    "django.contrib.auth.logout",
    "django.contrib.auth.get_user",
    "django.contrib.auth.update_session_auth_hash",
)
_INSTANCE_SYNC = frozenset({"get", "first", "last", "latest", "earliest", "create"})
_INSTANCE_ASYNC = frozenset({"aget", "afirst", "alast", "alatest", "aearliest", "acreate"})
_MODEL_WRITE = frozenset({"save", "delete", "refresh_from_db"})
_EVALUATORS = frozenset(
    {"builtins.len", "builtins.list", "builtins.bool", "builtins.tuple", "builtins.sorted"}
)
_ATOMIC = "transaction.atomic"
#: What a query loads with its instances: relation names (the first part of
#: ``a__b`` lookups), or these markers.
Loaded = frozenset[str]
#: A relation argument the walk cannot read (a variable, ``*names``): any
#: relation may be loaded, so no read is reported (errs towards silence).
EVERY = "*"
#: A bare ``select_related()``: Django follows every non-null foreign key.
NON_NULL = "+"
_NOTHING: Loaded = frozenset()
_UNKNOWN: Loaded = frozenset({EVERY})

RULES: tuple[Rule, ...] = (
    Rule(
        code="ASH201",
        name="sync-orm-query",
        summary=(
            "A synchronous Django QuerySet/Manager method runs in (or is reachable from) "
            "async code."
        ),
        message=(
            "Synchronous ORM call {call}() in async code raises SynchronousOnlyOperation; "
            "use `await ...{async_call}()` or wrap it in `sync_to_async`"
        ),
        why=(
            "Django refuses to run queries from a thread with a running event loop "
            "(`SynchronousOnlyOperation`); the async QuerySet API (`aget`, `acount`, "
            "`acreate`...) or `sync_to_async` runs them safely. Django's shortcuts "
            "`get_object_or_404`/`get_list_or_404` and the auth functions `authenticate`, "
            "`login`, `logout`, `get_user` and `update_session_auth_hash` run queries too; "
            "use their async twins (`aauthenticate`, `alogin`... since Django 5.0; "
            "`aget_object_or_404` where your Django has it) or `sync_to_async`."
        ),
        example=(
            "from shop.models import Book\n\n\nasync def detail(request, pk):\n"
            "    return Book.objects.get(pk=pk)\n"
        ),
        fixed=(
            "from shop.models import Book\n\n\nasync def detail(request, pk):\n"
            "    return await Book.objects.aget(pk=pk)\n"
        ),
        calls=DJANGO_QUERY_FUNCTIONS,
        fix=FixKind.SAFE,
    ),
    Rule(
        code="ASH202",
        name="lazy-queryset-evaluation",
        summary=(
            "A QuerySet is evaluated synchronously (iteration, len, bool, list, stepped "
            "slice) in (or reachable from) async code."
        ),
        message=(
            "QuerySet evaluated synchronously by {call} in async code; use `async for`, "
            "`await qs.acount()`/`aexists()`, or `sync_to_async(list)(qs)`"
        ),
        why=(
            "A QuerySet runs its query the first time it is iterated, measured, tested for "
            "truth or converted to a list; doing that in async code raises "
            "`SynchronousOnlyOperation`."
        ),
        example=(
            "from shop.models import Book\n\n\nasync def titles(request):\n"
            "    return [b.title for b in Book.objects.filter(live=True)]\n"
        ),
        fixed=(
            "from shop.models import Book\n\n\nasync def titles(request):\n"
            "    return [b.title async for b in Book.objects.filter(live=True)]\n"
        ),
        calls=(),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH203",
        name="lazy-foreign-key-access",
        summary="A foreign key of a model instance is read from async code without select_related.",
        message=(
            "Reading foreign key {call} runs a query in async code; add "
            '`.select_related("{field}")` to the query or fetch it with `sync_to_async`'
        ),
        why=(
            "Accessing a not-yet-loaded ForeignKey/OneToOneField attribute runs a query "
            "behind the scenes, which raises `SynchronousOnlyOperation` in async code. "
            "The check is static: it knows instances returned by `Model.objects` queries in "
            "the same function and ForeignKey fields declared in the project's models. Only "
            'the relations the query names count as loaded: `select_related("editor")` '
            "does not load `author`, and a bare `select_related()` skips `null=True` keys."
        ),
        example=(
            "from django.db import models\n\n\nclass Author(models.Model):\n"
            "    name = models.TextField()\n\n\nclass Book(models.Model):\n"
            "    author = models.ForeignKey(Author, on_delete=models.CASCADE)\n\n\n"
            "async def author_name(pk):\n"
            "    book = await Book.objects.aget(pk=pk)\n"
            "    return book.author.name\n"
        ),
        fixed=(
            "from django.db import models\n\n\nclass Author(models.Model):\n"
            "    name = models.TextField()\n\n\nclass Book(models.Model):\n"
            "    author = models.ForeignKey(Author, on_delete=models.CASCADE)\n\n\n"
            "async def author_name(pk):\n"
            '    book = await Book.objects.select_related("author").aget(pk=pk)\n'
            "    return book.author.name\n"
        ),
        severity=Severity.WARNING,
        calls=(),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH204",
        name="sync-model-save-delete",
        summary="A model instance is saved, deleted or refreshed synchronously from async code.",
        message=(
            "Synchronous {call}() on a model instance in async code; use `await obj.a{method}()`"
        ),
        why=(
            "`Model.save()`, `delete()` and `refresh_from_db()` run queries; Django raises "
            "`SynchronousOnlyOperation` when they run in an event-loop thread."
        ),
        example=(
            "from shop.models import Book\n\n\nasync def rename(pk, title):\n"
            "    book = await Book.objects.aget(pk=pk)\n"
            "    book.title = title\n    book.save()\n"
        ),
        fixed=(
            "from shop.models import Book\n\n\nasync def rename(pk, title):\n"
            "    book = await Book.objects.aget(pk=pk)\n"
            "    book.title = title\n    await book.asave()\n"
        ),
        calls=(
            *_methods("django.db.models.Model", ("save", "delete", "refresh_from_db")),
            *_methods("django.db.models.base.Model", ("save", "delete", "refresh_from_db")),
        ),
        fix=FixKind.SAFE,
    ),
    Rule(
        code="ASH205",
        name="transaction-atomic-in-async",
        summary="`transaction.atomic` is used in (or reachable from) async code.",
        message=(
            "{call} does not work in async code; move the transactional block into a sync "
            "function run with `sync_to_async`"
        ),
        why=(
            "Django transactions are bound to a thread's connection; `transaction.atomic` "
            "in async code raises `SynchronousOnlyOperation` (and would otherwise wrap the "
            "wrong connection)."
        ),
        example=(
            "from django.db import transaction\n\n\nasync def transfer(a, b):\n"
            "    with transaction.atomic():\n        a.pay(b)\n"
        ),
        fixed=(
            "from asgiref.sync import sync_to_async\nfrom django.db import transaction\n\n\n"
            "def _transfer(a, b):\n    with transaction.atomic():\n        a.pay(b)\n\n\n"
            "async def transfer(a, b):\n    await sync_to_async(_transfer)(a, b)\n"
        ),
        calls=("django.db.transaction.atomic",),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH206",
        name="raw-cursor-in-async",
        summary="A raw Django database cursor is opened in (or reachable from) async code.",
        message=(
            "{call}() opens a sync database cursor in async code; run the raw SQL in a "
            "function wrapped with `sync_to_async`"
        ),
        why=(
            "`connection.cursor()` talks to the database synchronously and raises "
            "`SynchronousOnlyOperation` in an event-loop thread."
        ),
        example=(
            "from django.db import connection\n\n\nasync def stats():\n"
            "    with connection.cursor() as cursor:\n"
            '        cursor.execute("select 1")\n'
        ),
        fixed=(
            "from asgiref.sync import sync_to_async\nfrom django.db import connection\n\n\n"
            "def _stats():\n    with connection.cursor() as cursor:\n"
            '        cursor.execute("select 1")\n\n\n'
            "async def stats():\n    await sync_to_async(_stats)()\n"
        ),
        calls=("django.db.connection.cursor", "django.db.connections.cursor"),
        fix=FixKind.UNSAFE,
    ),
)


def _lookup(arg: ast.expr) -> str | None:
    """Return the relation a ``select_related``/``prefetch_related`` argument loads.

    ``"author"`` and ``"author__country"`` load ``author``; so does
    ``Prefetch("author", ...)``, but ``Prefetch("author", to_attr="a")`` puts
    the objects in ``a`` and loads no field (``""``). ``None`` when the
    argument is not a literal.
    """
    to_attr = False
    if isinstance(arg, ast.Call) and arg.args and short(arg.func).endswith("Prefetch"):
        to_attr = any(kw.arg == "to_attr" for kw in arg.keywords)
        arg = arg.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        head, sep, _ = arg.value.partition("__")
        return head if sep or not to_attr else ""
    return None


def _relations(call: ast.Call, method: str) -> Loaded:
    """Return what ``qs.select_related(...)``/``qs.prefetch_related(...)`` adds to a query."""
    if call.keywords:
        return _UNKNOWN
    if not call.args:
        # Django: a bare select_related() follows the non-null foreign keys, a
        # bare prefetch_related() adds nothing.
        return frozenset({NON_NULL}) if method == "select_related" else _NOTHING
    names: set[str] = set()
    for arg in call.args:
        if isinstance(arg, ast.Constant) and arg.value is None:
            continue  # ``select_related(None)`` clears: keeping the rest errs towards silence
        name = _lookup(arg)
        if name is None:
            return _UNKNOWN
        names.add(name)
    return frozenset(names)


def queryset(walker: WalkerBase, expr: ast.expr) -> tuple[str, Loaded] | None:
    """Return ``(model target, relations loaded)`` if ``expr`` is a Manager/QuerySet.

    The relations are those named by ``select_related``/``prefetch_related``
    anywhere in the chain (see :data:`EVERY` and :data:`NON_NULL`).
    """
    if isinstance(expr, ast.Attribute):
        if expr.attr in MANAGER_ATTRS:
            return walker.target(expr.value) or short(expr.value), _NOTHING
        return None
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr in LAZY_QS:
            inner = queryset(walker, func.value)
            if inner is not None:
                if func.attr == "select_related" or func.attr == "prefetch_related":
                    return inner[0], inner[1] | _relations(expr, func.attr)
                return inner
        return None
    if (
        isinstance(expr, ast.Subscript)
        and isinstance(expr.slice, ast.Slice)
        and expr.slice.step is None
    ):
        return queryset(walker, expr.value)  # ``qs[:10]`` is still a lazy QuerySet
    if isinstance(expr, ast.Name) and walker.scope is not None:
        scope = walker.scope
        found = scope.querysets.get(expr.id)
        if (
            found is None
            and scope.is_queryset_class
            and scope.types.get(expr.id) == scope.class_qual
        ):
            # ``self`` in a method of a project Manager/QuerySet subclass.
            return scope.class_qual, _NOTHING
        return found
    return None


def instance(walker: WalkerBase, expr: ast.expr) -> tuple[str, Loaded] | None:
    """Return ``(model target, relations loaded)`` if ``expr`` yields a model instance."""
    if isinstance(expr, ast.Await):
        call = expr.value
        names = _INSTANCE_ASYNC
    else:
        call = expr
        names = _INSTANCE_SYNC
    if isinstance(call, ast.Call):
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in names:
            return queryset(walker, func.value)
    if isinstance(expr, ast.Name) and walker.scope is not None:
        return walker.scope.models.get(expr.id)
    return None


def _on_call(walker: WalkerBase, node: ast.Call, target: str | None) -> None:
    func = node.func
    if isinstance(func, ast.Attribute):
        attr = func.attr
        if attr in SYNC_QS and queryset(walker, func.value) is not None:
            walker.hazard("ASH201", node, short(func), (("async_call", "a" + attr),))
        elif attr in _MODEL_WRITE and instance(walker, func.value) is not None:
            walker.hazard("ASH204", node, short(func), (("method", attr),))
    if target in _EVALUATORS and node.args and queryset(walker, node.args[0]) is not None:
        walker.hazard("ASH202", node, f"{str(target).removeprefix('builtins.')}()")


def _on_iterate(
    walker: WalkerBase, iterable: ast.expr, is_async: bool, target: ast.expr | None
) -> bool:
    qs = queryset(walker, iterable)
    if qs is None:
        return False
    if not is_async:
        how = "for ... in queryset" if target is not None else "comprehension over queryset"
        walker.hazard("ASH202", iterable, f"iteration ({how})")
    if isinstance(target, ast.Name) and walker.scope is not None:
        walker.scope.locals.add(target.id)
        walker.scope.types.pop(target.id, None)
        walker.scope.models[target.id] = qs
        return True
    return False


def _on_test(walker: WalkerBase, expr: ast.expr, how: str) -> None:
    if queryset(walker, expr) is not None:
        walker.hazard("ASH202", expr, f"truth test ({how} queryset)")


def _on_subscript(walker: WalkerBase, node: ast.Subscript) -> None:
    index = node.slice
    if isinstance(index, ast.Slice):
        if index.step is None or queryset(walker, node.value) is None:
            return
        walker.hazard("ASH202", node, "slicing with a step")
    elif queryset(walker, node.value) is not None:
        walker.hazard("ASH202", node, "indexing (queryset[i])")


def _on_bind(walker: WalkerBase, name: str, value: ast.expr) -> bool:
    scope = walker.scope
    assert scope is not None
    qs = queryset(walker, value)
    if qs is not None:
        scope.querysets[name] = qs
        return True
    inst = instance(walker, value)
    if inst is not None:
        scope.models[name] = inst
        scope.loaded = {pair for pair in scope.loaded if pair[0] != name}
        return True
    return False


def _on_attribute(walker: WalkerBase, node: ast.Attribute) -> None:
    scope = walker.scope
    value = node.value
    if scope is None or not isinstance(value, ast.Name):
        return
    model = scope.models.get(value.id)
    if model is None or node.attr.startswith("_"):
        return
    loaded = model[1]
    if loaded and (EVERY in loaded or node.attr in loaded):
        return
    if not isinstance(node.ctx, ast.Load):
        # ``book.author = other`` sets the cache: later reads are not queries.
        scope.loaded.add((value.id, node.attr))
        return
    key = (value.id, node.attr)
    if key in scope.loaded:
        return  # already loaded earlier in this function: no new query
    scope.loaded.add(key)
    # After a bare select_related() only a nullable foreign key is still a query.
    kind = "fknull" if NON_NULL in loaded else "fk"
    walker.hazard(
        "ASH203",
        node,
        f"{value.id}.{node.attr}",
        (("field", node.attr),),
        f"{kind}:{model[0]}:{node.attr}",
    )


def _on_decorator(
    walker: WalkerBase,
    dec: ast.expr,
    target: str | None,
    qual: str,
    scope: Scope,
    is_async: bool,
) -> None:
    del walker, qual
    if is_async and target is not None and target.endswith(_ATOMIC):
        line, col, end_line, end_col = pos(dec)
        scope.hazards.append(Hazard("ASH205", line, col, end_line, end_col, target, (), ""))


def _fk_holds(graph: Graph, argument: str) -> bool:
    """``fk:<model>:<attr>``: ``attr`` is a ForeignKey/OneToOneField of project model ``model``."""
    model, _, attr = argument.rpartition(":")
    return graph.has_fk(model, attr)


def _nullable_fk_holds(graph: Graph, argument: str) -> bool:
    """``fknull:<model>:<attr>``: ``attr`` is such a field declared with ``null=True``."""
    model, _, attr = argument.rpartition(":")
    return graph.has_fk(model, attr, nullable=True)


FAMILY = Family(
    rules=RULES,
    hooks=Hooks(
        call=(_on_call,),
        attribute=(_on_attribute,),
        iterate=(_on_iterate,),
        test=(_on_test,),
        subscript=(_on_subscript,),
        bind=(_on_bind,),
        decorator=(_on_decorator,),
    ),
    conditions={"fk": _fk_holds, "fknull": _nullable_fk_holds},
)

__all__ = [
    "DJANGO_QUERY_FUNCTIONS",
    "FAMILY",
    "LAZY_QS",
    "MANAGER_ATTRS",
    "RULES",
    "SYNC_QS",
    "instance",
    "queryset",
]
