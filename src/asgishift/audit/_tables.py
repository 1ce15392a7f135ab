"""Lookup tables of the audit: what well-known callables are, return and wrap.

Every name here is canonical and dotted (``"asgiref.sync.async_to_sync"``),
as the walker (:mod:`asgishift.audit._walk`) resolves names through imports.
Tables that belong to one rule family (the Django ORM's QuerySet methods, the
blocking calls of each ``ASH1xx`` rule) live in that family's module under
:mod:`asgishift.audit.rules`; the ones here are shared by the walker, the
linker and several families.
"""

from __future__ import annotations

import builtins

#: ``async_to_sync`` and its class; declared once, read by the walker
#: (building a wrapper is harmless, calling it is the hazard), the linker
#: (functions decorated with it) and rule ``ASH301``.
ASYNC_TO_SYNC = frozenset({"asgiref.sync.async_to_sync", "asgiref.sync.AsyncToSync"})

#: The ``sync_to_async`` family: wrappers that run a sync function in a thread.
SYNC_TO_ASYNC = frozenset(
    {
        "asgiref.sync.sync_to_async",
        "asgiref.sync.SyncToAsync",
        "channels.db.database_sync_to_async",
    }
)

#: Calls that run their function argument somewhere safe (a thread) or make the
#: decorated function awaitable; their arguments are not part of the caller.
SAFE_WRAPPERS = SYNC_TO_ASYNC | frozenset(
    {
        "asyncio.to_thread",
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "anyio.to_thread.run_sync",
        "asyncio.get_event_loop.run_in_executor",
        "asyncio.get_running_loop.run_in_executor",
        "asyncio.AbstractEventLoop.run_in_executor",
    }
)

#: Calls that open a file; the mode argument picks the file type (see :data:`FILE_TYPES`).
OPENERS = frozenset({"builtins.open", "io.open", "pathlib.Path.open", "codecs.open"})
#: The type of the object an opener returns, by whether the mode has ``b`` and
#: whether it reads or writes: ``open(p)`` is an ``io.TextIOWrapper``,
#: ``open(p, "rb")`` an ``io.BufferedReader``, ``open(p, "wb")`` an
#: ``io.BufferedWriter`` (the io module docs, "Raw I/O"/"Buffered Streams").
FILE_TYPES = {
    (False, False): "io.TextIOWrapper",
    (False, True): "io.TextIOWrapper",
    (True, False): "io.BufferedReader",
    (True, True): "io.BufferedWriter",
}

