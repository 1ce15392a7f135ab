"""Edge cases of the rewrites: where they must not apply, positions, encodings, imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from fix_cases import audit, make_project

from asgishift.audit._model import Finding
from asgishift.audit.fix import FixTarget, Rewrite, Skip, fix_findings
from asgishift.audit.fix._apply import rewrite_source


def _views(tmp_path: Path, source: str) -> Path:
    views = make_project(tmp_path, "orm_methods")
    views.write_text(source, encoding="utf-8")
    return views


def test_non_ascii_before_the_call_still_matches(tmp_path: Path) -> None:
    views = _views(
        tmp_path,
        "from .models import Book\n\n\nasync def v(pk):\n"
        '    note = "ünïcödé"; book = Book.objects.get(pk=pk)\n    return note, book\n',
    )
    report = fix_findings(audit(tmp_path).findings, tmp_path)
    assert len(report.fixed) == 1
    assert 'note = "ünïcödé"; book = await Book.objects.aget(pk=pk)' in views.read_text("utf-8")


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    views = make_project(tmp_path, "orm_methods")
    source = (
        "from .models import Book\r\n\r\n\r\n"
        "async def v(pk):\r\n    return Book.objects.get(pk=pk)\r\n"
    )
    views.write_bytes(source.encode())
    fix_findings(audit(tmp_path).findings, tmp_path)
    assert (
        views.read_bytes() == source.replace("Book.objects.get", "await Book.objects.aget").encode()
    )


def test_a_utf8_bom_is_kept(tmp_path: Path) -> None:
    views = make_project(tmp_path, "orm_methods")
    source = "from .models import Book\n\n\nasync def v(pk):\n    return Book.objects.get(pk=pk)\n"
    views.write_bytes(b"\xef\xbb\xbf" + source.encode())
    report = fix_findings(audit(tmp_path).findings, tmp_path)
    assert len(report.fixed) == 1
    fixed = source.replace("Book.objects.get", "await Book.objects.aget")
    assert views.read_bytes() == b"\xef\xbb\xbf" + fixed.encode()


def _target(kind: Rewrite, line: int, col: int, callee: str = "") -> FixTarget:
    return FixTarget(kind, "app/views.py", line, col, callee=callee)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        pytest.param(
            "import time\n\n\nasync def v():\n    def inner():\n        time.sleep(1)\n",
            _target(Rewrite.ASYNC_SLEEP, 6, 9),
            id="nested-def",
        ),
        pytest.param(
            "import time\n\n\nasync def v():\n    return lambda: time.sleep(1)\n",
            _target(Rewrite.ASYNC_SLEEP, 5, 20),
            id="lambda",
        ),
        pytest.param(
            "import time\n\n\ndef v():\n    time.sleep(1)\n",
            _target(Rewrite.ASYNC_SLEEP, 5, 5),
            id="sync-def",
        ),
        pytest.param(
            "async def v(qs):\n    return sum(b.n for b in qs)\n",
            _target(Rewrite.ASYNC_FOR, 2, 29),
            id="generator-expression",
        ),
        pytest.param(
            "async def v(qs):\n    return qs.iterator()\n",
            _target(Rewrite.AWAIT_ASYNC_METHOD, 2, 12),
            id="no-awaitable-twin",
        ),
        pytest.param(
            "async def v():\n    return other()\n",
            _target(Rewrite.WRAP_SYNC_TO_ASYNC, 2, 12, callee="app.helpers.helper"),
            id="callee-name-differs",
        ),
    ],
)
def test_targets_outside_an_async_body_or_of_the_wrong_shape_are_left(
    source: str, target: FixTarget
) -> None:
    before, after, applied = rewrite_source(source.encode(), [target])
    assert applied == []
    assert after == before == source


def test_rewritten_awaits_get_parentheses_where_needed() -> None:
    line = "    return qs.get(pk=1).title, qs.first()[0]"
    spans = [
        (line.index(call), line.index(call) + len(call)) for call in ("qs.get(pk=1)", "qs.first()")
    ]
    targets = [
        FixTarget(Rewrite.AWAIT_ASYNC_METHOD, "v.py", 2, start + 1, 2, end + 1)
        for start, end in spans
    ]
    _, after, applied = rewrite_source(f"async def v(qs):\n{line}\n".encode(), targets)
    assert len(applied) == 2
    assert after.splitlines()[1] == "    return (await qs.aget(pk=1)).title, (await qs.afirst())[0]"


def test_existing_imports_are_reused_not_repeated() -> None:
    source = (
        "import asyncio\nimport time\n\n\nasync def v():\n    time.sleep(1)\n"
        "    await asyncio.sleep(0)\n"
    )
    _, after, _ = rewrite_source(source.encode(), [_target(Rewrite.ASYNC_SLEEP, 6, 5)])
    assert after.count("import asyncio") == 1
    assert "    await asyncio.sleep(1)\n" in after


def test_missing_import_is_added_after_the_docstring_and_future_import() -> None:
    source = (
        '"""Doc."""\n\nfrom __future__ import annotations\n\nfrom .helpers import helper\n\n\n'
        "async def v():\n    return helper()\n"
    )
    target = _target(Rewrite.WRAP_SYNC_TO_ASYNC, 9, 12, callee="app.helpers.helper")
    _, after, _ = rewrite_source(source.encode(), [target])
    assert after.startswith('"""Doc."""\n\nfrom __future__ import annotations\n')
    assert "from asgiref.sync import sync_to_async\n" in after
    assert after.endswith("    return await sync_to_async(helper)()\n")


def test_findings_without_a_fix_are_counted(tmp_path: Path) -> None:
    _views(
        tmp_path,
        "import requests\n\n\nasync def v():\n    return requests.get('https://x.test')\n",
    )
    report = fix_findings(audit(tmp_path).findings, tmp_path, unsafe=True)
    assert [reason for _, reason in report.skipped] == [Skip.NO_FIX]
    assert (
        report.summary(written=True) == "Fixed 0 findings in 0 files; 1 without an automatic fix."
    )


def test_a_file_that_no_longer_parses_is_reported_not_rewritten(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("async def v(:\n", encoding="utf-8")
    finding = Finding("ASH101", "broken.py", 1, 1, 1, 5)
    report = fix_findings([finding], tmp_path, unsafe=True)
    assert report.changes == []
    assert [path for path, _ in report.errors] == ["broken.py"]
    assert (tmp_path / "broken.py").read_text(encoding="utf-8") == "async def v(:\n"


GENERATOR_VIEWS = (
    "from .gen import Feed, rows\n\n\ndef plain():\n    return list(rows())\n\n\n"
    "async def v():\n"
    "    out = [x for x in rows()]\n"
    "    for item in Feed().items():\n"
    "        out.append(item)\n"
    "    return out, plain()\n"
)
GENERATORS = (
    "import time\n\n\ndef rows():\n    for i in range(3):\n        time.sleep(1)\n"
    "        yield i\n\n\nclass Feed:\n    def items(self):\n"
    "        time.sleep(1)\n        yield from rows()\n"
)


def test_a_generator_helper_is_refused_not_wrapped(tmp_path: Path) -> None:
    # sync_to_async(rows)() only makes the generator in a thread: iterating it
    # would still run its body, and its sleeps, on the event loop.
    views = _views(tmp_path, GENERATOR_VIEWS)
    (tmp_path / "app" / "gen.py").write_text(GENERATORS, encoding="utf-8")
    report = fix_findings(audit(tmp_path).findings, tmp_path, unsafe=True)
    text = views.read_text("utf-8")
    assert "    out = [x for x in rows()]\n" in text
    assert "    for item in Feed().items():\n" in text
    assert "    return out, await sync_to_async(plain)()\n" in text
    refused = {f.chain[0].callee for f, why in report.skipped if why is Skip.GENERATOR}
    assert refused == {"app.gen.rows", "app.gen.Feed.items"}
    assert {f.chain[0].callee for f in report.fixed} == {"app.views.plain"}
    assert "not rewritten: the helper is a generator function" in report.summary(written=True)
    assert report.refusals()[0].startswith("app/views.py:9:")
