"""A file written for a newer Python is reported as needing it, not as a syntax error.

Each source below parses on the release named beside it and on none before it;
the audit runs on whichever Python runs the tests (3.10, 3.11 and 3.13 in this
project), so each case checks what that release must say.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths

# (source, the first release that parses it)
NEWER = [
    pytest.param(
        "def first[T](items: list[T]) -> T:\n    return items[0]\n", (3, 12), id="pep695-def"
    ),
    pytest.param("type Pair = tuple[int, int]\n", (3, 12), id="pep695-alias"),
    pytest.param(
        "def first[T = int](items: list[T]) -> T:\n    return items[0]\n",
        (3, 13),
        id="pep696-def-default",
    ),
    pytest.param("class Box[T = int]:\n    pass\n", (3, 13), id="pep696-class-default"),
    pytest.param("class Box[K, V = list[int]]:\n    pass\n", (3, 13), id="pep696-nested-default"),
    pytest.param("type Items[T = str] = list[T]\n", (3, 13), id="pep696-alias-default"),
    pytest.param(
        "def check(token):\n    try:\n        return int(token)\n"
        "    except ValueError, TypeError:\n        return None\n",
        (3, 14),
        id="pep758-except-without-parentheses",
    ),
    pytest.param("who = 'x'\ngreeting = t'hello {who}'\n", (3, 14), id="pep750-t-string"),
    pytest.param("who = 'x'\nraw = [rt'\\d {who}']\n", (3, 14), id="pep750-raw-t-string"),
]


def _errors(root: Path, source: str) -> list[str]:
    (root / "newer.py").write_text(source, encoding="utf-8")
    result = audit_paths([root], root=root, config=AuditConfig(cache_dir=None))
    assert result.findings == []
    return [e.message for e in result.errors]


@pytest.mark.parametrize(("source", "release"), NEWER)
def test_syntax_of_a_newer_release_names_that_release(
    tmp_path: Path, source: str, release: tuple[int, int]
) -> None:
    messages = _errors(tmp_path, source)
    if sys.version_info[:2] >= release:
        assert messages == []
    else:
        needs = f"{release[0]}.{release[1]}"
        assert len(messages) == 1, messages
        assert messages[0].startswith(f"needs Python {needs} to parse"), messages
        assert f"run the audit with Python {needs} or newer" in messages[0]


@pytest.mark.parametrize(
    "source",
    [
        # PEP 758 still needs the parentheses with `as`: an error on every release.
        pytest.param(
            "try:\n    pass\nexcept ValueError, TypeError as exc:\n    pass\n", id="except-as"
        ),
        # A name `t` followed by a number is no template string.
        pytest.param("t = 1\nx = t 2\n", id="name-then-number"),
        pytest.param("def f[T](:\n    pass\n", id="broken-after-type-params")
        if sys.version_info >= (3, 12)
        else pytest.param("def f(:\n    pass\n", id="broken-def"),
    ],
)
def test_a_real_syntax_error_is_reported_as_one(tmp_path: Path, source: str) -> None:
    messages = _errors(tmp_path, source)
    assert len(messages) == 1, messages
    assert messages[0].startswith("syntax error: "), messages
