"""The ``asgishift audit`` handler in-process, with the engine replaced by a fake.

These pin the CLI's own decisions (exit status, flag-to-config mapping, baseline
filtering, where output goes) independently of what the analysis finds; the
subprocess tests in ``test_cli_e2e.py`` run the real engine.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from audit_cli_helpers import CHAIN, FakeEngine, cli, finding

from asgishift.audit._model import AuditResult, FileError, Finding


def set_findings(
    fake: FakeEngine, *findings_: Finding, errors: list[FileError] | None = None
) -> None:
    fake.result = AuditResult(
        findings=list(findings_),
        errors=errors or [],
        files_scanned=3,
        root=fake.result.root,
    )


@pytest.mark.parametrize(
    ("found", "flags", "status"),
    [
        pytest.param(False, [], 0, id="clean"),
        pytest.param(True, [], 1, id="findings"),
        pytest.param(True, ["--exit-zero"], 0, id="exit-zero"),
        pytest.param(False, ["--exit-zero"], 0, id="clean-exit-zero"),
    ],
)
def test_exit_status(
    fake_engine: FakeEngine,
    capsys: pytest.CaptureFixture[str],
    found: bool,
    flags: list[str],
    status: int,
) -> None:
    if found:
        set_findings(fake_engine, finding())
    assert cli(*flags) == status
    out = capsys.readouterr().out
    assert ("ASH101" in out) is found


def test_unparseable_files_are_reported_but_do_not_fail(
    fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    set_findings(fake_engine, errors=[FileError("bad.py", 2, "invalid syntax (bad.py, line 2)")])
    assert cli() == 0
    captured = capsys.readouterr()
    assert captured.err == "bad.py:2: cannot audit: invalid syntax (bad.py, line 2)\n"
    assert "bad.py" not in captured.out
    assert "1 file could not be audited" in captured.out


def test_default_path_and_root(fake_engine: FakeEngine, tmp_path: Path) -> None:
    assert cli() == 0
    ((paths, root, config),) = fake_engine.calls
    assert paths == [tmp_path]
    assert root == tmp_path
    assert config.cache_dir == str(tmp_path / ".asgishift_cache")


def test_flags_override_pyproject(fake_engine: FakeEngine, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.asgishift.audit]\nselect = ["ASH2"]\nignore = ["ASH105"]\njobs = 4\n',
        encoding="utf-8",
    )
    assert (
        cli(
            "--select", "ash1, ASH201", "--ignore", "ASH102", "-j", "2", "--no-cache", "--no-chains"
        )
        == 0
    )
    ((_, _, config),) = fake_engine.calls
    assert config.select == ["ASH1", "ASH201"]
    assert config.ignore == ["ASH105", "ASH102"]
    assert config.jobs == 2
    assert config.cache_dir is None
    assert config.follow_chains is False


def test_pyproject_used_without_flags(fake_engine: FakeEngine, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.asgishift.audit]\nselect = ["ASH2"]\njobs = 4\n', encoding="utf-8"
    )
    assert cli() == 0
    ((_, _, config),) = fake_engine.calls
    assert (config.select, config.jobs, config.follow_chains) == (["ASH2"], 4, True)


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        pytest.param(
            "", ["--select", "ASH9"], "--select: unknown rule code or prefix 'ASH9'", id="select"
        ),
        pytest.param(
            "", ["--ignore", "XYZ"], "--ignore: unknown rule code or prefix 'XYZ'", id="ignore"
        ),
        pytest.param(
            'select = ["ASH77"]',
            [],
            "[tool.asgishift.audit] select: unknown rule code",
            id="config-select",
        ),
        pytest.param(
            'per-file-ignores = { "t/*" = ["NOPE"] }', [], "per-file-ignores 't/*'", id="config-pfi"
        ),
        pytest.param("jobs = 'x'", [], "jobs must be an integer", id="config-type"),
        pytest.param("", ["missing_dir"], "path 'missing_dir' does not exist", id="missing-path"),
        pytest.param(
            "", ["--baseline", "nope.json"], "baseline file does not exist", id="baseline"
        ),
        pytest.param(
            "", ["--config", "other.toml"], "config file does not exist", id="config-missing"
        ),
    ],
)
def test_usage_errors_exit_2(
    fake_engine: FakeEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    args: list[str],
    expected: str,
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.asgishift.audit]\n{setup}\n", encoding="utf-8")
    assert cli(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("asgishift audit: error: ")
    assert expected in err
    assert fake_engine.calls == []


def test_argparse_rejects_negative_jobs(
    fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--jobs", "-1") == 2
    assert "must be 0 (one per CPU) or more" in capsys.readouterr().err


def test_path_outside_root_is_a_usage_error(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "other").mkdir()
    assert cli("inner", "other") == 2
    assert "is outside the project root" in capsys.readouterr().err


def test_output_file_has_no_colour_and_stdout_is_empty(
    fake_engine: FakeEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    set_findings(fake_engine, finding())
    assert cli("--output", "report.txt") == 1
    assert capsys.readouterr().out == ""
    text = (tmp_path / "report.txt").read_text(encoding="utf-8")
    assert "ASH101" in text
    assert "\x1b[" not in text


def test_output_into_missing_directory(
    fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--output", "no/such/dir/report.json", "--format", "json") == 2
    assert "no/such/dir/report.json" in capsys.readouterr().err


def test_write_then_apply_baseline(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_findings(
        fake_engine, finding(line=3), finding("ASH201", "shop/orm.py", 4, snippet="B.objects.get()")
    )
    assert cli("--write-baseline", "baseline.json") == 0
    assert capsys.readouterr().err == "Wrote 2 findings to baseline.json.\n"
    assert len(json.loads((tmp_path / "baseline.json").read_text("utf-8"))["findings"]) == 2

    # Same findings, lines moved: all suppressed.
    set_findings(
        fake_engine,
        finding(line=30),
        finding("ASH201", "shop/orm.py", 40, snippet="B.objects.get()"),
    )
    assert cli("--baseline", "baseline.json", "--format", "json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["findings"] == 0
    assert summary["baseline"] == {"matched": 2, "stale": 0}

    # One new finding: reported, exit 1; the fixed ORM call shows as stale.
    set_findings(fake_engine, finding(line=30), finding(line=31, snippet="time.sleep(9)"))
    assert cli("--baseline", "baseline.json", "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert [f["snippet"] for f in document["findings"]] == ["time.sleep(9)"]
    assert document["summary"]["baseline"] == {"matched": 1, "stale": 1}


def test_baseline_entries_outside_the_audited_paths_are_left_alone(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "ab").mkdir()
    set_findings(fake_engine, finding(path="a/x.py"), finding(path="ab/y.py"))
    assert cli("--write-baseline", "baseline.json") == 0
    capsys.readouterr()

    # Auditing a/ only: ab/y.py's entry is neither stale nor dropped by a rewrite.
    set_findings(fake_engine, finding(path="a/x.py"))
    assert cli("a", "--baseline", "baseline.json", "--format", "json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["baseline"] == {"matched": 1, "stale": 0}
    set_findings(fake_engine, finding(path="a/x.py"), finding(path="a/x.py", line=9))
    assert cli("a", "--write-baseline", "baseline.json") == 0
    assert "(1 kept for files not audited)" in capsys.readouterr().err
    entries = json.loads((tmp_path / "baseline.json").read_text("utf-8"))["findings"]
    assert sorted(e["path"] for e in entries) == ["a/x.py", "a/x.py", "ab/y.py"]

    # The whole project again: the entry of a file that no longer has a finding is stale.
    set_findings(fake_engine, finding(path="a/x.py"), finding(path="a/x.py", line=9))
    assert cli("--baseline", "baseline.json", "--format", "json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["baseline"] == {"matched": 2, "stale": 1}


def test_a_finding_reached_through_calls_belongs_to_the_file_of_its_async_def(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The hazard is in shop/pay.py, the async def reaching it in shop/views.py.
    (tmp_path / "shop").mkdir()
    for name in ("views.py", "pay.py"):
        (tmp_path / "shop" / name).write_text("", encoding="utf-8")
    reached = finding(path="shop/pay.py", line=4, chain=CHAIN)
    set_findings(fake_engine, reached)
    assert cli("--write-baseline", "baseline.json") == 0
    capsys.readouterr()

    # Auditing shop/pay.py alone does not reach it (no async def there): the entry
    # is not "no longer found", and a rewrite for that file keeps it.
    set_findings(fake_engine)
    assert cli("shop/pay.py", "--baseline", "baseline.json", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["baseline"] == {
        "matched": 0,
        "stale": 0,
    }
    assert cli("shop/pay.py", "--write-baseline", "baseline.json") == 0
    capsys.readouterr()
    entries = json.loads((tmp_path / "baseline.json").read_text("utf-8"))["findings"]
    assert [e["path"] for e in entries] == ["shop/pay.py"]

    # Auditing shop/views.py finds it again: rewritten once, not kept a second time.
    set_findings(fake_engine, reached)
    assert cli("shop/views.py", "--write-baseline", "baseline.json") == 0
    capsys.readouterr()
    entries = json.loads((tmp_path / "baseline.json").read_text("utf-8"))["findings"]
    assert [e["path"] for e in entries] == ["shop/pay.py"]
    assert cli("--baseline", "baseline.json", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["baseline"] == {
        "matched": 1,
        "stale": 0,
    }

    # Fixed: a run over shop/views.py says its entry is no longer found.
    set_findings(fake_engine)
    assert cli("shop/views.py", "--baseline", "baseline.json", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["baseline"] == {
        "matched": 0,
        "stale": 1,
    }


def test_an_entry_without_entry_path_is_neither_lost_nor_duplicated(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A baseline written before entries recorded the file of their async def.
    (tmp_path / "shop").mkdir()
    for name in ("views.py", "pay.py"):
        (tmp_path / "shop" / name).write_text("", encoding="utf-8")
    reached = finding(path="shop/pay.py", line=4, chain=CHAIN)
    set_findings(fake_engine, reached)
    assert cli("--write-baseline", "baseline.json") == 0
    document = json.loads((tmp_path / "baseline.json").read_text("utf-8"))
    for entry in document["findings"]:
        del entry["entry_path"]
    (tmp_path / "baseline.json").write_text(json.dumps(document), encoding="utf-8")
    capsys.readouterr()

    set_findings(fake_engine)
    assert cli("shop/pay.py", "--baseline", "baseline.json", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["baseline"]["stale"] == 0
    assert cli("shop/pay.py", "--write-baseline", "baseline.json") == 0
    set_findings(fake_engine, reached)
    assert cli("shop/views.py", "--write-baseline", "baseline.json") == 0
    capsys.readouterr()
    entries = json.loads((tmp_path / "baseline.json").read_text("utf-8"))["findings"]
    assert [(e["path"], e.get("entry_path")) for e in entries] == [("shop/pay.py", "shop/views.py")]


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(["--select", "ASH1"], id="select"),
        pytest.param(["--ignore", "ASH2"], id="ignore"),
        pytest.param(["--no-chains"], id="no-chains"),
    ],
)
def test_entries_of_what_the_flags_leave_out_are_left_alone(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    direct = finding(path="shop/views.py", line=3)
    orm = finding("ASH201", "shop/orm.py", 4, snippet="B.objects.get()", chain=CHAIN)
    set_findings(fake_engine, direct, orm)
    assert cli("--write-baseline", "baseline.json") == 0
    capsys.readouterr()

    # A run that does not look for the ORM call through a chain: its entry is
    # not "no longer found", and a rewrite keeps it.
    set_findings(fake_engine, direct)
    assert cli(*flags, "--baseline", "baseline.json", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["baseline"] == {
        "matched": 1,
        "stale": 0,
    }
    assert cli(*flags, "--write-baseline", "baseline.json") == 0
    capsys.readouterr()
    set_findings(fake_engine, direct, orm)
    assert cli("--baseline", "baseline.json", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["baseline"] == {
        "matched": 2,
        "stale": 0,
    }


def test_rewriting_part_of_an_old_version_baseline_is_refused(
    fake_engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    entries = [{"fingerprint": "0" * 32, "path": "b/y.py"}]
    old = json.dumps({"version": 1, "findings": entries})
    (tmp_path / "baseline.json").write_text(old, encoding="utf-8")
    set_findings(fake_engine, finding(path="a/x.py"))
    assert cli("a", "--write-baseline", "baseline.json") == 2
    assert "rewrite it for the whole project first" in capsys.readouterr().err
    assert (tmp_path / "baseline.json").read_text(encoding="utf-8") == old


def test_explain_unknown_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--explain", "ASH999") == 2
    err = capsys.readouterr().err
    assert "unknown rule code 'ASH999'; known codes: ASH101" in err


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("fmt", "tty", "shown"),
    [
        pytest.param("text", True, True, id="text-on-terminal"),
        pytest.param("text", False, False, id="text-piped"),
        pytest.param("json", True, False, id="json-on-terminal"),
    ],
)
def test_progress_bar_only_for_people(
    fake_engine: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    tty: bool,
    shown: bool,
) -> None:
    stderr = _TTY() if tty else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    assert cli("--format", fmt) == 0
    assert fake_engine.progress_given == [shown]
    assert ("auditing" in stderr.getvalue()) is shown


def test_whole_project_is_the_default_and_reachable_only_turns_it_off(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.asgishift.audit]\n", encoding="utf-8")
    assert cli() == 0
    assert cli("--reachable-only") == 0
    (_, _, default), (_, _, reachable) = fake_engine.calls
    assert (default.whole_project, reachable.whole_project) == (True, False)


def test_whole_project_key_in_pyproject(fake_engine: FakeEngine, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.asgishift.audit]\nwhole-project = false\n", encoding="utf-8"
    )
    assert cli() == 0
    ((_, _, config),) = fake_engine.calls
    assert config.whole_project is False
