"""What a call written in an ``async def`` runs: generators made, not iterated."""

from __future__ import annotations

from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths

#: Line 6 sleeps in a generator function; ``relay``/``make`` hand it on.
PRELUDE = """import asyncio
import time


def numbers():
    time.sleep(1)
    yield 1


def relay():
    yield from numbers()


def make():
    return numbers()


async def view():
"""
SLEEP = [("ASH101", 6)]


def _found(body: str, tmp_path: Path) -> list[tuple[str, int]]:
    """Audit ``PRELUDE`` with ``body`` as the body of ``view``: ``(code, line)`` of each finding."""
    text = PRELUDE + "".join(f"    {line}\n" for line in body.split("\n"))
    (tmp_path / "m.py").write_text(text, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    return sorted({(f.code, f.line) for f in result.findings})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("gen = numbers()\nreturn gen", [], id="kept-and-returned"),
        pytest.param("gen = numbers()", [], id="kept"),
        pytest.param("return numbers()", [], id="returned"),
        pytest.param("gen = relay()\nreturn gen", [], id="relay-kept"),
        pytest.param("gen = numbers()\ngen = None\nreturn gen", [], id="rebound"),
        pytest.param("for x in numbers():\n    pass", SLEEP, id="for"),
        pytest.param("return list(numbers())", SLEEP, id="list"),
        pytest.param("return next(numbers())", SLEEP, id="next"),
        pytest.param("return sum(numbers())", SLEEP, id="sum"),
        pytest.param("return [x for x in numbers()]", SLEEP, id="comprehension"),
        pytest.param("return list(relay())", SLEEP, id="yield-from"),
        pytest.param("return list(make())", SLEEP, id="returned-by-a-helper"),
        pytest.param("gen = numbers()\nfor x in gen:\n    pass", SLEEP, id="kept-then-for"),
        pytest.param("gen = numbers()\nreturn list(gen)", SLEEP, id="kept-then-list"),
        pytest.param(
            "gen = numbers()\ndef drain():\n    return list(gen)\nreturn drain()",
            SLEEP,
            id="kept-then-read-by-a-closure",
        ),
    ],
)
def test_a_generator_runs_when_iterated_not_when_made(
    body: str, expected: list[tuple[str, int]], tmp_path: Path
) -> None:
    assert _found(body, tmp_path) == expected


def test_unsafe_fixes_leave_a_generator_made_in_async_code_alone(tmp_path: Path) -> None:
    from asgishift.audit.fix import fix_findings

    _found("gen = numbers()\nreturn gen", tmp_path)
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    report = fix_findings(result.findings, tmp_path, unsafe=True, write=False)
    assert report.changes == []
    # The iterated one is still rewritten: the same test can fail.
    _found("return list(numbers())", tmp_path)
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert fix_findings(result.findings, tmp_path, unsafe=True, write=False).changes != []
