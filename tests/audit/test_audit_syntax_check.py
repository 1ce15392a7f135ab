"""ruff's parser as the first syntax check of the files outside the closure (``_syntax.py``).

CPython stays the judge: every file ruff rejects is parsed by CPython, which
words the error; so the audit must report exactly the same file errors with
``syntax_check = "ruff"`` as with ``"python"``.
"""

from __future__ import annotations

import ast
import logging
import os
from pathlib import Path

import pytest

import asgishift.audit._schedule as schedule
import asgishift.audit._syntax as syntax
from asgishift.audit._discover import SourceFile
from asgishift.audit._model import AuditConfig, AuditResult
from asgishift.audit._syntax import MIN_FILES, SyntaxCheck, ruff_binary
from asgishift.audit.engine import audit_paths

RUFF = ruff_binary()
needs_ruff = pytest.mark.skipif(RUFF is None, reason="ruff >= 0.12 is not installed")

# Each: a file's text, and whether it is one the audit must report. Which
# CPython's own parser (ast.parse) rejects decides; symtable and the compiler
# reject more (the first three), which the audit does not report.
SNIPPETS = {
    "module_nonlocal.py": "nonlocal x\n",
    "duplicate_parameter.py": "def f(a, a):\n    pass\n",
    "return_outside.py": "return 1\n",
    "python2_print.py": 'print "hi"\n',
    "star_after_double_star.py": "f(**k, *a)\n",
    "delete_a_call.py": "del f()\n",
    "unclosed.py": "x = (1,\n",
    "type_parameters.py": "def first[T](items: list[T]) -> T:\n    return items[0]\n",
    "type_alias.py": "type Pair = tuple[int, int]\n",
    "match.py": "match x:\n    case [a, *rest]:\n        pass\n",
    "fine.py": "import json\n\n\ndef load(text):\n    return json.loads(text)\n",
}


