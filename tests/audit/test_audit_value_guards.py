"""Value guards: hazards that run only for an element equal to a string literal.

Each case is one module: a sync helper whose hazard runs only for an element
of an optional parameter equal to a string literal, and an ``async def``
calling it. The expected lines are the hazard lines reported (``[]``: the
chain is pruned). True positives must stay; the false positives of real
projects (Datasette's ``find_spatialite()`` for a ``"spatialite"`` entry of
``sqlite_extensions``, reached from tests passing compiled-extension paths held
in a module constant) must go.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig
from asgishift.audit._values import ModuleConstants, may_equal
from asgishift.audit.engine import audit_paths

HEAD = "import glob\nimport os\nfrom pathlib import Path\n\n\n"

# The helper most cases share: the hazard (line 4) runs for a "spatialite" entry.
_LOAD = (
    "def load(exts=None):\n"
    "    for ext in exts or []:\n"
    "        if ext == 'spatialite':\n"
    "            glob.glob(ext)\n"
    "\n\nasync def view(name, names):\n"
)
_PATH_CONSTANT = "\n\nEXT = str(Path(__file__).parent / 'ext')\n"

# (id, source after HEAD, reported hazard lines counted from 1 in the source after HEAD)
CASES: list[tuple[str, str, list[int]]] = [
    # ---- false positives that go
    ("list-of-other-literals", _LOAD + "    load(exts=['a.so', 'b.so'])\n", []),
    ("passed-by-position", _LOAD + "    load(['a.so'])\n", []),
    ("empty-list", _LOAD + "    load(exts=[])\n", []),
    ("tuple-and-set-literals", _LOAD + "    load(('a.so',))\n    load({'a.so'})\n", []),
    ("constant-built-from-a-path", _LOAD + "    load(exts=[EXT])\n" + _PATH_CONSTANT, []),
    (
        "tuple-elements-are-never-strings",
        _LOAD + "    load(exts=[EXT, (EXT, 'spatialite'), 1, None])\n" + _PATH_CONSTANT,
        [],
    ),
    (
        "constant-string-literal",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = 'mod.so'\n",
        [],
    ),
    (
        "f-string-with-another-tail",
        _LOAD + "    load(exts=[f'{name}/ext.so', EXT])\n\n\nEXT = f'{Path.home()}.so'\n",
        [],
    ),
    (
        "membership-test-on-the-parameter",
        "def load(exts=None):\n"
        "    if 'spatialite' in (exts or []):\n"
        "        glob.glob('x')\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [],
    ),
    (
        "element-in-a-tuple-of-literals",
        "def load(exts=None):\n"
        "    for ext in exts or []:\n"
        "        if ext in ('spatialite', 'mod_spatialite'):\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [],
    ),
    (
        "either-literal",
        "def load(exts=None):\n"
        "    for ext in exts or []:\n"
        "        if ext == 'a' or ext == 'spatialite':\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['b'])\n",
        [],
    ),
    (
        "elif-branch",
        "def load(exts=None):\n"
        "    for ext in exts or []:\n"
        "        if ext == 'a':\n"
        "            pass\n"
        "        elif ext == 'spatialite':\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['a'])\n",
        [],
    ),
    (
        "guarded-by-a-truth-test-too",
        "def load(exts=None):\n"
        "    if exts is not None and exts:\n"
        "        for ext in exts:\n"
        "            if ext == 'spatialite':\n"
        "                glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [],
    ),
    # ---- true positives that stay
    ("literal-matches", _LOAD + "    load(exts=['a.so', 'spatialite'])\n", [4]),
    ("literal-matches-by-position", _LOAD + "    load(['spatialite'])\n", [4]),
    ("unknown-element", _LOAD + "    load(exts=['a.so', name])\n", [4]),
    ("a-variable-list", _LOAD + "    load(exts=names)\n", [4]),
    ("starred-element", _LOAD + "    load(exts=['a.so', *names])\n", [4]),
    ("kwargs-may-pass-it", _LOAD + "    load(**names)\n", [4]),
    ("f-string-may-match", _LOAD + "    load(exts=[f'{name}lite', f'spatia{name}'])\n", [4]),
    (
        "path-constant-with-the-literal-as-last-part",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = str(Path(__file__).parent / 'spatialite')\n",
        [4],
    ),
    (
        "path-part-with-a-separator",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = str(Path(__file__).parent / 'a/ext')\n",
        [4],
    ),
    (
        "constant-bound-twice",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = 'mod.so'\nEXT = 'spatialite'\n",
        [4],
    ),
    (
        "constant-rebound-by-a-function",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = 'mod.so'\n\n\n"
        "def reset():\n    global EXT\n    EXT = 'spatialite'\n",
        [4],
    ),
    (
        "constant-shadowed-by-a-parameter",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = 'mod.so'\n\n\n"
        "async def other(EXT):\n    load(exts=[EXT])\n",
        [4],
    ),
    (
        "constant-in-a-module-with-a-star-import",
        "from settings import *\n\n\n" + _LOAD + "    load(exts=[EXT])\n\n\nEXT = 'mod.so'\n",
        [7],
    ),
    (
        "constant-from-an-unknown-call",
        _LOAD + "    load(exts=[EXT])\n\n\nEXT = os.environ.get('EXT', 'spatialite')\n",
        [4],
    ),
    (
        "loop-variable-rebound-before-the-test",
        "def load(exts=None):\n"
        "    for ext in exts or []:\n"
        "        ext = ext.lower()\n"
        "        if ext == 'spatialite':\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['SpatiaLite'])\n",
        [5],
    ),
    (
        "loop-variable-tested-after-the-loop",
        "def load(exts=None, ext='spatialite'):\n"
        "    for ext in exts or []:\n"
        "        pass\n"
        "    if ext == 'spatialite':\n"
        "        glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=[])\n",
        [5],
    ),
    (
        "parameter-extended-before-the-loop",
        "def load(exts=None):\n"
        "    exts = [*(exts or []), 'spatialite']\n"
        "    for ext in exts:\n"
        "        if ext == 'spatialite':\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [5],
    ),
    (
        "through-an-attribute-any-method-may-change",
        "class DB:\n"
        "    def __init__(self, exts=None):\n"
        "        self.exts = exts\n"
        "        for ext in self.exts or []:\n"
        "            if ext == 'spatialite':\n"
        "                glob.glob(ext)\n"
        "\n\nasync def view():\n    DB(exts=['a.so'])\n",
        [6],
    ),
    (
        "list-changed-in-the-function",
        "def load(exts=None):\n"
        "    exts.append('spatialite')\n"
        "    for ext in exts:\n"
        "        if ext == 'spatialite':\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [5],
    ),
    (
        "list-handed-to-other-code",
        "def load(exts=None):\n"
        "    prepare(exts)\n"
        "    if 'spatialite' in exts:\n"
        "        glob.glob('x')\n"
        "\n\ndef prepare(items):\n    items.append('spatialite')\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [4],
    ),
    (
        "membership-literal-present",
        "def load(exts=None):\n"
        "    if 'spatialite' in (exts or []):\n"
        "        glob.glob('x')\n"
        "\n\nasync def view():\n    load(exts=['spatialite'])\n",
        [3],
    ),
    (
        "other-test-of-the-element",
        "def load(exts=None):\n"
        "    for ext in exts or []:\n"
        "        if ext != 'spatialite':\n"
        "            glob.glob(ext)\n"
        "\n\nasync def view():\n    load(exts=['a.so'])\n",
        [4],
    ),
    (
        "pairs-of-a-mapping",
        "def load(exts=None):\n"
        "    for ext in (exts or {}).items():\n"
        "        if ext == 'spatialite':\n"
        "            glob.glob('x')\n"
        "\n\nasync def view():\n    load(exts={'a': 1})\n",
        [4],
    ),
]


@pytest.mark.parametrize(("source", "lines"), [pytest.param(s, n, id=i) for i, s, n in CASES])
def test_value_guarded_hazards(tmp_path: Path, source: str, lines: list[int]) -> None:
    (tmp_path / "app.py").write_text(HEAD + source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    offset = HEAD.count("\n")
    assert sorted({f.line - offset for f in result.findings}) == lines


# (encoded known value, literal, whether they may be equal)
EQUALITY: list[tuple[str, str, bool]] = [
    ("=spatialite", "spatialite", True),
    ("=mod.so", "spatialite", False),
    ("!", "spatialite", False),
    ("~\0ext", "spatialite", False),
    ("~\0lite", "spatialite", True),
    ("~spa\0", "spatialite", True),
    ("~spa\0.so", "spatialite", False),
    ("~spatial\0alite", "spatialite", True),
    ("~spatialite\0spatialite", "spatialite", True),
    ("~spatialites\0", "spatialite", False),
]


@pytest.mark.parametrize(("value", "literal", "equal"), EQUALITY)
def test_may_equal(value: str, literal: str, equal: bool) -> None:
    assert may_equal(value, literal) is equal


# (module source, name, its known value or None)
CONSTANTS: list[tuple[str, str, str | None]] = [
    ("A = 'x'\n", "A", "=x"),
    ("A = 3\n", "A", "!"),
    ("A = ('x', 1)\n", "A", "!"),
    ("A = f'{B}.so'\nB = 1\n", "A", "~\0.so"),
    ("A = f'lib{B}'\nB = 1\n", "A", "~lib\0"),
    ("A = f'x'\n", "A", "=x"),
    ("A = B\nB = 'y'\n", "A", "=y"),
    ("A = A\n", "A", None),
    ("A = 'x'\nA += 'y'\n", "A", None),
    ("A = 'x'\nfor A in []:\n    pass\n", "A", None),
    ("A = 'x'\ndef f():\n    A = 'y'\n", "A", None),
    ("A = 'x'\nclass C:\n    A = 'y'\n", "A", None),
    ("A = 'x'\ndef f():\n    import A\n", "A", None),
    ("A = 'x'\ntry:\n    pass\nexcept E as A:\n    pass\n", "A", None),
    ("A = 'x'\nfrom m import *\n", "A", None),
    ("if c:\n    A = 'x'\n", "A", None),
    ("A = B = 'x'\n", "A", None),
    ("A = str(P / 'ext')\n", "A", "~\0ext"),
    ("A = str(P / '.')\n", "A", None),
    ("A = str(P / 'c:ext')\n", "A", None),
    ("A = str(Q / 'ext')\n", "A", None),
    ("A = repr(P / 'ext')\n", "A", None),
]


@pytest.mark.parametrize(("source", "name", "known"), CONSTANTS)
def test_module_constants(source: str, name: str, known: str | None) -> None:
    types = {"P": "pathlib.Path", "Q": "myproject.Thing", "str": "builtins.str"}

    def typer(expr: ast.expr) -> str | None:
        return types.get(expr.id) if isinstance(expr, ast.Name) else None

    assert ModuleConstants(ast.parse(source), typer).value(name) == known
