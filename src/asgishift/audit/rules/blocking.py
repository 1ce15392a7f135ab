"""Rule family ``ASH1xx``: blocking calls in (or reachable from) async code.

Each rule lists the canonical dotted names of the callables it matches
(:attr:`~asgishift.audit._model.Rule.calls`); the linker matches resolved call
names against them, and the runtime detector patches the importable ones. The
family needs no walker hooks: the walk records every call site anyway.
``ASH199`` matches the callables a project declares in ``extra-blocking``.

Two hooks: ``with lock:`` (a thread lock held for a block) is an ``ASH108``
hazard only when the block waits; :mod:`asgishift.audit.rules.held_locks`
decides that with the whole project in view. A connection to a mail backend
named by a literal that sends nothing (``locmem``, ``dummy``, ``console``) is
no ``ASH110`` sender (:mod:`asgishift.audit.rules.mail_backends`).
"""

from __future__ import annotations

from asgishift.audit._config import TABLE, config_key
from asgishift.audit._model import FixKind, Rule, Severity
from asgishift.audit._scope import Hooks
from asgishift.audit.rules._family import Family
from asgishift.audit.rules._family import methods as _methods
from asgishift.audit.rules.held_locks import LOCK_COND, lock_waits, on_block
from asgishift.audit.rules.mail_backends import on_bind

_HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request")


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

_SQLALCHEMY_SESSION = (
    "execute",
    "scalars",
    "scalar",
    "get",
    "commit",
    "flush",
    "refresh",
    "merge",
    "rollback",
    "connection",
)
#: The legacy ``session.query(...)`` API: the methods that run the query.
_SQLALCHEMY_QUERY = (
    "all",
    "first",
    "one",
    "one_or_none",
    "scalar",
    "count",
    "get",
    "delete",
    "update",
)
_SQLALCHEMY_CONNECTION = ("execute", "scalars", "scalar", "commit", "rollback", "exec_driver_sql")

#: Django's mail functions (``django.core.mail``): each sends through the backend.
_DJANGO_MAIL_FUNCTIONS = ("send_mail", "send_mass_mail", "mail_admins", "mail_managers")
#: ``smtplib.SMTP`` methods that wait for the server.
_SMTP_METHODS = ("connect", "login", "starttls", "sendmail", "send_message")

#: The pyproject.toml key that lists the callables ``ASH199`` reports.
_EXTRA_BLOCKING = config_key("extra_blocking")

