"""Engine robustness: bad files are reported, ignored paths skipped, cache and workers agree."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from asgishift.audit import _parse
from asgishift.audit._cache import cache_path
from asgishift.audit._lines import char_col
from asgishift.audit._model import AuditConfig, AuditResult
from asgishift.audit.engine import audit_paths, noqa_codes

BLOCKING = "import time\n\n\nasync def view():\n    time.sleep(1)\n"


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _run(root: Path, **overrides: object) -> AuditResult:
    settings: dict[str, object] = {"cache_dir": None}
    settings.update(overrides)
    return audit_paths([root], root=root, config=AuditConfig(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "whole_project", [pytest.param(True, id="whole"), pytest.param(False, id="closure")]
)
def test_bad_files_are_reported_and_the_rest_audited(tmp_path: Path, whole_project: bool) -> None:
    _write(tmp_path / "good.py", BLOCKING)
    # The pruned (default) run parses only files that can matter to async
    # code: these mention ``async`` so they are parsed either way.
    _write(tmp_path / "broken.py", "async def f(:\n    pass\n")
    _write(tmp_path / "latin1.py", "x = 1\ns = 'async \xe9t\xe9'\n".encode("latin-1"))
    _write(tmp_path / "huge.py", "async def f(): pass\n" * 100)
    result = _run(tmp_path, max_file_bytes=1000, whole_project=whole_project)
    assert [(f.path, f.code) for f in result.findings] == [("good.py", "ASH101")]
    errors = {e.path: e for e in result.errors}
    assert set(errors) == {"broken.py", "latin1.py", "huge.py"}
    assert errors["broken.py"].line == 1
    assert "syntax error" in errors["broken.py"].message
    assert errors["latin1.py"].line == 2
    assert "not valid UTF-8" in errors["latin1.py"].message
    assert "over max-file-bytes = 1000; raise `max-file-bytes`" in errors["huge.py"].message
    assert result.files_scanned == 3


def test_files_outside_the_async_import_closure_are_skipped_unless_whole_project(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "app.py", "import helpers\n\n\nasync def view():\n    helpers.slow()\n")
    _write(tmp_path / "helpers.py", "import time\n\n\ndef slow():\n    time.sleep(1)\n")
    _write(tmp_path / "unrelated_broken.py", "def f(:\n")
    _write(tmp_path / "caller.py", "from app import view\n\n\ndef kick():\n    view()\n")
    pruned = _run(tmp_path, whole_project=False)
    whole = _run(tmp_path)
    expected = [("caller.py", "ASH402"), ("helpers.py", "ASH101")]
    assert [(f.path, f.code) for f in pruned.findings] == expected
    assert [(f.path, f.code) for f in whole.findings] == expected
    assert pruned.errors == []
    assert [e.path for e in whole.errors] == ["unrelated_broken.py"]
    assert pruned.files_scanned == whole.files_scanned == 4
    assert (pruned.files_parsed, whole.files_parsed) == (3, 4)


def test_newer_syntax_is_reported_as_needing_a_newer_python(tmp_path: Path) -> None:
    import sys

    _write(tmp_path / "generic.py", "def first[T](items: list[T]) -> T:\n    return items[0]\n")
    _write(tmp_path / "alias.py", "type Pair = tuple[int, int]\n")
    result = _run(tmp_path)
    if sys.version_info >= (3, 12):
        assert result.errors == []
    else:
        messages = sorted(e.message for e in result.errors)
        assert len(messages) == 2
        assert all(m.startswith("needs Python 3.12 to parse") for m in messages), messages
        assert all("run the audit with Python 3.12 or newer" in m for m in messages)


def test_coding_cookie_files_are_parsed(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\nimport time\n\n\nasync def v():\n    time.sleep('\xe9')\n"
    _write(tmp_path / "legacy.py", source.encode("latin-1"))
    result = _run(tmp_path)
    assert result.errors == []
    assert [(f.line, f.code) for f in result.findings] == [(6, "ASH101")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    "whole_project", [pytest.param(True, id="whole"), pytest.param(False, id="closure")]
)
def test_a_fifo_named_py_is_reported_not_read(tmp_path: Path, whole_project: bool) -> None:
    # Opening a FIFO for reading waits for a writer: the audit must not hang on it.
    _write(tmp_path / "good.py", BLOCKING)
    os.mkfifo(tmp_path / "pipe.py")
    result = _run(tmp_path, whole_project=whole_project, jobs=1)
    assert [f.path for f in result.findings] == ["good.py"]
    assert [(e.path, e.message) for e in result.errors] == [
        ("pipe.py", "not a regular file; remove it or add it to `exclude`")
    ]
    assert result.files_scanned == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(15)
@pytest.mark.parametrize("where", [pytest.param("", id="root"), pytest.param("pkg", id="subdir")])
def test_a_fifo_named_gitignore_is_skipped_not_read(tmp_path: Path, where: str) -> None:
    # Discovery reads every directory's .gitignore: a FIFO there must not hang it.
    _write(tmp_path / "pkg" / "good.py", BLOCKING)
    os.mkfifo(tmp_path / where / ".gitignore")
    result = _run(tmp_path, jobs=1)
    assert [(f.path, f.code) for f in result.findings] == [("pkg/good.py", "ASH101")]
    assert result.errors == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(15)
@pytest.mark.parametrize("suffix", [pytest.param("", id="cache"), pytest.param(".run", id="run")])
def test_a_fifo_in_place_of_the_cache_is_a_cold_run(tmp_path: Path, suffix: str) -> None:
    project = tmp_path / "project"
    _write(project / "good.py", BLOCKING)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    os.mkfifo(cache_path(str(cache_dir), str(project)) + suffix)
    result = _run(project, jobs=1, cache_dir=str(cache_dir))
    assert [(f.path, f.code) for f in result.findings] == [("good.py", "ASH101")]


@pytest.mark.parametrize(
    "whole_project", [pytest.param(True, id="whole"), pytest.param(False, id="closure")]
)
def test_files_starting_with_a_utf8_bom_are_audited(tmp_path: Path, whole_project: bool) -> None:
    bom = b"\xef\xbb\xbf"
    _write(tmp_path / "m.py", bom + BLOCKING.encode())
    # The BOM must not hide the first line's import from the import closure.
    app = b"import helpers\n\n\nasync def view():\n    helpers.slow()\n"
    _write(tmp_path / "app.py", bom + app)
    _write(tmp_path / "helpers.py", "import time\n\n\ndef slow():\n    time.sleep(1)\n")
    _write(tmp_path / "first.py", bom + b"async def v(): import time; time.sleep(1)\n")
    result = _run(tmp_path, whole_project=whole_project)
    assert result.errors == []
    assert [(f.path, f.line, f.col, f.snippet) for f in result.findings] == [
        ("first.py", 1, 29, "async def v(): import time; time.sleep(1)"),
        ("helpers.py", 5, 5, "time.sleep(1)"),
        ("m.py", 5, 5, "time.sleep(1)"),
    ]
    assert (result.findings[1].chain[0].path, result.findings[1].chain[0].line) == ("app.py", 5)


def test_byte_columns_become_character_columns() -> None:
    line = 'x = "été"; y = 1'
    byte_col = line.encode("utf-8").index(b"y") + 1
    assert char_col(line, byte_col) == line.index("y") + 1
    assert char_col("y = 1", 5) == 5


def test_columns_count_characters_not_utf8_bytes(tmp_path: Path) -> None:
    _write(
        tmp_path / "m.py",
        'import time\n\n\ndef helper():\n    "é"; time.sleep(1)\n\n\n'
        'async def view():\n    s = "😀"; time.sleep(1)\n    t = "ü"; helper()\n',
    )
    result = _run(tmp_path)
    assert [(f.line, f.col, f.end_line, f.end_col) for f in result.findings] == [
        (5, 10, 5, 23),
        (9, 14, 9, 27),
    ]
    assert [(hop.line, hop.col) for hop in result.findings[0].chain] == [(10, 14), (5, 10)]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_is_reported_once(tmp_path: Path) -> None:
    _write(tmp_path / "pkg" / "mod.py", BLOCKING)
    os.symlink(tmp_path / "pkg", tmp_path / "pkg" / "again")
    result = _run(tmp_path)
    assert [f.path for f in result.findings] == ["pkg/mod.py"]
    assert [(e.path, "symlink loop" in e.message) for e in result.errors] == [("pkg/again", True)]


def test_ignored_and_tool_directories_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path / ".gitignore", "build/\n*_generated.py\n")
    _write(tmp_path / "app" / ".gitignore", "local_*.py\n")
    _write(tmp_path / "app" / "views.py", BLOCKING)
    _write(tmp_path / "app" / "local_settings.py", BLOCKING)
    _write(tmp_path / "build" / "lib" / "views.py", BLOCKING)
    _write(tmp_path / "api_generated.py", BLOCKING)
    _write(tmp_path / "vendored" / "x.py", BLOCKING)
    for skipped in (".venv", ".git", "__pycache__", "node_modules"):
        _write(tmp_path / skipped / "x.py", BLOCKING)
    result = _run(tmp_path, exclude=["vendored/"])
    assert [f.path for f in result.findings] == ["app/views.py"]
    assert result.files_scanned == 1
    everything = _run(tmp_path, respect_gitignore=False)
    assert {f.path for f in everything.findings} == {
        "app/views.py",
        "app/local_settings.py",
        "build/lib/views.py",
        "api_generated.py",
        "vendored/x.py",
    }


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    result = audit_paths([tmp_path / "nope"], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert [(e.path, "does not exist" in e.message) for e in result.errors] == [("nope", True)]


def test_cache_is_reused_and_invalidated_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "proj"
    _write(project / "a.py", BLOCKING)
    _write(project / "b.py", "def helper():\n    return 1\n")
    cache = tmp_path / "cache"
    first = _run(project, cache_dir=str(cache))
    assert [f.path for f in first.findings] == ["a.py"]
    assert len(list(cache.glob("audit-*.marshal"))) == 1

    def no_parsing(*args: object) -> object:
        raise AssertionError("file parsed although cached")

    monkeypatch.setattr(_parse, "parse_file", no_parsing)
    second = _run(project, cache_dir=str(cache))
    assert second.findings == first.findings
    monkeypatch.undo()
    _write(project / "b.py", "import os\n\n\nasync def helper():\n    os.system('x')\n")
    third = _run(project, cache_dir=str(cache))
    assert [(f.path, f.code) for f in third.findings] == [("a.py", "ASH101"), ("b.py", "ASH104")]


def test_a_tree_without_python_files_audits_clean_and_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = tmp_path / "proj"
    _write(project / "README.md", "no Python here\n")
    cache = tmp_path / "cache"
    result = _run(project, cache_dir=str(cache))
    assert (result.findings, result.errors) == ([], [])
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []
    # The run memo was written, so the next run of the same tree is answered from it.
    assert len(list(cache.glob("audit-*.run"))) == 1


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    _write(project / "a.py", BLOCKING)
    cache = tmp_path / "cache"
    _run(project, cache_dir=str(cache))
    [cache_file] = cache.glob("audit-*.marshal")
    cache_file.write_bytes(b"\x00garbage")
    assert [f.code for f in _run(project, cache_dir=str(cache)).findings] == ["ASH101"]


def test_worker_processes_match_in_process_parsing(tmp_path: Path) -> None:
    count = _parse.PARALLEL_MIN_FILES + 6
    for i in range(count):
        nxt = f"from pkg.m{i + 1} import f{i + 1}\n" if i + 1 < count else ""
        body = f"    f{i + 1}()\n" if nxt else "    import time\n    time.sleep(1)\n"
        _write(tmp_path / "pkg" / f"m{i}.py", f"{nxt}\n\ndef f{i}():\n{body}")
    _write(tmp_path / "pkg" / "__init__.py", "")
    # entry imports every module, so one round holds enough files for the pool.
    names = ", ".join(f"m{i}" for i in range(count))
    _write(
        tmp_path / "pkg" / "entry.py",
        f"from pkg import {names}\n\n\nasync def go():\n    m0.f0()\n",
    )
    seen: list[tuple[int, int]] = []
    parallel = audit_paths(
        [tmp_path],
        root=tmp_path,
        config=AuditConfig(cache_dir=None, jobs=2),
        progress=lambda done, total: seen.append((done, total)),
    )
    serial = _run(tmp_path, jobs=1)
    assert parallel.findings == serial.findings
    [finding] = parallel.findings
    assert finding.path == f"pkg/m{count - 1}.py"
    assert len(finding.chain) == count + 1
    assert seen[-1] == (count + 2, count + 2)
    done = [d for d, _ in seen]
    assert done == sorted(done)
    # Workers report whole batches; in-process parsing reports file by file.
    assert any(b - a > 1 for a, b in itertools.pairwise(done))


def test_cached_runs_after_an_edit_match_a_fresh_run(tmp_path: Path) -> None:
    # Enough files for the worker pool: the first run scans while discovery
    # walks; the second finds the last run's findings stale (one file edited)
    # and looks every file up in the per-file cache after reading the tree.
    project = tmp_path / "proj"
    count = _parse.PARALLEL_MIN_FILES + 6
    for i in range(count):
        _write(project / "pkg" / f"m{i}.py", f"import time\n\n\ndef f{i}():\n    time.sleep(1)\n")
    _write(project / "pkg" / "__init__.py", "")
    _write(project / "pkg" / "entry.py", "from pkg import m0\n\n\nasync def go():\n    m0.f0()\n")
    cache = str(tmp_path / "cache")
    first = _run(project, cache_dir=cache, jobs=2)
    assert [f.path for f in first.findings] == ["pkg/m0.py"]
    _write(project / "pkg" / "entry.py", "from pkg import m5\n\n\nasync def go():\n    m5.f5()\n")
    second = _run(project, cache_dir=cache, jobs=2)
    assert second.findings == _run(project, jobs=1).findings
    assert [f.path for f in second.findings] == ["pkg/m5.py"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("x()  # noqa", frozenset(), id="bare"),
        pytest.param("x()  # noqa: ASH101", frozenset({"ASH101"}), id="one"),
        pytest.param("x()  # NOQA:ASH101,ASH2", frozenset({"ASH101", "ASH2"}), id="list"),
        pytest.param(
            "x()  # noqa: ASH101, E501  trailing", frozenset({"ASH101", "E501"}), id="spaces"
        ),
        pytest.param("x()  # no qa", None, id="none"),
        pytest.param("x()", None, id="plain"),
    ],
)
def test_noqa_codes(line: str, expected: frozenset[str] | None) -> None:
    assert noqa_codes(line) == expected


def test_noqa_counts_only_in_comments_not_in_strings(tmp_path: Path) -> None:
    _write(
        tmp_path / "m.py",
        "import time\n\n\nasync def view():\n"
        '    print("# noqa: ASH101"); time.sleep(1)\n'
        '    y = """\n    # noqa: ASH101 """; time.sleep(2)\n'
        '    time.sleep(3)  # noqa: ASH101 "quoted"\n',
    )
    assert [f.line for f in _run(tmp_path).findings] == [5, 7]


