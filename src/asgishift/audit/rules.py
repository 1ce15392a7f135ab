"""The audit rule catalogue: every rule asgishift knows, declared once.

Each :class:`~asgishift.audit._model.Rule` carries its code, kebab-case name,
message template (which names the fix), a *why* paragraph, an example that
fires and a fixed version that does not. Output formats, ``--explain``, the
docs page and the runtime detector all read this module; the static engine
(:mod:`asgishift.audit.engine`) matches resolved call names against
:attr:`Rule.calls`.

Families:

* ``ASH1xx`` blocking calls (sleep, network, processes, files, DB drivers,
  locks, ``input``); ``ASH199`` is the user rule for
  ``extra_blocking`` callables.
* ``ASH2xx`` the Django ORM used synchronously from async code.
* ``ASH3xx`` migration hazards (nested loops, ``async_to_sync`` from async,
  thread-locals, request globals in threads, sync-only middleware).
* ``ASH4xx`` wrapper misuse (``thread_sensitive=False`` around the ORM,
  coroutines never awaited).

The ``calls`` of ``ASH1xx`` rules are importable dotted names
(``"requests.Session.get"``) so the runtime detector can patch them.
"""

from __future__ import annotations

import re
from functools import cache

from asgishift.audit._model import FixKind, Rule, Severity

_HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request")