RULES: tuple[Rule, ...] = (
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
            "tempfile.mkdtemp",
            "tempfile.NamedTemporaryFile",
            "tempfile.TemporaryFile",
            "glob.glob",
            "glob.iglob",
            "shutil.copyfileobj",
            *_methods("io.BufferedReader", ("read", "readline", "readlines", "peek")),
            *_methods("io.BufferedWriter", ("write", "writelines", "flush", "truncate")),
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
            "DB-API drivers, SQLAlchemy's sync `Session`/`Engine`/`Connection` (also "
            "`session.query(...).all()`, a `scoped_session`, Flask-SQLAlchemy's "
            "`db.session` and SQLModel's `Session.exec()`) and the sync redis client wait "
            "for the server while holding the event-loop thread, so one slow query delays "
            "every request in the worker. An "
            'in-memory SQLite database (`sqlite3.connect(":memory:")`, or a `file:` URI '
            "whose fixed text has `mode=memory`, even when built with `.format()` or an "
            "f-string) waits for no disk and is not reported."
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
            *_methods("sqlalchemy.orm.Session", _SQLALCHEMY_SESSION),
            *_methods("sqlalchemy.orm.Query", _SQLALCHEMY_QUERY),
            *_methods("sqlalchemy.engine.Engine", ("connect", "begin", "raw_connection")),
            *_methods("sqlalchemy.engine.Connection", _SQLALCHEMY_CONNECTION),
            # SQLModel's Session is SQLAlchemy's plus exec() (see SUBCLASS_METHODS).
            "sqlmodel.Session.exec",
            "sqlmodel.orm.session.Session.exec",
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
            "A `with lock:` block is reported only when the block itself waits: it makes "
            "a blocking call, directly or through the sync functions it calls (a lock held "
            "for in-memory bookkeeping is released before the loop could notice). An "
            "explicit `acquire()` is always reported. `put()` on a queue made without a "
            "bound (`queue.Queue()`, checked as a `queue.SimpleQueue`) never waits and is "
            "not reported; `get()` is. A short critical section shared with worker threads "
            "may be an accepted cost: silence it with `# noqa: ASH108` on the line once you "
            "have checked."
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
            "queue.SimpleQueue.get",
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
        code="ASH110",
        name="blocking-email",
        summary="An email is sent synchronously in (or reachable from) async code.",
        message=(
            "Blocking mail call {call}() waits on the mail server in async code; send it "
            "with `await sync_to_async(...)` / `asyncio.to_thread(...)` or from a task queue"
        ),
        why=(
            "Django's `send_mail`, `send_mass_mail`, `mail_admins`, `mail_managers`, "
            "`EmailMessage.send()` (and `EmailMultiAlternatives`), a backend's "
            "`send_messages()` and `smtplib` connect to the SMTP server and wait for each "
            "reply while holding the event-loop thread: a slow or unreachable mail server "
            "stalls every request in the worker for up to the connection timeout. The "
            "audit cannot read `EMAIL_BACKEND`: only a `get_connection()` naming the "
            "`locmem`, `dummy` or `console` backend by a literal is left alone. Django's "
            "test runner (and pytest-django) swap in `locmem` for every test: leave the "
            'tests out (`exclude = ["tests/**"]`) when only they reach a mail call; '
            "`per-file-ignores` hides only the calls written in the test files, not those "
            "in the helpers they call."
        ),
        example=(
            "from django.core.mail import send_mail\n\n\nasync def contact(request):\n"
            '    send_mail("Hi", "Thanks!", "shop@example.com", ["you@example.com"])\n'
        ),
        fixed=(
            "from asgiref.sync import sync_to_async\nfrom django.core.mail import send_mail\n\n\n"
            "async def contact(request):\n"
            '    await sync_to_async(send_mail)("Hi", "Thanks!", "shop@example.com", '
            '["you@example.com"])\n'
        ),
        calls=(
            *_methods("django.core.mail", _DJANGO_MAIL_FUNCTIONS),
            *_methods("django.core.mail.EmailMessage", ("send",)),
            *_methods("django.core.mail.EmailMultiAlternatives", ("send",)),
            *_methods("django.core.mail.message.EmailMessage", ("send",)),
            *_methods("django.core.mail.message.EmailMultiAlternatives", ("send",)),
            # get_connection() returns the configured backend: the tables type it
            # as the base class; the SMTP backend is the one patched at run time.
            *_methods("django.core.mail.backends.base.BaseEmailBackend", ("send_messages",)),
            *_methods("django.core.mail.backends.smtp.EmailBackend", ("open", "send_messages")),
            *_methods("smtplib.SMTP", _SMTP_METHODS),
            *_methods("smtplib.SMTP_SSL", _SMTP_METHODS),
        ),
        fix=FixKind.UNSAFE,
    ),
    Rule(
        code="ASH199",
        name="user-declared-blocking",
        summary=(
            f"A callable listed in `{_EXTRA_BLOCKING}` runs in (or is reachable from) async code."
        ),
        message=(
            "{call}() is declared blocking in "
            f"{TABLE} {_EXTRA_BLOCKING}; await an async alternative or wrap it in "
            "`await asyncio.to_thread(...)`"
        ),
        why=(
            "Your configuration lists this callable as blocking (a project or third-party "
            "helper the built-in rules cannot see into); calling it from async code stalls "
            "the event loop."
        ),
        example=(
            '# pyproject.toml: [tool.asgishift.audit] extra-blocking = ["legacy.slow_lookup"]\n'
            "import legacy\n\n\nasync def view(request):\n    return legacy.slow_lookup()\n"
        ),
        fixed=(
            '# pyproject.toml: [tool.asgishift.audit] extra-blocking = ["legacy.slow_lookup"]\n'
            "import asyncio\n\nimport legacy\n\n\nasync def view(request):\n"
            "    return await asyncio.to_thread(legacy.slow_lookup)\n"
        ),
        calls=(),
        fix=FixKind.UNSAFE,
    ),
)

FAMILY = Family(
    rules=RULES,
    hooks=Hooks(block=(on_block,), bind=(on_bind,)),
    conditions={LOCK_COND: lock_waits},
)

__all__ = ["FAMILY", "RULES"]
