"""A bug in asgishift is exit status 2, never 1 (findings), and says what failed.

Every crash here is real: an analysis or engine function is replaced by one
that raises, in this process (``monkeypatch``) or, for the real
``python -m asgishift audit``, in every process of the run through a
``sitecustomize`` module (worker processes included, whatever their start
method).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from audit_cli_helpers import FakeEngine, cli, finding, run_audit

from asgishift.audit import _parse, engine
from asgishift.audit._exit import EXIT_ERROR, EXIT_STATUSES
from asgishift.audit._model import AuditResult, FileError

BLOCKING = "import time\n\n\nasync def view():\n    time.sleep(1)\n"
SRC = Path(__file__).resolve().parents[2] / "src"


def _project(root: Path, count: int = 2) -> Path:
    """Write ``shop/m0.py`` .. ``shop/m{count-1}.py``, each with one blocking sleep."""
    (root / "shop").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    (root / "shop" / "__init__.py").write_text("", encoding="utf-8")
    for i in range(count):
        (root / "shop" / f"m{i}.py").write_text(BLOCKING, encoding="utf-8")
    return root


@pytest.fixture
def crash_m1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the analysis of module ``shop.m1`` raise ``KeyError('m1 node')`` in this process."""
    real = _parse.summarize

    def summarize(tree: object, module: str, is_package: bool) -> object:
        if module == "shop.m1":
            raise KeyError("m1 node")
        return real(tree, module, is_package)  # type: ignore[arg-type]

    monkeypatch.setattr(_parse, "summarize", summarize)


LAST_LINE = (
    "asgishift audit: error: internal error: asgishift's analysis of 1 file raised "
    "(shop/m1.py); their findings are unknown, so the exit status is 2. This is a bug in "
    "asgishift: please report it with the traceback logged for each file"
)


@pytest.mark.parametrize("flags", [[], ["--exit-zero"]], ids=["plain", "exit-zero"])
def test_a_crash_on_one_file_exits_2_and_reports_the_rest(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    crash_m1: None,
    flags: list[str],
) -> None:
    monkeypatch.chdir(_project(tmp_path))
    assert cli("--no-cache", "-j", "1", *flags) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out.startswith("shop/m0.py\n  5:5  ASH101")
    assert "shop/m1.py\n" not in captured.out
    assert "1 file could not be audited (see stderr)." in captured.out
    err = captured.err.splitlines()
    assert err[-1] == LAST_LINE
    assert err[-2].startswith(
        "shop/m1.py: cannot audit: internal error: asgishift's analysis of this file raised "
        "KeyError: 'm1 node'; this is a bug in asgishift"
    )
    # The traceback goes through the asgishift.audit logger (the subprocess
    # tests below see it on stderr, where it goes when logging is not set up).
    [logged] = [r.getMessage() for r in caplog.records if r.name == "asgishift.audit"]
    assert logged.startswith("internal error analysing shop/m1.py")
    assert "Traceback (most recent call last)" in logged
    assert logged.endswith("KeyError: 'm1 node'")


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_a_crash_on_one_file_is_reported_where_each_format_reports_unparsable_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    crash_m1: None,
    fmt: str,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(_project(tmp_path))
    assert cli("--no-cache", "-j", "1", "--format", fmt) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == LAST_LINE
    message = "internal error: asgishift's analysis of this file raised KeyError: 'm1 node'"
    if fmt == "json":
        document = json.loads(captured.out)
        assert [f["path"] for f in document["findings"]] == ["shop/m0.py"]
        [error] = document["errors"]
        assert (error["path"], error["line"]) == ("shop/m1.py", 0)
        assert error["message"].startswith(message)
    elif fmt == "sarif":
        request.getfixturevalue("sarif_validator").validate(json.loads(captured.out))
        run = json.loads(captured.out)["runs"][0]
        assert [r["ruleId"] for r in run["results"]] == ["ASH101"]
        invocation = run["invocations"][0]
        assert invocation["executionSuccessful"] is False
        [note] = invocation["toolExecutionNotifications"]
        assert (note["level"], note["descriptor"]["id"]) == ("error", "internal-error")
        assert note["message"]["text"].startswith(f"Could not audit shop/m1.py: {message}")
        ids = [n["id"] for n in run["tool"]["driver"]["notifications"]]
        assert ids == ["cannot-audit", "internal-error"]
    else:
        lines = captured.out.splitlines()
        assert lines[0].startswith("::error file=shop/m0.py,line=5,")
        assert lines[1].startswith(
            "::error file=shop/m1.py,title=asgishift failed on this file::" + message
        )
        assert lines[-1].endswith("1 file could not be audited (see the annotations above).")


def test_a_crash_still_writes_the_baseline_and_exits_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    crash_m1: None,
) -> None:
    monkeypatch.chdir(_project(tmp_path))
    assert cli("--no-cache", "-j", "1", "--write-baseline", "baseline.json") == EXIT_ERROR
    entries = json.loads((tmp_path / "baseline.json").read_text(encoding="utf-8"))["findings"]
    assert [entry["path"] for entry in entries] == ["shop/m0.py"]
    assert capsys.readouterr().err.splitlines()[-1] == LAST_LINE


