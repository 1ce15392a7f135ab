"""An exception inside the analysis of one file: that file is reported, the rest audited.

The crash is real: the summariser (:func:`asgishift.audit._summary.summarize`,
as :mod:`asgishift.audit._parse` calls it) is replaced by one that raises for a
single module. Worker processes are covered end to end in
``tests/audit_cli/test_cli_e2e.py``, where the same replacement is installed in
every process.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asgishift.audit import _parse
from asgishift.audit._model import AuditConfig, AuditResult
from asgishift.audit.engine import audit_paths

BLOCKING = "import time\n\n\nasync def view():\n    time.sleep(1)\n"


class Boom(Exception):
    """The bug the replaced summariser has."""


def _project(root: Path) -> Path:
    """Write ``shop/good.py`` and ``shop/bad.py``, each with one blocking sleep."""
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("", encoding="utf-8")
    (root / "shop" / "good.py").write_text(BLOCKING, encoding="utf-8")
    (root / "shop" / "bad.py").write_text(BLOCKING, encoding="utf-8")
    return root


@pytest.fixture
def crash(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Make the analysis of module ``shop.bad`` raise :class:`Boom`; undo with ``.undo()``."""
    real = _parse.summarize

    def summarize(tree: object, module: str, is_package: bool) -> object:
        if module == "shop.bad":
            raise Boom("summary of shop.bad\nsecond line")
        return real(tree, module, is_package)  # type: ignore[arg-type]

    monkeypatch.setattr(_parse, "summarize", summarize)
    return monkeypatch


def _run(root: Path, cache: Path | None = None) -> AuditResult:
    config = AuditConfig(cache_dir=str(cache) if cache else None, jobs=1)
    return audit_paths([root], root=root, config=config)


def test_the_file_is_reported_and_the_others_still_audited(
    tmp_path: Path, crash: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = _project(tmp_path)
    with caplog.at_level(logging.ERROR, logger="asgishift.audit"):
        result = _run(root)
    assert [(f.code, f.path) for f in result.findings] == [("ASH101", "shop/good.py")]
    [error] = result.errors
    assert (error.path, error.line, error.internal) == ("shop/bad.py", 0, True)
    assert error.message.startswith(
        "internal error: asgishift's analysis of this file raised Boom: summary of shop.bad;"
    )
    assert "second line" not in error.message
    assert "report it with the traceback" in error.message
    assert "`exclude`" in error.message
    [record] = [r for r in caplog.records if r.name == "asgishift.audit"]
    assert record.levelno == logging.ERROR
    logged = record.getMessage()
    assert "shop/bad.py" in logged
    assert "Traceback (most recent call last)" in logged
    assert "in summarize" in logged
    assert logged.rstrip().endswith("Boom: summary of shop.bad\nsecond line")


def test_a_file_that_cannot_be_parsed_is_not_an_internal_error(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "shop" / "bad.py").write_text("def oops(:\n", encoding="utf-8")
    [error] = _run(root).errors
    assert (error.path, error.internal) == ("shop/bad.py", False)
    assert error.message.startswith("syntax error")


def test_a_crash_is_cached_by_neither_cache(tmp_path: Path, crash: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path / "proj")
    cache = tmp_path / "cache"
    assert [e.path for e in _run(root, cache).errors] == ["shop/bad.py"]
    # The per-file cache and the run memo were written, without the crash:
    # once the bug is gone, the next run analyses the file and finds its sleep.
    assert list(cache.glob("audit-*.marshal"))
    crash.undo()
    fixed = _run(root, cache)
    assert fixed.errors == []
    assert sorted(f.path for f in fixed.findings) == ["shop/bad.py", "shop/good.py"]


def test_a_crash_in_a_file_outside_the_paths_is_still_reported(
    tmp_path: Path, crash: pytest.MonkeyPatch
) -> None:
    # views.py (the path audited) reaches bad.py's sleep through a call: the
    # crash hides that finding, so it is reported though bad.py is not a path.
    root = _project(tmp_path)
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    (root / "shop" / "bad.py").write_text(
        "import time\n\n\ndef helper():\n    time.sleep(1)\n", encoding="utf-8"
    )
    views = root / "shop" / "views.py"
    views.write_text("from shop.bad import helper\n\n\nasync def view():\n    helper()\n")
    result = audit_paths([views], root=root, config=AuditConfig(cache_dir=None, jobs=1))
    assert result.findings == []
    assert [(e.path, e.internal) for e in result.errors] == [("shop/bad.py", True)]
