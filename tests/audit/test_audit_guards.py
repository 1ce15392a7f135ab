"""Context-sensitive pruning: hazards behind optional parameters and no-loop handlers.

Each case is one module: a sync helper with a hazard, and an ``async def``
calling it. The expected lines are the hazard lines reported (``[]``: the
chain is pruned). True positives must stay; the false positives of real
projects (Datasette's ``plugins_dir``, ``sqlite_extensions`` and
``new_event_loop`` fallback) must go.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths

HEAD = "import asyncio\nimport glob\nimport os\nimport time\n\n\n"

# (id, source after HEAD, reported hazard lines counted from 1 in the source after HEAD)
# The class the replaced-method cases share: clear() builds a store, may replace
# one of its methods, then calls load(), which calls self.create().
_STORE = (
    "class Store:\n"
    "    def load(self):\n"
    "        self.create()\n\n"
    "    def create(self):\n"
    "        time.sleep(1)\n\n"
    "    @classmethod\n"
    "    def clear(cls):\n"
    "        store = cls()\n"
)

CASES: list[tuple[str, str, list[int]]] = [
    (
        "if-param-not-passed",
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "if-param-passed-by-keyword",
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load(plugins_dir='p')\n",
        [3],
    ),
    (
        "if-param-passed-by-position",
        "def load(files=None, plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load([], 'p')\n",
        [3],
    ),
    (
        "if-param-passed-positionally-short",
        "def load(files=None, plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load([])\n",
        [],
    ),
    (
        "param-passed-as-literal-none",
        "def load(plugins_dir=None):\n"
        "    if plugins_dir is not None:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load(plugins_dir=None)\n",
        [],
    ),
    (
        "star-kwargs-may-pass-it",
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view(**kw):\n    load(**kw)\n",
        [3],
    ),
    (
        "unguarded-hazard-stays",
        "def load(plugins_dir=None):\n"
        "    time.sleep(1)\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [2],
    ),
    (
        "else-branch-is-not-guarded",
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        pass\n"
        "    else:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load()\n",
        [5],
    ),
    (
        "truthy-default-is-no-guard",
        "def load(plugins_dir='plugins'):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [3],
    ),
    (
        "is-not-none-with-false-default-is-no-guard",
        "def load(flag=False):\n"
        "    if flag is not None:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load()\n",
        [3],
    ),
    (
        "empty-tuple-default-loop",
        "def load(paths=()):\n"
        "    for p in paths:\n"
        "        os.path.exists(p)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "keyword-only-falsy-default",
        "def load(*, verbose=False):\n"
        "    if verbose:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "keyword-only-passed",
        "def load(*, verbose=False):\n"
        "    if verbose:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load(verbose=True)\n",
        [3],
    ),
    (
        "for-over-param-or-empty",
        "def load(extensions=None):\n"
        "    for ext in extensions or []:\n"
        "        os.path.exists(ext)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "in-param-or-empty",
        "def load(extensions=None):\n"
        "    if 'x' in (extensions or []):\n"
        "        os.path.exists('x')\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "and-of-guards",
        "def load(a=None, b=None):\n"
        "    if a and b:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load(a=1)\n",
        [],
    ),
    (
        "or-of-guards-one-passed",
        "def load(a=None, b=None):\n"
        "    if a or b:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load(b=1)\n",
        [3],
    ),
    (
        "or-with-unknown-operand-is-no-guard",
        "def load(a=None):\n"
        "    if a or os.environ:\n"
        "        time.sleep(1)\n"
        "\n\nasync def view():\n    load()\n",
        [3],
    ),
    (
        "early-return-guards-the-rest",
        "def load(plugins_dir=None):\n"
        "    if not plugins_dir:\n"
        "        return\n"
        "    glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "self-alias-in-init",
        "class App:\n"
        "    def __init__(self, files=None, plugins_dir=None):\n"
        "        self.plugins_dir = plugins_dir\n"
        "        if self.plugins_dir:\n"
        "            glob.glob(self.plugins_dir)\n"
        "\n\nasync def view():\n    App(['a'])\n",
        [],
    ),
    (
        "self-alias-passed-positionally",
        "class App:\n"
        "    def __init__(self, files=None, plugins_dir=None):\n"
        "        self.plugins_dir = plugins_dir\n"
        "        if self.plugins_dir:\n"
        "            glob.glob(self.plugins_dir)\n"
        "\n\nasync def view():\n    App(['a'], 'p')\n",
        [5],
    ),
    (
        "rebound-under-another-guard-widens",
        "def load(plugins_dir=None, config_dir=None):\n"
        "    if config_dir:\n"
        "        plugins_dir = config_dir + '/plugins'\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load(config_dir='c')\n",
        [5],
    ),
    (
        "rebound-under-another-guard-neither-passed",
        "def load(plugins_dir=None, config_dir=None):\n"
        "    if config_dir:\n"
        "        plugins_dir = config_dir + '/plugins'\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "rebound-unconditionally-is-no-guard",
        "def load(plugins_dir=None):\n"
        "    plugins_dir = plugins_dir or 'plugins'\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [4],
    ),
    (
        "rebound-later-in-a-loop-is-no-guard",
        "def load(paths, plugins_dir=None):\n"
        "    for p in paths:\n"
        "        if plugins_dir:\n"
        "            glob.glob(plugins_dir)\n"
        "        plugins_dir = p\n"
        "\n\nasync def view():\n    load(['a'])\n",
        [4],
    ),
    (
        "nonlocal-rebind-is-no-guard",
        "def load(plugins_dir=None):\n"
        "    def set_it():\n"
        "        nonlocal plugins_dir\n"
        "        plugins_dir = 'p'\n"
        "    set_it()\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [7],
    ),
    (
        "decorated-function-gets-no-guards",
        "import functools\n\n\n"
        "@functools.lru_cache\n"
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [7],
    ),
    (
        "guarded-call-edge-is-not-followed",
        "def scan(path):\n"
        "    return glob.glob(path)\n\n\n"
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        scan(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n",
        [],
    ),
    (
        "guarded-call-edge-passed",
        "def scan(path):\n"
        "    return glob.glob(path)\n\n\n"
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        scan(plugins_dir)\n"
        "\n\nasync def view():\n    load('p')\n",
        [2],
    ),
    (
        "one-level-each-hop-judged-by-its-own-call-site",
        "def scan(path, deep=False):\n"
        "    if deep:\n"
        "        glob.glob(path)\n\n\n"
        "def load(plugins_dir=None):\n"
        "    scan(plugins_dir, deep=True)\n"
        "\n\nasync def view():\n    load()\n",
        [3],
    ),
    (
        "two-call-sites-one-passes",
        "def load(plugins_dir=None):\n"
        "    if plugins_dir:\n"
        "        glob.glob(plugins_dir)\n"
        "\n\nasync def view():\n    load()\n\n\nasync def other():\n    load('p')\n",
        [3],
    ),
    (
        "guard-in-the-async-function-itself-is-kept",
        "async def view(plugins_dir=None):\n    if plugins_dir:\n        glob.glob(plugins_dir)\n",
        [3],
    ),
    (
        "no-loop-fallback-is-not-reached",
        "def make():\n"
        "    try:\n"
        "        loop = asyncio.get_event_loop()\n"
        "    except RuntimeError:\n"
        "        loop = asyncio.new_event_loop()\n"
        "    return loop\n"
        "\n\nasync def view():\n    make()\n",
        [],
    ),
    (
        "no-loop-fallback-after-lock",
        "class App:\n"
        "    def __init__(self):\n"
        "        try:\n"
        "            self.lock = asyncio.Lock()\n"
        "        except RuntimeError:\n"
        "            loop = asyncio.new_event_loop()\n"
        "            asyncio.set_event_loop(loop)\n"
        "\n\nasync def view():\n    App()\n",
        [],
    ),
    (
        "handler-of-a-try-that-does-more-is-reached",
        "def make(coro):\n"
        "    try:\n"
        "        asyncio.run(coro)\n"
        "    except RuntimeError:\n"
        "        loop = asyncio.new_event_loop()\n"
        "\n\nasync def view(coro):\n    make(coro)\n",
        [3, 5],
    ),
    (
        "other-exception-handler-is-reached",
        "def make():\n"
        "    try:\n"
        "        loop = asyncio.get_event_loop()\n"
        "    except ValueError:\n"
        "        loop = asyncio.new_event_loop()\n"
        "    return loop\n"
        "\n\nasync def view():\n    make()\n",
        [5],
    ),
    (
        "method-replaced-on-the-receiver-is-not-reached",
        _STORE + "        store.create = lambda: None\n"
        "        store.load()\n"
        "\n\nasync def view():\n    Store.clear()\n",
        [],
    ),
    (
        "method-not-replaced-is-reached",
        _STORE + "        store.other = lambda: None\n"
        "        store.load()\n"
        "\n\nasync def view():\n    Store.clear()\n",
        [6],
    ),
    (
        "replaced-then-rebound-is-reached",
        _STORE + "        store.create = lambda: None\n"
        "        store = cls()\n"
        "        store.load()\n"
        "\n\nasync def view():\n    Store.clear()\n",
        [6],
    ),
    (
        "replaced-method-still-reached-from-another-caller",
        _STORE + "        store.create = lambda: None\n"
        "        store.load()\n"
        "\n\nasync def view():\n    Store.clear()\n    Store().load()\n",
        [6],
    ),
]


@pytest.mark.parametrize(("source", "lines"), [pytest.param(s, n, id=i) for i, s, n in CASES])
def test_guarded_hazards(tmp_path: Path, source: str, lines: list[int]) -> None:
    (tmp_path / "app.py").write_text(HEAD + source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    offset = HEAD.count("\n")
    assert sorted({f.line - offset for f in result.findings}) == lines


# (id, source, reported lines): in-memory SQLite databases do no I/O.
MEMORY_CASES: list[tuple[str, str, list[int]]] = [
    (
        "memory-connect-and-query",
        "import sqlite3\n\n\nasync def view():\n"
        "    conn = sqlite3.connect(':memory:')\n"
        "    conn.execute('select 1')\n"
        "    sqlite3.connect(':memory:').execute('select 1').fetchone()\n",
        [],
    ),
    (
        "memory-uri",
        "import sqlite3\n\n\nasync def view():\n"
        "    sqlite3.connect('file:db?mode=memory&cache=shared', uri=True).execute('select 1')\n",
        [],
    ),
    (
        "memory-through-a-module-re-exporting-sqlite3",
        "from db import sqlite3\n\n\nasync def view():\n"
        "    sqlite3.connect(':memory:', uri=True).execute('select 1')\n"
        "    sqlite3.connect('data.db').execute('select 1')\n",
        [6],
    ),
    (
        "file-database-blocks",
        "import sqlite3\n\n\nasync def view(path):\n"
        "    conn = sqlite3.connect(path)\n"
        "    conn.execute('select 1')\n"
        "    sqlite3.connect('data.db').execute('select 1')\n",
        [5, 6, 7],
    ),
    (
        "memory-uri-template-in-a-variable",
        "import sqlite3\n\n\nasync def view(name):\n"
        "    uri = 'file:{}?mode=memory&cache=shared'.format(name)\n"
        "    conn = sqlite3.connect(uri, uri=True)\n"
        "    conn.execute('select 1')\n"
        "    sqlite3.connect(f'file:{name}?mode=memory', uri=True)\n",
        [],
    ),
    (
        "file-uri-template-may-be-a-file",
        "import sqlite3\n\n\nasync def view(name, qs):\n"
        "    uri = 'file:{}{}'.format(name, qs)\n"
        "    sqlite3.connect(uri, uri=True)\n"
        "    sqlite3.connect(f'file:{name}{qs}', uri=True)\n"
        "    sqlite3.connect(name + '?mode=memory', uri=True)\n",
        [6, 7, 8],
    ),
    (
        "variable-rebound-to-a-file-name",
        "import sqlite3\n\n\nasync def view(name, path):\n"
        "    uri = 'file:{}?mode=memory'.format(name)\n"
        "    uri = path\n"
        "    sqlite3.connect(uri)\n",
        [7],
    ),
]


@pytest.mark.parametrize(
    ("source", "lines"), [pytest.param(s, n, id=i) for i, s, n in MEMORY_CASES]
)
def test_in_memory_databases(tmp_path: Path, source: str, lines: list[int]) -> None:
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    (tmp_path / "db.py").write_text("import sqlite3\n", encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    assert sorted({f.line for f in result.findings}) == lines


def test_the_cache_key_covers_every_module_the_extractor_imports() -> None:
    """A summary field added in a new module must invalidate cached summaries."""
    import ast
    import importlib

    from asgishift.audit._summary import EXTRACTOR_MODULES

    imported: set[str] = set()
    for name in EXTRACTOR_MODULES:
        source = importlib.import_module(name).__file__
        assert source is not None
        tree = ast.parse(Path(source).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    # Data classes and type-only imports that decide nothing a summary holds.
    not_extractor = {
        "asgishift.audit._config",  # rules name its keys in their messages
        "asgishift.audit._model",
        "asgishift.audit._discover",
        "asgishift.audit._link",
    }
    wanted = {name for name in imported if name.startswith("asgishift.audit.")} - not_extractor
    assert "asgishift.audit._guards" in wanted
    assert sorted(wanted - set(EXTRACTOR_MODULES)) == []
