"""The audit's fast paths give the answers of the slow ones they replace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asgishift.audit._closure import _IMPORT_RE, _import_statements, imports_by_text
from asgishift.audit._discover import SourceFile
from asgishift.audit._parse import PARSED_ONLY, parse_file

IMPORTS = b'''import os, sys as system
from . import (
    a,  # the word import in a comment
    b,
)
x = 1; import json
"""A docstring that says
import re
and from here import there.
"""
    from .pkg.mod import name as alias
def f(): from ..up import thing
importlib = None
from x import y; from z import w
from m import *
'''


def _source(module: str = "pkg.mod", rel: str = "pkg/mod.py") -> SourceFile:
    return SourceFile(abspath=rel, rel=rel, module=module, is_package=False, names=())


def test_import_statements_match_the_regular_expression_scan() -> None:
    assert _import_statements(IMPORTS) == _IMPORT_RE.findall(IMPORTS)
    assert imports_by_text(_source(), IMPORTS) == [
        "os",
        "sys",
        "pkg",
        "pkg.a",
        "pkg.b",
        "re",
        "pkg.pkg.mod",
        "pkg.pkg.mod.name",
        "x",
        "x.y",
        "m",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = 1\n", PARSED_ONLY),
        # symtable rejects this, ast.parse accepts it: still only parsed.
        ("nonlocal x\n", PARSED_ONLY),
        ("def f(:\n", (1, "syntax error")),
    ],
)
def test_parse_only_agrees_with_ast_parse(
    tmp_path: Path, text: str, expected: tuple[int, str]
) -> None:
    data = text.encode()
    checked = parse_file(_source(), data, summarise=False)
    assert checked[0] == expected[0]
    assert checked[1].startswith(expected[1])
    if checked != PARSED_ONLY:
        assert checked == parse_file(_source(), data, summarise=True)


_FORKED_WORKERS_SCRIPT = """
import sys
from pathlib import Path
from asgishift.audit._discover import SourceFile
from asgishift.audit._parse import PARALLEL_MIN_FILES, Parser, Step, Task

tmp_path = Path(sys.argv[1])
count = PARALLEL_MIN_FILES + 4
sources = [
    SourceFile(abspath=str(tmp_path / f"m{i}.py"), rel=f"m{i}.py", module=f"m{i}", is_package=False)
    for i in range(count)
]
contents = {s.rel: f"def f{i}(:\\n".encode() for i, s in enumerate(sources)}
parser = Parser(2)
try:
    outcomes = [
        o for batch in parser.run([Task(s, Step.PARSE) for s in sources], contents) for o in batch
    ]
finally:
    parser.close()
print(len(outcomes), count)
print(sorted({o.entry[0] for o in outcomes if o.entry is not None}))
print(all("syntax error" in str(o.entry) for o in outcomes))
"""


def test_forked_workers_use_the_bytes_already_read(tmp_path: Path) -> None:
    # Run in a fresh, single-threaded interpreter: the pool forks only when the
    # caller has one thread, and a pytest-xdist worker has several.
    # The files are not on disk: only the bytes handed to the pool exist.
    result = subprocess.run(
        [sys.executable, "-c", _FORKED_WORKERS_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    counted, lines, all_syntax = result.stdout.splitlines()
    total, expected = counted.split()
    assert total == expected
    # Every file was parsed from memory (a syntax error on line 1), none read from disk.
    assert lines == "[1]"
    assert all_syntax == "True"


GITIGNORE = """\
*.py[cod]
.*
!.github
!.semgrep/
.claude
!.claude/skills/
build/
/media/
*\\.egg*
local_settings.py
docs/**/gen_*.py
!docs/keep/gen_ok.py
# a comment

a?b.py
[xy]z/
"""

PATHS = [
    "app.py",
    "local_settings.py",
    "pkg/local_settings.py",
    "app.pyc",
    ".github/",
    ".github/ci.py",
    ".env/",
    ".semgrep/",
    ".semgrep/rule.py",
    ".claude/skills/",
    ".claude/skills/x.py",
    ".claude/other/",
    "build/",
    "src/build/",
    "src/build.py",
    "media/",
    "pkg/media/",
    "thing.egg-info/",
    "docs/a/gen_x.py",
    "docs/keep/gen_ok.py",
    "docs/gen_y.py",
    "aXb.py",
    "a/b.py",
    "xz/",
    "pkg/yz/",
    "zz/",
]


@pytest.mark.parametrize("path", PATHS)
def test_ignore_prefilter_agrees_with_pathspec(path: str) -> None:
    import pathspec

    from asgishift.audit._discover import _compile_spec, _matches

    lines = GITIGNORE.splitlines()
    compiled = _compile_spec(lines)
    assert compiled.any_match is not None
    assert _matches(compiled, path) == pathspec.GitIgnoreSpec.from_lines(lines).match_file(path)


@pytest.mark.parametrize(
    "text",
    [
        b"async def f(): pass\n",
        b"x = 1\n\nasync\twith",
        b"await",
        b"r = await(x)\n",
        b'"""Runs asynchronously."""\n',
        b"task.apply_async(countdown=1)\n",
        b"trigger_webhooks_async(data)\n",
        b"from asgiref.sync import sync_to_async\n",
        b"database_sync_to_async(f)\n",
        b"async_capable = False\n",
        b"if asyncio.iscoroutinefunction(f): pass\n",
        b"@sync_and_async_middleware\n",
        b"inspect.isawaitable(x)\n",
        b"MIDDLEWARE = []\n",
        b"pool.submit(job)\n",
        b"nothing_here = 1\n",
        b"\xc3\xa9async = 1\n",
        b"x.async_unsafe\n",
        b'path("", CartView.as_view())\n',
        b"as_view = 1\n",
    ],
)
def test_seed_test_matches_the_seed_expression(text: bytes) -> None:
    from asgishift.audit._closure import SEED_RE, is_seed

    assert is_seed(text) == (SEED_RE.search(text) is not None)