def _methods(owner: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``owner.name`` for each name (keeps long ``calls`` lists readable)."""
    return tuple(f"{owner}.{name}" for name in names)


_PATH_IO = (
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "open",
    "touch",
    "mkdir",
    "rmdir",
    "unlink",
    "rename",
    "replace",
    "iterdir",
    "glob",
    "rglob",
)
_PATH_QUERY = (
    "exists",
    "is_file",
    "is_dir",
    "is_symlink",
    "stat",
    "lstat",
    "resolve",
    "samefile",
    "owner",
    "group",
)
_OS_PATH_QUERY = (
    "exists",
    "lexists",
    "isfile",
    "isdir",
    "islink",
    "ismount",
    "getsize",
    "getmtime",
    "getatime",
    "getctime",
    "realpath",
    "samefile",
)
_REDIS_COMMANDS = (
    "get",
    "set",
    "delete",
    "exists",
    "expire",
    "incr",
    "decr",
    "hget",
    "hset",
    "hgetall",
    "lpush",
    "rpush",
    "lpop",
    "rpop",
    "publish",
    "execute_command",
    "pipeline",
    "keys",
    "mget",
    "mset",
    "ping",
)

_RULES: tuple[Rule, ...] = (
    # ------------------------------------------------------------------ ASH1xx
    Rule(
        code="ASH101",
        name="blocking-sleep",
        summary="A blocking sleep runs in (or is reachable from) async code.",
        message="Blocking call {call}() stops the event loop; use `await asyncio.sleep(...)`",
        why=(
            "`time.sleep()` suspends the whole thread. Under ASGI one thread runs the event "
            "loop for every connection, so a one-second sleep stalls every request served "
            "by that worker for a second."
        ),
        example=("import time\n\n\nasync def poll():\n    time.sleep(1)\n"),
        fixed=("import asyncio\n\n\nasync def poll():\n    await asyncio.sleep(1)\n"),
        calls=("time.sleep",),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH102",
        name="blocking-http-client",
        summary="A synchronous HTTP client call runs in (or is reachable from) async code.",
        message=(
            "Blocking HTTP call {call}() in async code; use `httpx.AsyncClient` or wrap it "
            "in `await asyncio.to_thread(...)`"
        ),
        why=(
            "`requests`, `urllib`, `urllib3` and `httpx`'s sync API wait on the network "
            "while holding the event-loop thread: one slow upstream freezes every other "
            "request in the worker."
        ),
        example=(
            "import requests\n\n\nasync def view(request):\n"
            '    return requests.get("https://example.com").text\n'
        ),
        fixed=(
            "import httpx\n\n\nasync def view(request):\n"
            "    async with httpx.AsyncClient() as client:\n"
            '        return (await client.get("https://example.com")).text\n'
        ),
        calls=(
            *_methods("requests", _HTTP_VERBS),
            *_methods("requests.api", _HTTP_VERBS),
            *_methods("requests.Session", (*_HTTP_VERBS, "send")),
            *_methods("requests.sessions.Session", (*_HTTP_VERBS, "send")),
            "urllib.request.urlopen",
            "urllib.request.urlretrieve",
            "urllib.request.OpenerDirector.open",
            *_methods("httpx", (*_HTTP_VERBS, "stream")),
            *_methods("httpx.Client", (*_HTTP_VERBS, "send", "stream")),
            "urllib3.request",
            "urllib3.PoolManager.request",
            "urllib3.PoolManager.urlopen",
            "urllib3.HTTPConnectionPool.urlopen",
            "http.client.HTTPConnection.request",
            "http.client.HTTPConnection.getresponse",
            "http.client.HTTPSConnection.request",
            "http.client.HTTPSConnection.getresponse",
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH103",
        name="blocking-socket",
        summary="A blocking socket or DNS call runs in (or is reachable from) async code.",
        message=(
            "Blocking socket/DNS call {call}() in async code; use `asyncio.open_connection()` "
            "or `loop.getaddrinfo()`"
        ),
        why=(
            "Connecting, reading, writing and resolving names on a blocking socket waits on "
            "the network inside the event-loop thread; DNS lookups alone can take seconds."
        ),
        example=(
            "import socket\n\n\nasync def check(host):\n"
            "    return socket.create_connection((host, 80))\n"
        ),
        fixed=(
            "import asyncio\n\n\nasync def check(host):\n"
            "    return await asyncio.open_connection(host, 80)\n"
        ),
        calls=(
            "socket.create_connection",
            "socket.getaddrinfo",
            "socket.gethostbyname",
            "socket.gethostbyname_ex",
            "socket.gethostbyaddr",
            "socket.getfqdn",
            "socket.getnameinfo",
            *_methods(
                "socket.socket",
                ("connect", "connect_ex", "accept", "recv", "recv_into", "recvfrom", "send"),
            ),
            *_methods("socket.socket", ("sendall", "sendto", "sendfile", "makefile")),
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH104",
        name="blocking-subprocess",
        summary="A blocking process call runs in (or is reachable from) async code.",
        message=(
            "Blocking process call {call}() in async code; use "
            "`await asyncio.create_subprocess_exec(...)`"
        ),
        why=(
            "`subprocess.run()`, `os.system()` and `os.wait*()` block until the child exits; "
            "the event loop cannot serve anything else meanwhile."
        ),
        example=(
            'import subprocess\n\n\nasync def build():\n    subprocess.run(["make"], check=True)\n'
        ),
        fixed=(
            "import asyncio\n\n\nasync def build():\n"
            '    proc = await asyncio.create_subprocess_exec("make")\n'
            "    await proc.wait()\n"
        ),
        calls=(
            "subprocess.run",
            "subprocess.call",
            "subprocess.check_call",
            "subprocess.check_output",
            "subprocess.getoutput",
            "subprocess.getstatusoutput",
            "subprocess.Popen.wait",
            "subprocess.Popen.communicate",
            "os.system",
            "os.popen",
            "os.wait",
            "os.waitpid",
            "os.wait3",
            "os.wait4",
            "os.waitid",
            "os.spawnl",
            "os.spawnv",
            "os.spawnlp",
            "os.spawnvp",
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH105",
        name="blocking-file-io",
        summary="Blocking file I/O runs in (or is reachable from) async code.",
        message=(
            "Blocking file I/O {call}() in async code; use `await asyncio.to_thread(...)` "
            "or an async file library such as `anyio.Path`"
        ),
        why=(
            "Disk reads and writes block the calling thread; on network file systems or a "
            "busy disk a single `open().read()` can stall every connection of the worker."
        ),
        example=("async def report(path):\n    with open(path) as fh:\n        return fh.read()\n"),
        fixed=(
            "import asyncio\nfrom pathlib import Path\n\n\nasync def report(path):\n"
            "    return await asyncio.to_thread(Path(path).read_text)\n"
        ),
        calls=(
            "builtins.open",
            "io.open",
            "codecs.open",
            # Methods of the file object open() returns (static matching only:
            # built-in types cannot be patched at run time).
            *_methods("io.TextIOWrapper", ("read", "readline", "readlines", "write")),
            *_methods("io.TextIOWrapper", ("writelines", "flush", "truncate")),
            *_methods("pathlib.Path", _PATH_IO),
            "shutil.copyfile",
            "shutil.copy",
            "shutil.copy2",
            "shutil.copytree",
            "shutil.rmtree",
            "shutil.move",
            "shutil.make_archive",
            "shutil.unpack_archive",
            "os.remove",
            "os.unlink",
            "os.rename",
            "os.replace",
            "os.makedirs",
            "os.mkdir",
            "os.rmdir",
            "os.listdir",
            "os.scandir",
            "os.walk",
            "os.read",
            "os.write",
            "os.fsync",
            "tempfile.mkstemp",
            "tempfile.NamedTemporaryFile",
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH106",
        name="blocking-filesystem-query",
        summary="A blocking file-system metadata query runs in (or is reachable from) async code.",
        message=(
            "Blocking file-system query {call}() in async code; use "
            "`await asyncio.to_thread({call}, ...)`"
        ),
        why=(
            "`os.path.exists()`, `stat()` and friends are system calls that wait on the disk; "
            "they are usually fast but unbounded on network or overloaded file systems."
        ),
        example=(
            "import os.path\n\n\nasync def has_avatar(path):\n    return os.path.exists(path)\n"
        ),
        fixed=(
            "import asyncio\nimport os.path\n\n\nasync def has_avatar(path):\n"
            "    return await asyncio.to_thread(os.path.exists, path)\n"
        ),
        severity=Severity.WARNING,
        calls=(
            *_methods("os.path", _OS_PATH_QUERY),
            "os.stat",
            "os.lstat",
            "os.access",
            *_methods("pathlib.Path", _PATH_QUERY),
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH107",
        name="blocking-database-driver",
        summary="A synchronous database driver call runs in (or is reachable from) async code.",
        message=(
            "Blocking database call {call}() in async code; use an async driver "
            "(asyncpg, aiosqlite, redis.asyncio) or `await asyncio.to_thread(...)`"
        ),
        why=(
            "DB-API drivers and the sync redis client wait for the server while holding the "
            "event-loop thread, so one slow query delays every request in the worker."
        ),
        example=(
            "import sqlite3\n\n\nasync def count(db):\n"
            "    conn = sqlite3.connect(db)\n"
            '    return conn.execute("select count(*) from t").fetchone()\n'
        ),
        fixed=(
            "import aiosqlite\n\n\nasync def count(db):\n"
            "    async with aiosqlite.connect(db) as conn:\n"
            '        cursor = await conn.execute("select count(*) from t")\n'
            "        return await cursor.fetchone()\n"
        ),
        calls=(
            "sqlite3.connect",
            *_methods("sqlite3.Connection", ("execute", "executemany", "commit", "cursor")),
            *_methods("sqlite3.Cursor", ("execute", "executemany", "fetchone", "fetchall")),
            "psycopg2.connect",
            "psycopg.connect",
            "psycopg.Connection.connect",
            "pymysql.connect",
            "MySQLdb.connect",
            "mysql.connector.connect",
            *_methods("redis.Redis", _REDIS_COMMANDS),
            *_methods("redis.StrictRedis", _REDIS_COMMANDS),
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH108",
        name="blocking-thread-sync",
        summary="A blocking thread-synchronisation wait runs in (or is reachable from) async code.",
        message=(
            "Blocking wait {call}() in async code; use `asyncio.Lock`/`asyncio.Event`/"
            "`asyncio.Queue`, or `await asyncio.to_thread(...)`"
        ),
        why=(
            "A `threading.Lock` held by another thread (or by a coroutine suspended while "
            "holding it) makes `acquire()` block the loop; it can deadlock the worker outright. "
            "A short critical section shared with worker threads may be an accepted cost: "
            "silence it with `# noqa: ASH108` on the line once you have checked."
        ),
        example=(
            "import threading\n\nLOCK = threading.Lock()\n\n\nasync def bump(counter):\n"
            "    LOCK.acquire()\n    counter.value += 1\n    LOCK.release()\n"
        ),
        fixed=(
            "import asyncio\n\nLOCK = asyncio.Lock()\n\n\nasync def bump(counter):\n"
            "    async with LOCK:\n        counter.value += 1\n"
        ),
        severity=Severity.WARNING,
        calls=(
            "threading.Lock.acquire",
            "threading.RLock.acquire",
            "threading.Semaphore.acquire",
            "threading.BoundedSemaphore.acquire",
            "threading.Event.wait",
            "threading.Condition.wait",
            "threading.Barrier.wait",
            "threading.Thread.join",
            "queue.Queue.get",
            "queue.Queue.put",
            "queue.Queue.join",
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH109",
        name="blocking-input",
        summary="`input()` runs in (or is reachable from) async code.",
        message="Blocking call {call}() waits on stdin in async code; read input before the loop",
        why=(
            "`input()` blocks until a line arrives on standard input; a server process "
            "usually has none, so the event loop hangs forever."
        ),
        example='async def confirm():\n    return input("continue? ") == "y"\n',
        fixed=(
            "import asyncio\n\n\nasync def confirm():\n"
            '    return await asyncio.to_thread(input, "continue? ") == "y"\n'
        ),
        calls=("builtins.input",),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH199",
        name="user-declared-blocking",
        summary="A callable listed in `extra_blocking` runs in (or is reachable from) async code.",
        message=(
            "{call}() is declared blocking in [tool.asgishift.audit] extra_blocking; await an "
            "async alternative or wrap it in `await asyncio.to_thread(...)`"
        ),
        why=(
            "Your configuration lists this callable as blocking (a project or third-party "
            "helper the built-in rules cannot see into); calling it from async code stalls "
            "the event loop."
        ),
        example=("import legacy\n\n\nasync def view(request):\n    return legacy.slow_lookup()\n"),
        fixed=(
            "import asyncio\n\nimport legacy\n\n\nasync def view(request):\n"
            "    return await asyncio.to_thread(legacy.slow_lookup)\n"
        ),
        calls=(),
        fix=FixKind.UNSAFE,
    ),
    # ------------------------------------------------------------------ ASH2xx
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
            "`acreate`...) or `sync_to_async` runs them safely."
        ),
        example=(
            "from shop.models import Book\n\n\nasync def detail(request, pk):\n"
            "    return Book.objects.get(pk=pk)\n"
        ),
        fixed=(
            "from shop.models import Book\n\n\nasync def detail(request, pk):\n"
            "    return await Book.objects.aget(pk=pk)\n"
        ),
        calls=(),
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
            "the same function and ForeignKey fields declared in the project's models."
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
    # ------------------------------------------------------------------ ASH3xx
    Rule(
        code="ASH301",
        name="async-to-sync-in-async",
        summary="`async_to_sync` is called from (or reachable from) async code.",
        message=(
            "{call}() called from async code raises RuntimeError; await the coroutine "
            "function directly"
        ),
        why=(
            "`async_to_sync` needs a thread without a running event loop; called from async "
            "code it raises `RuntimeError: You cannot use AsyncToSync in the same thread as "
            "an async event loop`."
        ),
        example=(
            "from asgiref.sync import async_to_sync\n\n\nasync def fetch():\n    return 1\n\n\n"
            "async def view(request):\n    return async_to_sync(fetch)()\n"
        ),
        fixed=(
            "async def fetch():\n    return 1\n\n\n"
            "async def view(request):\n    return await fetch()\n"
        ),
        calls=("asgiref.sync.async_to_sync", "asgiref.sync.AsyncToSync"),
    ),
    Rule(
        code="ASH302",
        name="nested-event-loop",
        summary="A new event loop is started from (or reachable from) async code.",
        message=(
            "{call}() starts an event loop inside a running one; `await` the coroutine instead"
        ),
        why=(
            "`asyncio.run()` and `loop.run_until_complete()` raise `RuntimeError` when a loop "
            "is already running in the thread, and a fresh loop would block the outer one."
        ),
        example=(
            "import asyncio\n\n\nasync def work():\n    return 1\n\n\n"
            "async def view(request):\n    return asyncio.run(work())\n"
        ),
        fixed=(
            "async def work():\n    return 1\n\n\n"
            "async def view(request):\n    return await work()\n"
        ),
        calls=(
            "asyncio.run",
            "asyncio.new_event_loop",
            "asyncio.get_event_loop.run_until_complete",
            "asyncio.new_event_loop.run_until_complete",
            "asyncio.AbstractEventLoop.run_until_complete",
            "asyncio.Runner.run",
        ),
    ),
    Rule(
        code="ASH303",
        name="thread-local-in-async",
        summary="Async code reads `threading.local` state.",
        message=(
            "{call} is threading.local state read from async code; concurrent requests share "
            "the loop thread, use `contextvars.ContextVar` or `asgiref.local.Local`"
        ),
        why=(
            "Every coroutine on the event loop runs in the same thread, so a "
            "`threading.local` value set for one request is seen (and overwritten) by all "
            "the others."
        ),
        example=(
            "import threading\n\n_state = threading.local()\n\n\nasync def who():\n"
            "    return _state.user\n"
        ),
        fixed=(
            'import contextvars\n\n_user = contextvars.ContextVar("user")\n\n\n'
            "async def who():\n    return _user.get()\n"
        ),
        severity=Severity.WARNING,
        calls=(),
    ),
    Rule(
        code="ASH304",
        name="request-global-in-thread",
        summary="A Flask request global is used from a function run in another thread.",
        message=(
            "{call} is used in {function}, which runs in another thread without the request "
            "context; decorate it with `flask.copy_current_request_context` or pass the values in"
        ),
        why=(
            "`flask.request`, `flask.g` and `flask.session` are bound to the request context "
            "of the current thread (or task); a function started with `threading.Thread` or "
            "an executor raises `RuntimeError: Working outside of request context`."
        ),
        example=(
            "import threading\n\nfrom flask import request\n\n\ndef audit_log():\n"
            "    print(request.path)\n\n\ndef view():\n"
            "    threading.Thread(target=audit_log).start()\n"
        ),
        fixed=(
            "import threading\n\nfrom flask import copy_current_request_context, request\n\n\n"
            "def view():\n    @copy_current_request_context\n    def audit_log():\n"
            "        print(request.path)\n\n    threading.Thread(target=audit_log).start()\n"
        ),
        severity=Severity.ERROR,
        calls=(),
    ),
    Rule(
        code="ASH305",
        name="sync-only-middleware",
        summary="A Django middleware declares no async support.",
        message=(
            "Middleware {call} is sync-only, so Django runs it in a thread for every "
            "request under ASGI; subclass MiddlewareMixin or set `async_capable = True` "
            "and handle coroutines"
        ),
        why=(
            "Under ASGI Django adapts every sync-only middleware with `sync_to_async`, "
            "costing a thread switch per request and per middleware, and forcing the whole "
            "chain below it to be synchronous."
        ),
        example=(
            "class TimingMiddleware:\n    def __init__(self, get_response):\n"
            "        self.get_response = get_response\n\n    def __call__(self, request):\n"
            "        return self.get_response(request)\n"
        ),
        fixed=(
            "from asgiref.sync import iscoroutinefunction, markcoroutinefunction\n\n\n"
            "class TimingMiddleware:\n    async_capable = True\n    sync_capable = False\n\n"
            "    def __init__(self, get_response):\n        self.get_response = get_response\n"
            "        markcoroutinefunction(self)\n\n"
            "    async def __call__(self, request):\n"
            "        return await self.get_response(request)\n"
        ),
        severity=Severity.WARNING,
        calls=(),
    ),
    # ------------------------------------------------------------------ ASH4xx
    Rule(
        code="ASH401",
        name="thread-insensitive-orm-wrapper",
        summary="`sync_to_async(thread_sensitive=False)` wraps code that uses the Django ORM.",
        message=(
            "{call} runs ORM code with thread_sensitive=False, outside the connection's "
            "thread; drop `thread_sensitive=False`"
        ),
        why=(
            "Django database connections are per thread; with `thread_sensitive=False` the "
            "ORM code runs in an arbitrary pool thread, opening extra connections and "
            "breaking transactions started in the request thread."
        ),
        example=(
            "from asgiref.sync import sync_to_async\nfrom shop.models import Book\n\n\n"
            "def _count():\n    return Book.objects.count()\n\n\n"
            "async def view(request):\n"
            "    return await sync_to_async(_count, thread_sensitive=False)()\n"
        ),
        fixed=(
            "from asgiref.sync import sync_to_async\nfrom shop.models import Book\n\n\n"
            "def _count():\n    return Book.objects.count()\n\n\n"
            "async def view(request):\n    return await sync_to_async(_count)()\n"
        ),
        calls=(),
    ),
    Rule(
        code="ASH402",
        name="coroutine-never-awaited",
        summary="A coroutine function is called and its coroutine discarded.",
        message=(
            "Coroutine {call}() is created but never awaited, so it never runs; `await` it "
            "or schedule it with `asyncio.create_task()`"
        ),
        why=(
            "Calling an `async def` only builds a coroutine object; unless it is awaited or "
            "scheduled, its body never runs and Python warns `coroutine ... was never awaited`."
        ),
        example=(
            "async def notify(user):\n    return user\n\n\n"
            "async def view(user):\n    notify(user)\n"
        ),
        fixed=(
            "async def notify(user):\n    return user\n\n\n"
            "async def view(user):\n    await notify(user)\n"
        ),
        calls=(),
    ),
)

_CODE_RE = re.compile(r"ASH\d{3}\Z")


@cache
def _by_code() -> dict[str, Rule]:
    """Index the catalogue by code, checking codes are unique and well formed."""
    index: dict[str, Rule] = {}
    for rule in _RULES:
        if not _CODE_RE.match(rule.code):
            raise ValueError(f"rule code {rule.code!r} does not match ASH + 3 digits")
        if rule.code in index:
            raise ValueError(f"rule code {rule.code} is declared twice in asgishift.audit.rules")
        index[rule.code] = rule
    return index


def all_rules() -> tuple[Rule, ...]:
    """Return every rule of the catalogue, sorted by code.

    :return: a tuple of :class:`Rule`, ``ASH101`` first.
    """
    return tuple(sorted(_by_code().values(), key=lambda rule: rule.code))


def get_rule(code: str) -> Rule:
    """Return the rule with this code.

    :param code: a rule code such as ``"ASH101"`` (case-insensitive).
    :return: the :class:`Rule`.
    :raise KeyError: the code is unknown; the message lists the known codes.
    """
    rule = _by_code().get(code.upper())
    if rule is None:
        known = ", ".join(sorted(_by_code()))
        raise KeyError(f"unknown rule code {code!r}; known codes: {known}")
    return rule


def calls_index() -> dict[str, str]:
    """Map each canonical dotted callable name to the code of the rule matching it.

    Computed on every call (rules' ``calls`` may be patched at run time by the
    runtime detector); cheap, the catalogue has a few hundred names.

    :return: ``{"time.sleep": "ASH101", ...}``.
    """
    index: dict[str, str] = {}
    for rule in all_rules():
        for name in rule.calls:
            index.setdefault(name, rule.code)
    return index


__all__ = ["all_rules", "calls_index", "get_rule"]