def test_internal_errors_are_named_in_the_last_line_five_at_most(
    fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed = [FileError(f"m{i}.py", 0, "internal error: ...", internal=True) for i in range(7)]
    fake_engine.result = AuditResult(
        findings=[finding()],
        errors=[FileError("broken.py", 2, "syntax error"), *crashed],
        files_scanned=9,
        root=fake_engine.result.root,
    )
    assert cli() == EXIT_ERROR
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith(
            "asgishift audit: error: internal error: asgishift's analysis of 7 files raised "
            "(m0.py, m1.py, m2.py, m3.py, m4.py and 2 more); their findings are unknown"
        )
    )
    # A file that cannot be parsed alone changes nothing.
    fake_engine.result.errors = fake_engine.result.errors[:1]
    assert cli() == 1


def test_a_crash_outside_the_per_file_analysis_exits_2_naming_the_step(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(_project(tmp_path))

    def link(*args: object) -> list[object]:
        raise RuntimeError("graph broke\nmore detail")

    monkeypatch.setattr(engine, "link", link)
    assert cli("--no-cache", "-j", "1") == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert err[-3:-1] == ["RuntimeError: graph broke", "more detail"]
    assert err[-1].startswith(
        "asgishift audit: error: internal error while auditing the files "
        "(asgishift/audit/engine.py:"
    )
    assert err[-1].endswith(
        " in link_closure): RuntimeError: graph broke; this is a bug in asgishift, please "
        "report it with the traceback above"
    )


def test_a_crash_writing_the_report_names_that_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from asgishift.audit.output import _json

    monkeypatch.chdir(_project(tmp_path))

    def build(report: object) -> object:
        raise TypeError("not serialisable")

    monkeypatch.setattr(_json, "build", build)
    assert cli("--no-cache", "-j", "1", "--format", "json", "--exit-zero") == EXIT_ERROR
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("asgishift audit: error: internal error while writing the json report")
    assert last.endswith(
        "TypeError: not serialisable; this is a bug in asgishift, please "
        "report it with the traceback above"
    )


def test_the_help_epilog_and_the_docs_list_the_declared_statuses() -> None:
    from asgishift.audit._cli import build_parser

    epilog = build_parser().epilog or ""
    cli_page = (SRC.parent / "docs" / "audit" / "cli.md").read_text(encoding="utf-8")
    assert [status for status, _ in EXIT_STATUSES] == [0, 1, 2]
    for status, meaning in EXIT_STATUSES:
        assert f"  {status}  {' '.join(meaning.split()[:4])}" in epilog
        assert f"  {status}  {' '.join(meaning.split()[:4])}" in cli_page
    assert "internal error" in epilog


# ---------------------------------------------------------------- real subprocess runs

#: Installed as ``sitecustomize`` in the audit's processes: ``shop.m1``'s analysis
#: raises, naming the process it ran in (a worker: not the process that started it).
SITECUSTOMIZE = textwrap.dedent(
    """
    import os

    import asgishift.audit._parse as parse

    os.environ.setdefault("AUDIT_CRASH_MAIN_PID", str(os.getpid()))
    real = parse.summarize


    def summarize(tree, module, is_package):
        if module == "shop.m1":
            main = os.environ["AUDIT_CRASH_MAIN_PID"] == str(os.getpid())
            raise KeyError("in the main process" if main else "in a worker process")
        return real(tree, module, is_package)


    parse.summarize = summarize
    """
)


def _crashing_env(tmp_path: Path) -> dict[str, str]:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join([str(shim), str(SRC)])}


@pytest.mark.parametrize(
    ("count", "jobs", "where"),
    [
        pytest.param(2, "1", "in the main process", id="in-process"),
        # More files than PARALLEL_MIN_FILES: the pool parses them.
        pytest.param(_parse.PARALLEL_MIN_FILES + 6, "2", "in a worker process", id="workers"),
    ],
)
def test_the_real_command_exits_2_on_a_crash_and_reports_the_other_files(
    tmp_path: Path, count: int, jobs: str, where: str
) -> None:
    project = _project(tmp_path / "proj", count)
    env = _crashing_env(tmp_path)
    run = run_audit("--no-cache", "-j", jobs, "--format", "json", cwd=project, env=env)
    assert run.returncode == 2, run.stderr
    document = run.json()
    paths = {f["path"] for f in document["findings"]}
    assert paths == {f"shop/m{i}.py" for i in range(count) if i != 1}
    [error] = document["errors"]
    assert error["path"] == "shop/m1.py"
    assert error["message"].startswith(
        f"internal error: asgishift's analysis of this file raised KeyError: '{where}'"
    )
    assert "internal error analysing shop/m1.py" in run.stderr
    assert "Traceback (most recent call last)" in run.stderr
    assert f"KeyError: '{where}'" in run.stderr
    assert run.stderr.splitlines()[-1] == LAST_LINE
    # --exit-zero does not hide it; a cached run analyses the file again.
    again = run_audit("-j", jobs, "--exit-zero", cwd=project, env=env)
    assert again.returncode == 2, again.stderr
    assert "internal error analysing shop/m1.py" in again.stderr


def test_the_real_command_exits_2_when_the_run_itself_crashes(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import asgishift.audit._link as link\n\n\n"
        "def broken(*args):\n    raise ZeroDivisionError('linking')\n\n\n"
        "link.link = broken\n",
        encoding="utf-8",
    )
    env = {"PYTHONPATH": os.pathsep.join([str(shim), str(SRC)])}
    run = run_audit("--no-cache", cwd=project, env=env)
    assert run.returncode == 2
    assert run.stdout == ""
    err = run.stderr.splitlines()
    assert "Traceback (most recent call last):" in err
    assert err[-2] == "ZeroDivisionError: linking"
    assert err[-1].startswith("asgishift audit: error: internal error while auditing the files (")