def test_a_form_feed_does_not_shift_snippets_or_noqa_lines(tmp_path: Path) -> None:
    # str.splitlines() also splits at a form feed; Python's line numbers do not.
    _write(
        tmp_path / "m.py",
        "import time\n\x0c\n\nasync def view():\n    time.sleep(1)\n    time.sleep(2)  # noqa\n",
    )
    assert [(f.line, f.snippet) for f in _run(tmp_path).findings] == [(5, "time.sleep(1)")]


def test_namespace_packages_are_reached_by_their_dotted_import_name(tmp_path: Path) -> None:
    # src/reports/ has no __init__.py (PEP 420): reports.store is importable as
    # "reports.store" once src/ is on sys.path, and audited from the project root.
    _write(
        tmp_path / "src" / "reports" / "store.py",
        "from pathlib import Path\n\n\ndef load(name):\n    return Path(name).read_text()\n",
    )
    _write(
        tmp_path / "src" / "reports" / "views.py",
        "from reports.store import load\n\n\nasync def show(name):\n    return load(name)\n",
    )
    result = _run(tmp_path)
    assert [(f.path, f.code, f.chain[0].callee) for f in result.findings] == [
        ("src/reports/store.py", "ASH105", "reports.store.load")
    ]


@pytest.mark.parametrize("blocking", ["nsa", "nsb"])
def test_namespace_packages_with_the_same_module_name_stay_apart(
    tmp_path: Path, blocking: str
) -> None:
    # nsa/ and nsb/ have no __init__.py: nsa.util and nsb.util are two
    # modules, though both files are named util.py.
    quiet = "nsb" if blocking == "nsa" else "nsa"
    _write(tmp_path / quiet / "util.py", "def helper():\n    return 1\n")
    _write(tmp_path / blocking / "util.py", "import time\n\n\ndef helper():\n    time.sleep(1)\n")
    for name, package in (("views", blocking), ("other", quiet)):
        _write(
            tmp_path / "app" / f"{name}.py",
            f"from {package}.util import helper\n\n\nasync def {name}():\n    helper()\n",
        )
    result = _run(tmp_path)
    assert [(f.path, f.line, f.chain[0].path, f.chain[-1].function) for f in result.findings] == [
        (f"{blocking}/util.py", 5, "app/views.py", f"{blocking}.util.helper")
    ]