#: What a call returns when used as a receiver (``conn = sqlite3.connect()``).
RETURN_TYPES = {
    "builtins.open": "io.TextIOWrapper",
    "io.open": "io.TextIOWrapper",
    "pathlib.Path.open": "io.TextIOWrapper",
    "sqlite3.connect": "sqlite3.Connection",
    "sqlite3.dbapi2.connect": "sqlite3.Connection",
    "sqlite3.Connection.cursor": "sqlite3.Cursor",
    "socket.create_connection": "socket.socket",
    "requests.session": "requests.Session",
    "requests.sessions.Session": "requests.Session",
    "redis.from_url": "redis.Redis",
    "redis.Redis.from_url": "redis.Redis",
    "redis.StrictRedis": "redis.Redis",
    "psycopg2.connect": "psycopg2.extensions.connection",
    "threading.Condition": "threading.Condition",
    "pathlib.Path.resolve": "pathlib.Path",
    "pathlib.Path.absolute": "pathlib.Path",
    "pathlib.Path.with_suffix": "pathlib.Path",
    "pathlib.Path.with_name": "pathlib.Path",
    "pathlib.Path.with_stem": "pathlib.Path",
    "pathlib.Path.joinpath": "pathlib.Path",
    "pathlib.Path.expanduser": "pathlib.Path",
    "pathlib.Path.relative_to": "pathlib.Path",
    "pathlib.Path.home": "pathlib.Path",
    "pathlib.Path.cwd": "pathlib.Path",
    "pathlib.PurePath": "pathlib.Path",
    "pathlib.PosixPath": "pathlib.Path",
    "pathlib.WindowsPath": "pathlib.Path",
    "asyncio.get_running_loop": "asyncio.get_running_loop",
    "asyncio.events.get_running_loop": "asyncio.get_running_loop",
    "tempfile.NamedTemporaryFile": "io.BufferedWriter",
    "tempfile.TemporaryFile": "io.BufferedWriter",
    "sqlalchemy.create_engine": "sqlalchemy.engine.Engine",
    "sqlalchemy.engine.create_engine": "sqlalchemy.engine.Engine",
    "sqlalchemy.engine.Engine.connect": "sqlalchemy.engine.Connection",
    "sqlalchemy.engine.Engine.begin": "sqlalchemy.engine.Connection",
    # ``SessionLocal = sessionmaker(...)`` is a factory; calling it gives a Session.
    "sqlalchemy.orm.sessionmaker": "sqlalchemy.orm.sessionmaker.__call__",
    "sqlalchemy.orm.sessionmaker.__call__": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.sessionmaker.begin": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.Session": "sqlalchemy.orm.Session",
    # A scoped_session proxies every Session method to the current session.
    "sqlalchemy.orm.scoped_session": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.Session.query": "sqlalchemy.orm.Query",
    # Django's get_connection() returns the configured mail backend.
    "django.core.mail.get_connection": "django.core.mail.backends.base.BaseEmailBackend",
    **{
        f"sqlalchemy.orm.Query.{name}": "sqlalchemy.orm.Query"
        for name in (
            "filter",
            "filter_by",
            "where",
            "order_by",
            "group_by",
            "having",
            "join",
            "outerjoin",
            "options",
            "limit",
            "offset",
            "distinct",
            "select_from",
            "with_entities",
            "execution_options",
        )
    },
}
#: What an attribute (property) read gives (``Path(x).parent``).
PROPERTY_TYPES = {
    "pathlib.Path.parent": "pathlib.Path",
    "pathlib.Path.parents": "pathlib.Path",
    # Flask-SQLAlchemy's ``db.session``: a scoped_session, so a Session.
    "flask_sqlalchemy.SQLAlchemy.session": "sqlalchemy.orm.Session",
    "flask_sqlalchemy.extension.SQLAlchemy.session": "sqlalchemy.orm.Session",
}
#: Types whose ``/`` operator builds another of the same type.
DIV_TYPES = frozenset({"pathlib.Path"})
#: Canonical spellings of the same type (``sqlite3.dbapi2`` is ``sqlite3``).
TYPE_ALIASES = {
    "sqlite3.dbapi2.Connection": "sqlite3.Connection",
    "sqlite3.dbapi2.Cursor": "sqlite3.Cursor",
    "pathlib.PosixPath": "pathlib.Path",
    "pathlib.PurePath": "pathlib.Path",
    "sqlalchemy.Engine": "sqlalchemy.engine.Engine",
    "sqlalchemy.engine.base.Engine": "sqlalchemy.engine.Engine",
    "sqlalchemy.Connection": "sqlalchemy.engine.Connection",
    "sqlalchemy.engine.base.Connection": "sqlalchemy.engine.Connection",
    "sqlalchemy.orm.session.Session": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.scoping.scoped_session": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.scoped_session": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.query.Query": "sqlalchemy.orm.Query",
    # SQLModel's Session is SQLAlchemy's, plus exec() (SUBCLASS_METHODS).
    "sqlmodel.Session": "sqlalchemy.orm.Session",
    "sqlmodel.orm.session.Session": "sqlalchemy.orm.Session",
}
#: Methods only a subclass that :data:`TYPE_ALIASES` spells as its base has:
#: the call named through the base is the subclass's method, and is catalogued
#: (and patched at run time) under the subclass's importable name.
SUBCLASS_METHODS = {"sqlalchemy.orm.Session.exec": "sqlmodel.Session.exec"}
#: Flask's request-bound globals (``ASH304``).
FLASK_GLOBALS = frozenset({"flask.request", "flask.g", "flask.session"})
#: Constructors that run a function in a new thread.
THREAD_STARTERS = frozenset({"threading.Thread", "threading.Timer"})
#: Callables that keep their function argument to call it later, when the
#: object they return is used: ``SimpleLazyObject(lambda: get_page(request))``
#: runs nothing until an attribute of it is read. A lambda handed to them is a
#: function of its own, reached where it is called, not where it is written.
DEFERRED_CALLERS = frozenset(
    {"django.utils.functional.SimpleLazyObject", "django.utils.functional.lazy"}
)
#: Queue classes whose instances made without a bound are typed as the
#: stdlib's unbounded queue, whose ``put()`` never waits (its ``get()`` does).
UNBOUNDED_QUEUES = {
    "queue.Queue": "queue.SimpleQueue",
    "queue.LifoQueue": "queue.SimpleQueue",
    "queue.PriorityQueue": "queue.SimpleQueue",
}
#: SQLite modules by last dotted component (``sqlite3``, ``pysqlite3``, and a
#: project module re-exporting one, ``myapp.utils.sqlite3``): their
#: ``connect()`` given an in-memory database (a literal ``":memory:"`` or
#: ``file:...?mode=memory`` name) does no I/O, and returns
#: :data:`MEMORY_CONNECTION`, a type with no blocking methods.
SQLITE_MODULES = frozenset({"sqlite3", "pysqlite3", "dbapi2"})
MEMORY_CONNECTION = "sqlite3.MemoryConnection"
#: The type given to a variable holding an in-memory database URI built from
#: a template (``uri = "file:{}?mode=memory".format(name)``).
MEMORY_URI = "sqlite3.MemoryURI"
#: Calls that raise ``RuntimeError`` only where no event loop is set or running
#: (``asyncio.Lock()`` too, before Python 3.10): an ``except RuntimeError``
#: handler of a ``try`` that makes only these calls never runs in async code.
NO_LOOP_PROBES = frozenset(
    {
        "asyncio.get_event_loop",
        "asyncio.get_running_loop",
        "asyncio.events.get_event_loop",
        "asyncio.events.get_running_loop",
        "asyncio.Lock",
        "asyncio.Event",
        "asyncio.Condition",
        "asyncio.Semaphore",
        "asyncio.BoundedSemaphore",
        "asyncio.Queue",
    }
)
#: Methods that hand a callable to a thread pool (``executor.submit(fn)``,
#: ``loop.run_in_executor(None, fn)``), whatever the receiver.
HANDOFF_METHODS = frozenset({"submit", "run_in_executor"})
#: Callables returning a callable that calls their first argument
#: (``functools.partial(time.sleep, 1)()`` sleeps).
BINDERS = frozenset({"functools.partial"})
#: Decorators that carry the request context into another thread.
COPY_CONTEXT = frozenset(
    {"flask.copy_current_request_context", "flask.ctx.copy_current_request_context"}
)
#: The ``threading.local`` classes (``ASH303``).
THREAD_LOCALS = frozenset({"threading.local", "_threading_local.local"})
#: What a function's record lists for a decorator the walk could not name
#: (``@registry.task`` on an untyped ``registry``): not a dotted name.
UNKNOWN_DECORATOR = "<unknown decorator>"
#: Decorators that leave a coroutine function one: calling what they return
#: still only builds a coroutine (``ASH402`` when it is discarded). Any other
#: decorator may turn it into something else (a task starter, a sync wrapper).
COROUTINE_KEEPING_DECORATORS = frozenset(
    {
        "builtins.staticmethod",
        "builtins.classmethod",
        "abc.abstractmethod",
        "functools.wraps",
        "typing.final",
        "typing.override",
        "typing_extensions.final",
        "typing_extensions.override",
    }
)
#: Standard-library coroutine functions (``ASH402`` when discarded).
KNOWN_COROUTINES = frozenset(
    {
        "asyncio.sleep",
        "asyncio.wait_for",
        "asyncio.wait",
        "asyncio.open_connection",
        "asyncio.create_subprocess_exec",
        "asyncio.create_subprocess_shell",
    }
)
#: Django's middleware capability decorators (``ASH305``).
MIDDLEWARE_MARKERS = frozenset(
    {"sync_and_async_middleware", "async_only_middleware", "sync_only_middleware"}
)
#: Containers whose annotation's first type argument is the element type
#: (``list[Path]``, ``Iterable[Session]``).
ELEMENT_CONTAINERS = frozenset(
    {
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "builtins.tuple",
        "typing.List",
        "typing.Set",
        "typing.FrozenSet",
        "typing.Sequence",
        "typing.Iterable",
        "typing.Iterator",
        "typing.Collection",
        "collections.abc.Sequence",
        "collections.abc.Iterable",
        "collections.abc.Iterator",
        "collections.abc.Collection",
        "collections.abc.Set",
    }
)
#: Mappings whose annotation's second type argument is the value type (``dict[str, Path]``).
MAPPING_CONTAINERS = frozenset(
    {
        "builtins.dict",
        "typing.Dict",
        "typing.Mapping",
        "typing.MutableMapping",
        "collections.abc.Mapping",
        "collections.abc.MutableMapping",
    }
)
#: Wrappers whose first type argument is the type itself (``Optional[Path]``).
TRANSPARENT_TYPES = frozenset(
    {
        "typing.Optional",
        "typing.Final",
        "typing.ClassVar",
        # ``Annotated[Session, Depends(get_db)]`` (FastAPI's dependencies) is a Session.
        "typing.Annotated",
        "typing_extensions.Annotated",
    }
)
#: Names of the builtins module.
BUILTINS = frozenset(dir(builtins))
#: The call-site target suffix of an attribute read on a typed receiver
#: Django's adapter of a function decorator to methods: ``@method_decorator(dec)``
#: on a method, ``@method_decorator(dec, name="dispatch")`` on a class; the
#: walk records ``dec`` as a decorator of the method it wraps too.
METHOD_DECORATOR = "django.utils.decorators.method_decorator"

