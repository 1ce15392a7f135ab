"""The audit's fast paths give the answers of the slow ones they replace."""

from __future__ import annotations

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