def _python_rejects(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return True
    return False


@needs_ruff
def test_ruff_rejects_every_file_pythons_parser_rejects(tmp_path: Path) -> None:
    paths = {}
    for name, text in SNIPPETS.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths[name] = str(path)
    assert RUFF is not None
    rejected = SyntaxCheck(RUFF, list(paths.values())).rejected()
    assert rejected is not None
    must = {paths[name] for name, text in SNIPPETS.items() if _python_rejects(text)}
    assert must
    assert must <= rejected
    # What ruff rejects beyond those, CPython accepts: parsed again, not reported.
    assert paths["fine.py"] not in rejected
    assert paths["match.py"] not in rejected


@needs_ruff
def test_paths_too_many_for_one_command_line_are_split_over_several_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for i in range(12):
        path = tmp_path / f"file_{i:02}.py"
        path.write_text("x = (1,\n" if i % 5 == 0 else "x = 1\n", encoding="utf-8")
        paths.append(str(path))
    runs: list[int] = []
    real_check = SyntaxCheck._check

    def counted(self: SyntaxCheck, chunk: list[str], env: dict[str, str]) -> bool:
        runs.append(len(chunk))
        return real_check(self, chunk, env)

    monkeypatch.setattr(syntax, "_ARGS_BYTES", 4 * len(paths[0]))
    monkeypatch.setattr(SyntaxCheck, "_check", counted)
    assert RUFF is not None
    rejected = SyntaxCheck(RUFF, paths).rejected()
    assert rejected == {paths[0], paths[5], paths[10]}
    assert len(runs) >= 3
    assert sum(runs) == len(paths)


@needs_ruff
def test_ruff_reports_a_file_reached_through_a_symbolic_link_by_the_path_given(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "broken.py").write_text("x = (1,\n", encoding="utf-8")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    given = str(tmp_path / "link" / "broken.py")
    assert RUFF is not None
    assert SyntaxCheck(RUFF, [given]).rejected() == {given}


@needs_ruff
def test_a_file_ruff_cannot_read_goes_to_python(tmp_path: Path) -> None:
    unreadable = tmp_path / "gone.py"  # deleted after the audit read it, say
    fine = tmp_path / "fine.py"
    fine.write_text("x = 1\n", encoding="utf-8")
    assert RUFF is not None
    rejected = SyntaxCheck(RUFF, [str(unreadable), str(fine)]).rejected()
    assert rejected == {str(unreadable)}


def test_ruff_that_fails_leaves_every_file_to_python(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asgishift.audit"):
        check = SyntaxCheck("/bin/false", ["/nonexistent/a.py"])
        assert check.rejected() is None
    assert "ruff exited with 1" in caplog.text


def test_an_error_inside_the_check_is_no_verdict(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: SyntaxCheck, chunk: list[str], env: dict[str, str]) -> bool:
        raise RuntimeError("unexpected report")

    monkeypatch.setattr(SyntaxCheck, "_check", broken)
    with caplog.at_level(logging.WARNING, logger="asgishift.audit"):
        assert SyntaxCheck("/bin/true", ["/nonexistent/a.py"]).rejected() is None
    assert "ruff's syntax check failed" in caplog.text


def _project(root: Path) -> None:
    """One async file and its import, and enough other files that ruff checks them."""
    package = root / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "views.py").write_text(
        "import time\n\nfrom shop import helpers\n\n\n"
        "async def index(request):\n    time.sleep(1)\n    return helpers.render()\n",
        encoding="utf-8",
    )
    (package / "helpers.py").write_text("def render():\n    return 'ok'\n", encoding="utf-8")
    scripts = root / "scripts"
    scripts.mkdir()
    for i in range(MIN_FILES + 10):
        (scripts / f"job_{i:03}.py").write_text(
            f"import json\n\n\ndef job_{i}(data):\n    return json.dumps(data)\n",
            encoding="utf-8",
        )
    for name, text in SNIPPETS.items():
        (scripts / name).write_text(text, encoding="utf-8")
    # PEP 263 files that are not UTF-8: ruff cannot read them (E902), CPython can.
    for name, text in LATIN1.items():
        (scripts / name).write_bytes(text)


#: Latin-1 source files with a coding cookie; the second does not parse.
LATIN1 = {
    "latin1_fine.py": b'# -*- coding: latin-1 -*-\nname = "caf\xe9"\n',
    "latin1_broken.py": b'# -*- coding: latin-1 -*-\nname = ("caf\xe9"\n',
}


def _audit(root: Path, syntax_check: str) -> AuditResult:
    config = AuditConfig(cache_dir=None, jobs=2, syntax_check=syntax_check)
    return audit_paths([root], root=root, config=config)


@needs_ruff
def test_the_audit_reports_the_same_errors_and_findings_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path)
    started: list[int] = []

    class CountingCheck(SyntaxCheck):
        def __init__(self, binary: str, paths: list[str]) -> None:
            started.append(len(paths))
            super().__init__(binary, paths)

    monkeypatch.setattr(schedule, "SyntaxCheck", CountingCheck)
    with_ruff = _audit(tmp_path, "ruff")
    outside = MIN_FILES + 10 + len(SNIPPETS) + len(LATIN1)
    assert started == [outside]
    with_python = _audit(tmp_path, "python")
    assert started == [outside]  # not started again
    assert with_ruff.errors == with_python.errors
    assert with_ruff.findings == with_python.findings
    reported = {error.path for error in with_ruff.errors}
    expected = {f"scripts/{name}" for name, text in SNIPPETS.items() if _python_rejects(text)}
    assert reported == expected | {"scripts/latin1_broken.py"}
    assert {finding.path for finding in with_ruff.findings} == {"shop/views.py"}


@needs_ruff
def test_a_failed_ruff_run_still_reports_every_syntax_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _project(tmp_path)
    expected = _audit(tmp_path, "python").errors
    monkeypatch.setattr(schedule, "ruff_binary", lambda: "/bin/false")
    with caplog.at_level(logging.WARNING, logger="asgishift.audit"):
        assert _audit(tmp_path, "ruff").errors == expected
    assert "ruff exited with 1" in caplog.text


def test_a_file_whose_size_or_time_changed_since_it_was_read_counts_as_changed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.py"
    path.write_text("x = 1\n", encoding="utf-8")
    source = SourceFile(str(path), "a.py", "a", False)
    stat = os.stat(path)
    stamps = {"a.py": (stat.st_size, stat.st_mtime_ns)}
    assert not schedule._changed(source, stamps)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert schedule._changed(source, stamps)
    path.unlink()
    assert schedule._changed(source, stamps)