@pytest.mark.parametrize(("given", "scanned"), [("api", 2), ("api/views.py", 1)])
def test_a_sub_path_follows_the_project_modules_it_imports(
    tmp_path: Path, given: str, scanned: int
) -> None:
    # Auditing api/ alone still follows the call into core/ (imported from
    # api/views.py), but reports only what an async def under api/ reaches.
    _write(tmp_path / "api" / "__init__.py", "")
    _write(
        tmp_path / "api" / "views.py",
        "from core.util import slow\n\n\nasync def view():\n    slow()\n",
    )
    _write(tmp_path / "core" / "__init__.py", "")
    _write(
        tmp_path / "core" / "util.py",
        "import time\n\n\ndef slow():\n    time.sleep(1)\n\n\nasync def tick():\n"
        "    time.sleep(1)\n",
    )
    # Neither imported nor given: not read at all.
    _write(tmp_path / "jobs" / "broken.py", "async def f(:\n")
    whole = _run(tmp_path)
    assert [(f.path, f.line) for f in whole.findings] == [("core/util.py", 5), ("core/util.py", 9)]
    config = AuditConfig(cache_dir=None)
    result = audit_paths([tmp_path / given], root=tmp_path, config=config)
    assert [(f.path, f.line, f.chain[0].path) for f in result.findings] == [
        ("core/util.py", 5, "api/views.py")
    ]
    assert result.errors == []
    assert result.files_scanned == scanned
    # An excluded module is not followed, as in a whole-project run.
    config = AuditConfig(cache_dir=None, exclude=["core/"])
    assert audit_paths([tmp_path / given], root=tmp_path, config=config).findings == []


def test_unchanged_tree_reuses_the_last_run_without_linking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgishift.audit import engine

    project = tmp_path / "proj"
    _write(project / "a.py", BLOCKING)
    cache = tmp_path / "cache"
    first = _run(project, cache_dir=str(cache))

    def no_linking(*args: object) -> object:
        raise AssertionError("linked although nothing changed")

    monkeypatch.setattr(engine, "link", no_linking)
    assert _run(project, cache_dir=str(cache)).findings == first.findings
    monkeypatch.undo()
    # A setting that can change the findings makes it another run.
    calls: list[object] = []
    real_link = engine.link

    def counting(*args: object) -> object:
        calls.append(args)
        return real_link(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "link", counting)
    other = _run(project, cache_dir=str(cache), extra_safe=["view"])
    assert len(calls) == 1
    assert [f.code for f in other.findings] == ["ASH101"]
