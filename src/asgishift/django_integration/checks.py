"""System checks for Django under ASGI (Django docs, "System check framework").

Registered by :class:`~asgishift.django_integration.apps.AsgishiftConfig`.
Every check has a stable id, declared once in :data:`CHECKS` (which the docs
table in ``docs/django.md`` lists); each warning names what it found and how
to fix it. Nothing is reported for a project that is fine, so
``manage.py check --deploy`` stays quiet about this app.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class CheckInfo:
    """One check: its id, a one-line title and the fix (the warning's hint)."""

    id: str
    title: str
    hint: str


#: Every check of this app, in id order; the docs table is made from this.
CHECKS = (
    CheckInfo(
        "asgishift.E001",
        "ASGISHIFT_RUNASGI_SERVER names no supported server",
        "Set it to uvicorn, hypercorn, daphne or granian.",
    ),
    CheckInfo(
        "asgishift.E002",
        "ASGISHIFT_LIFESPAN lists something that is no lifespan hook",
        "List the dotted path of each hook, a callable hook(state) that returns an async "
        "context manager (e.g. an async def with one yield, decorated with "
        "@contextlib.asynccontextmanager): ASGISHIFT_LIFESPAN = "
        "['mysite.lifespan.http_client']. Fix the path or remove the entry.",
    ),
    CheckInfo(
        "asgishift.E003",
        "ASGISHIFT_MAX_THREADS or ASGISHIFT_ORM_THREADS is not a whole number of 1 or more",
        "Set it to a whole number such as 16, or remove it to get the default.",
    ),
    CheckInfo(
        "asgishift.W001",
        "Sync middleware costs thread hops under Django's stock ASGI handler",
        "Serve the project with asgishift.django_integration.get_asgi_application(), which "
        "runs consecutive sync middleware in one hop, or make the middleware async-capable.",
    ),
    CheckInfo(
        "asgishift.W002",
        "CONN_MAX_AGE has no effect with Django's stock ASGI handler",
        "The stock handler runs every request on a new thread with a new connection; use "
        "asgishift.django_integration.get_asgi_application() (connections persist per "
        "thread) or set CONN_MAX_AGE = 0.",
    ),
    CheckInfo(
        "asgishift.W003",
        "ATOMIC_REQUESTS is on and some views are async",
        "Django raises for async views under ATOMIC_REQUESTS; make these views sync, wrap "
        "them in transaction.non_atomic_requests, or turn ATOMIC_REQUESTS off.",
    ),
    CheckInfo(
        "asgishift.W004",
        "StreamingHttpResponse with a sync iterator, or FileResponse, under Django's stock "
        "ASGI handler",
        "Django's stock ASGI handler consumes a sync iterator (a FileResponse's file "
        "included) whole into memory before sending it; give StreamingHttpResponse an async "
        "iterator (async def with yield), or serve the project with "
        "asgishift.django_integration.get_asgi_application(), which streams both.",
    ),
    CheckInfo(
        "asgishift.W005",
        "The server runasgi uses is not installed (checked with DEBUG on)",
        "Install it, e.g. pip install 'asgishift[uvicorn]', or set ASGISHIFT_RUNASGI_SERVER "
        "to an installed server.",
    ),
)
_BY_ID = {info.id: info for info in CHECKS}


def _warning(check_id: str, msg: str) -> checks.CheckMessage:
    level = checks.Error if ".E" in check_id else checks.Warning
    return level(msg, hint=_BY_ID[check_id].hint, id=check_id)


def stock_handler_in_use() -> str | None:
    """Return the dotted path of a stock Django ``ASGIHandler`` this project serves, or ``None``.

    Looks at ``ASGI_APPLICATION``, else at the project's ``asgi.py``: the
    ``asgi`` module of the nearest package enclosing the settings module that
    has one (``mysite.settings`` → ``mysite.asgi``; a settings package,
    ``config.settings.production`` → ``config.settings.asgi``, else
    ``config.asgi``). A Channels ``ProtocolTypeRouter`` is looked into: its
    ``"http"`` application is what serves HTTP. Anything that cannot be imported
    counts as "not in use".

    :return: e.g. ``"mysite.asgi.application"``, or
        ``"mysite.asgi.application ('http' of its router)"`` for a router.
    """
    from django.core.handlers.asgi import ASGIHandler

    from asgishift.django_integration.handler import BoundedASGIHandler

    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        module = _project_asgi_module(getattr(settings, "SETTINGS_MODULE", None) or "")
        if module is None:
            return None
        path = f"{module}.application"
        try:
            importlib.import_module(module)
        except Exception:
            return None
    try:
        app = import_string(path)
    except Exception:
        return None
    where = str(path)
    routes = getattr(app, "application_mapping", None)  # Channels' ProtocolTypeRouter
    if isinstance(routes, dict) and "http" in routes:
        app, where = routes["http"], f"{path} ('http' of its router)"
    if isinstance(app, ASGIHandler) and not isinstance(app, BoundedASGIHandler):
        return where
    return None


def _project_asgi_module(settings_module: str) -> str | None:
    """The dotted name of the ``asgi`` module nearest to ``settings_module``, looking in
    each enclosing package from the innermost out; ``None`` when there is none."""
    parts = settings_module.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join([*parts[:end], "asgi"])
        try:
            if importlib.util.find_spec(candidate) is not None:
                return candidate
        except (ImportError, ValueError):  # a parent that is not a package, or is blocked
            continue
    return None


def stock_hops(middleware: type | Callable[..., Any]) -> int:
    """Return the thread hops one middleware adds per request under Django's ASGI handler.

    A ``MiddlewareMixin`` subclass hops once per ``process_request``,
    ``process_view`` and ``process_response`` it defines; sync-only middleware
    hops twice (into a thread, and back for the rest of the chain); async
    middleware does not hop.
    """
    from django.utils.deprecation import MiddlewareMixin

    if isinstance(middleware, type) and issubclass(middleware, MiddlewareMixin):
        names = ("process_request", "process_view", "process_response")
        return sum(1 for name in names if hasattr(middleware, name))
    if getattr(middleware, "async_capable", False):
        return 0
    return 2


@checks.register("asgishift")
def check_middleware_hops(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.W001: name each middleware that hops under the stock handler, with its cost."""
    handler = stock_handler_in_use()
    if handler is None:
        return []
    costs = []
    for path in settings.MIDDLEWARE:
        try:
            hops = stock_hops(import_string(path))
        except ImportError:
            continue
        if hops:
            costs.append(f"{path} ({hops})")
    if not costs:
        return []
    return [
        _warning(
            "asgishift.W001",
            f"{handler} is Django's stock ASGI handler; these middleware cost thread hops "
            f"per request: {', '.join(costs)}.",
        )
    ]


@checks.register("asgishift")
def check_conn_max_age(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.W002: persistent connections configured but the stock handler in use."""
    aliases = [
        alias for alias, db in settings.DATABASES.items() if db.get("CONN_MAX_AGE", 0) not in (0,)
    ]
    if not aliases:
        return []
    handler = stock_handler_in_use()
    if handler is None:
        return []
    return [
        _warning(
            "asgishift.W002",
            f"DATABASES[{alias!r}]['CONN_MAX_AGE'] is set but {handler} opens a new "
            "connection for every request.",
        )
        for alias in aliases
    ]


def _url_callbacks() -> Iterator[tuple[str, Callable[..., Any]]]:
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: Any, prefix: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    try:
        yield from walk(get_resolver().url_patterns, "")
    except Exception:  # a broken URLconf is reported by Django's own checks
        return


def _is_async_view(callback: Callable[..., Any]) -> bool:
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return bool(getattr(view_class, "view_is_async", False))
    return inspect.iscoroutinefunction(inspect.unwrap(callback))


@checks.register("asgishift")
def check_atomic_requests(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.W003: ATOMIC_REQUESTS with async views (Django raises at request time)."""
    aliases = [alias for alias, db in settings.DATABASES.items() if db.get("ATOMIC_REQUESTS")]
    if not aliases:
        return []
    # Django refuses the view for each such alias it is not non_atomic_requests for.
    views = sorted(
        route
        for route, callback in _url_callbacks()
        if _is_async_view(callback)
        and not set(aliases) <= set(getattr(callback, "_non_atomic_requests", ()))
    )
    if not views:
        return []
    return [
        _warning(
            "asgishift.W003",
            f"ATOMIC_REQUESTS is on for {', '.join(aliases)} and these views are async: "
            f"{', '.join(views)}.",
        )
    ]


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes under ``node`` in its own scope: nested functions, lambdas and classes
    are yielded but not entered."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(
            child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
        ):
            yield from _own_nodes(child)


def _local_functions(scope: ast.AST) -> dict[str, bool]:
    """The functions and classes ``scope`` (a module or function) defines in its own
    scope: name → whether it is a sync generator function (the last definition wins)."""
    return {
        node.name: isinstance(node, ast.FunctionDef)
        and any(isinstance(n, ast.Yield | ast.YieldFrom) for n in _own_nodes(node))
        for node in _own_nodes(scope)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


class _StreamFinder(ast.NodeVisitor):
    """Find ``StreamingHttpResponse(<sync generator>)`` and ``FileResponse(...)`` calls
    (a file is always iterated synchronously) in a function's source.

    A called name is resolved as Python does for a function: in the enclosing
    functions, innermost first, then in the module (``module_functions``,
    from :func:`_local_functions`); a name defined in none of them is not
    reported.
    """

    def __init__(self, module_functions: dict[str, bool]) -> None:
        self.scopes = [module_functions]
        #: ``(line, class name)`` of each call found.
        self.found: list[tuple[int, str]] = []

    def _is_sync_generator(self, name: str) -> bool:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return False

    def _is_sync_iterator(self, arg: ast.expr) -> bool:
        if isinstance(arg, ast.GeneratorExp):
            return not any(comp.is_async for comp in arg.generators)
        return (
            isinstance(arg, ast.Call)
            and isinstance(arg.func, ast.Name)
            and self._is_sync_generator(arg.func.id)
        )

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(_local_functions(node))
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Call(self, node: ast.Call) -> None:
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        sync_stream = (
            name == "StreamingHttpResponse" and node.args and self._is_sync_iterator(node.args[0])
        )
        if sync_stream or name == "FileResponse":
            self.found.append((node.lineno, name))
        self.generic_visit(node)


def sync_stream_sites(callback: Callable[..., Any]) -> list[str]:
    """Return ``"file:line: what"`` of each ``StreamingHttpResponse`` built from a sync
    generator, and of each ``FileResponse``, in the source of ``callback`` (found by
    parsing it); ``what`` names the class and its sync iterator."""
    func = inspect.unwrap(getattr(callback, "view_class", callback))
    try:
        module_source = inspect.getsource(inspect.getmodule(func))  # type: ignore[arg-type]
        source = textwrap.dedent(inspect.getsource(func))
        first_line = inspect.getsourcelines(func)[1]
        filename = inspect.getsourcefile(func) or "?"
    except (OSError, TypeError):
        return []
    finder = _StreamFinder(_local_functions(ast.parse(module_source)))
    finder.visit(ast.parse(source))
    what = {
        "StreamingHttpResponse": "StreamingHttpResponse is given a sync iterator",
        "FileResponse": "FileResponse iterates its file synchronously",
    }
    return [f"{filename}:{first_line + line - 1}: {what[name]}" for line, name in finder.found]


@checks.register("asgishift")
def check_sync_streaming(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.W004: views that stream a sync iterator under Django's stock ASGI handler.

    Only that handler reads such an iterator whole; asgishift's handler streams
    it one part per thread hop, and WSGI servers stream it too.
    """
    if stock_handler_in_use() is None:
        return []
    sites: set[str] = set()
    for _route, callback in _url_callbacks():
        module = getattr(inspect.unwrap(callback), "__module__", "") or ""
        if module.startswith("django."):
            continue
        sites.update(sync_stream_sites(callback))
    return [_warning("asgishift.W004", f"{site}.") for site in sorted(sites)]


@checks.register("asgishift")
def check_lifespan_setting(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.E002: an ``ASGISHIFT_LIFESPAN`` entry that does not import or is no hook.

    Imports each entry (not running it), so a typo stops ``manage.py check``,
    ``runasgi`` and ``migrate`` instead of the first server's lifespan startup.
    One error per bad entry, naming it and why.
    """
    from asgishift.django_integration.lifespan import load_setting

    _hooks, problems = load_setting()
    return [_warning("asgishift.E002", f"{problem.text}.") for problem in problems]


#: The thread-count settings :func:`check_thread_settings` looks at.
THREAD_SETTINGS = ("ASGISHIFT_MAX_THREADS", "ASGISHIFT_ORM_THREADS")


def is_thread_count(value: object) -> bool:
    """Return whether ``value`` is a valid thread count: an ``int`` (not ``bool``) ≥ 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@checks.register("asgishift")
def check_thread_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.E003: a thread-count setting that is set but is no whole number ≥ 1.

    ``ASGISHIFT_MAX_THREADS`` is ``runasgi``'s default ``--max-threads``;
    ``ASGISHIFT_ORM_THREADS`` sizes the ORM threads used outside requests, read
    at the first such call.
    """
    return [
        _warning(
            "asgishift.E003",
            f"{name} = {value!r}; it must be a whole number of 1 or more.",
        )
        for name in THREAD_SETTINGS
        if hasattr(settings, name) and not is_thread_count(value := getattr(settings, name))
    ]


@checks.register("asgishift")
def check_runasgi_server(**kwargs: Any) -> list[checks.CheckMessage]:
    """asgishift.E001: ``ASGISHIFT_RUNASGI_SERVER`` names no server; asgishift.W005: with
    ``DEBUG`` on, the server ``runasgi`` starts by default is not importable.

    ``runasgi`` is a development server: a production settings file (``DEBUG``
    off) on a machine that serves with another server gets no W005, and
    ``runasgi`` itself refuses a missing server with the install line.
    """
    from asgishift.serve._servers import SERVERS

    server = getattr(settings, "ASGISHIFT_RUNASGI_SERVER", SERVERS[0])
    if server not in SERVERS:
        return [_warning("asgishift.E001", f"ASGISHIFT_RUNASGI_SERVER = {server!r}.")]
    if not settings.DEBUG:
        return []
    try:
        if importlib.util.find_spec(server) is not None:
            return []
    except ValueError:  # sys.modules[server] is None: import blocked
        pass
    return [
        _warning(
            "asgishift.W005",
            f"runasgi serves with {server}, which is not installed "
            f"(pip install 'asgishift[{server}]').",
        )
    ]


__all__ = [
    "CHECKS",
    "THREAD_SETTINGS",
    "CheckInfo",
    "is_thread_count",
    "stock_handler_in_use",
    "stock_hops",
    "sync_stream_sites",
]