#: (``store.size`` is ``shop.Store.size.__get__``): the linker follows it only
#: into a project function decorated with one of :data:`PROPERTY_DECORATORS`.
PROPERTY_READ = ".__get__"
#: Decorators that make a method's body run on a plain attribute read; called
#: in a class body (``size = property(get_size)``) they make that attribute run
#: the function given (:data:`PROPERTY_GETTER_KEYWORDS`).
PROPERTY_DECORATORS = frozenset(
    {
        "builtins.property",
        "functools.cached_property",
        "django.utils.functional.cached_property",
        "werkzeug.utils.cached_property",
        "pyramid.decorator.reify",
    }
)
#: The keywords that name the getter in a call of one of :data:`PROPERTY_DECORATORS`
#: (``property(fget=...)``; ``func`` for functools' and Django's, ``wrapped`` for
#: Pyramid's); else it is the first positional argument.
PROPERTY_GETTER_KEYWORDS = frozenset({"fget", "func", "wrapped"})
#: The methods a sync ``with`` calls on its context manager, with their
#: positional argument counts: ``with X():`` calls ``X.__enter__`` and ``X.__exit__``.
WITH_METHODS = ((".__enter__", 0), (".__exit__", 3))

__all__ = [
    "ASYNC_TO_SYNC",
    "BINDERS",
    "BUILTINS",
    "COPY_CONTEXT",
    "COROUTINE_KEEPING_DECORATORS",
    "DEFERRED_CALLERS",
    "DIV_TYPES",
    "ELEMENT_CONTAINERS",
    "FILE_TYPES",
    "FLASK_GLOBALS",
    "HANDOFF_METHODS",
    "KNOWN_COROUTINES",
    "MAPPING_CONTAINERS",
    "MEMORY_CONNECTION",
    "MEMORY_URI",
    "METHOD_DECORATOR",
    "MIDDLEWARE_MARKERS",
    "NO_LOOP_PROBES",
    "OPENERS",
    "PROPERTY_DECORATORS",
    "PROPERTY_GETTER_KEYWORDS",
    "PROPERTY_READ",
    "PROPERTY_TYPES",
    "RETURN_TYPES",
    "SAFE_WRAPPERS",
    "SQLITE_MODULES",
    "SYNC_TO_ASYNC",
    "THREAD_LOCALS",
    "THREAD_STARTERS",
    "TRANSPARENT_TYPES",
    "TYPE_ALIASES",
    "UNBOUNDED_QUEUES",
    "UNKNOWN_DECORATOR",
    "WITH_METHODS",
]
