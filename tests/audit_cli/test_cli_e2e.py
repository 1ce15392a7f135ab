"""The real ``python -m asgishift audit`` in a subprocess on small temporary projects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from audit_cli_helpers import run_audit

from asgishift.audit.output._json import schema as json_schema

CLEAN = "import asyncio\n\n\nasync def view(request):\n    await asyncio.sleep(0)\n"


def test_clean_project_exits_0(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "app.py").write_text(CLEAN, encoding="utf-8")
    run = run_audit(cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("No blocking calls found; 1 file scanned.")


def test_findings_exit_1_and_exit_zero(project: Path) -> None:
    run = run_audit(cwd=project)
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines()[0] == "shop/views.py"
    assert "5:5  ASH101" in run.stdout
    assert run_audit("--exit-zero", cwd=project).returncode == 0


def test_no_colour_when_not_a_tty(project: Path) -> None:
    run = run_audit(cwd=project)
    assert "ASH101" in run.stdout
    assert "\x1b[" not in run.stdout
    forced = run_audit(cwd=project, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout


def test_nonexistent_path_exits_2_naming_it(project: Path) -> None:
    run = run_audit("shop", "does/not/exist.py", cwd=project)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.strip() == "asgishift audit: error: path 'does/not/exist.py' does not exist"


def test_unknown_select_code_exits_2(project: Path) -> None:
    run = run_audit("--select", "ASH1,BOGUS", cwd=project)
    assert run.returncode == 2
    assert "unknown rule code or prefix 'BOGUS'" in run.stderr


def test_unknown_config_key_exits_2(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.asgishift.audit]\nselcet = ['ASH1']\n", encoding="utf-8"
    )
    run = run_audit(cwd=project)
    assert run.returncode == 2
    assert str(project / "pyproject.toml") in run.stderr
    assert "unknown key 'selcet'" in run.stderr
    assert "did you mean 'select'?" in run.stderr


def test_bad_flag_is_argparse_usage_error(project: Path) -> None:
    run = run_audit("--format", "xml", cwd=project)
    assert run.returncode == 2
    assert "invalid choice: 'xml'" in run.stderr


def test_explain_prints_rule(tmp_path: Path) -> None:
    run = run_audit("--explain", "ash101", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.startswith("# ASH101: `blocking-sleep`")
    for section in (
        "**What it does.**",
        "**Why is this bad?**",
        "**Example:**",
        "**Use instead:**",
    ):
        assert section in run.stdout
    by_name = run_audit("--explain", "blocking-sleep", cwd=tmp_path)
    assert by_name.returncode == 0
    assert by_name.stdout == run.stdout
    unknown = run_audit("--explain", "ASH000", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "unknown rule code 'ASH000'" in unknown.stderr


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_machine_formats_on_a_real_project(project: Path, fmt: str) -> None:
    run = run_audit("--format", fmt, cwd=project)
    assert run.returncode == 1, run.stderr
    if fmt == "json":
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.validate(run.json(), json_schema())
        (found,) = run.json()["findings"]
        assert (found["code"], found["path"], found["line"]) == ("ASH101", "shop/views.py", 5)
    elif fmt == "sarif":
        (result,) = run.json()["runs"][0]["results"]
        assert result["ruleId"] == "ASH101"
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "shop/views.py"
        assert location["region"]["startLine"] == 5
    else:
        assert run.stdout.startswith("::error file=shop/views.py,line=5,col=5,")


def test_unparseable_file_reported_without_changing_status(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "app.py").write_text(CLEAN, encoding="utf-8")
    (tmp_path / "broken.py").write_text("def oops(:\n    pass\n", encoding="utf-8")
    run = run_audit(cwd=tmp_path)
    assert run.returncode == 0
    assert "broken.py" in run.stderr
    assert "cannot audit" in run.stderr
    sarif = run_audit("--format", "sarif", cwd=tmp_path)
    (note,) = sarif.json()["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    uri = note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "broken.py"


def test_baseline_round_trip_with_moved_and_new_findings(project: Path) -> None:
    views = project / "shop" / "views.py"
    written = run_audit("--write-baseline", "baseline.json", cwd=project)
    assert written.returncode == 0, written.stderr
    assert "Wrote 1 finding to baseline.json." in written.stderr
    assert run_audit("--baseline", "baseline.json", cwd=project).returncode == 0

    # Code added above the recorded sleep moves it down: still suppressed.
    views.write_text(
        "import time\n\nLIMIT = 3\n\n\ndef helper():\n    return LIMIT\n\n\n"
        "async def checkout(request):\n    time.sleep(1)\n    return 'ok'\n",
        encoding="utf-8",
    )
    moved = run_audit("--baseline", "baseline.json", "--format", "json", cwd=project)
    assert moved.returncode == 0, moved.stdout
    assert moved.json()["summary"]["baseline"] == {"matched": 1, "stale": 0}

    # A new blocking call in another view: reported, exit 1.
    with views.open("a", encoding="utf-8") as handle:
        handle.write("\n\nasync def refund(request):\n    time.sleep(2)\n")
    new = run_audit("--baseline", "baseline.json", "--format", "json", cwd=project)
    assert new.returncode == 1
    document = new.json()
    assert [(f["line"], f["snippet"]) for f in document["findings"]] == [(16, "time.sleep(2)")]
    assert document["summary"]["baseline"] == {"matched": 1, "stale": 0}


def test_output_file(project: Path) -> None:
    run = run_audit("--format", "json", "--output", "out.json", cwd=project)
    assert run.returncode == 1
    assert run.stdout == ""
    assert json.loads((project / "out.json").read_text("utf-8"))["summary"]["findings"] == 1


def test_noqa_suppresses_named_rule(project: Path) -> None:
    views = project / "shop" / "views.py"
    views.write_text(
        views.read_text("utf-8").replace("time.sleep(1)", "time.sleep(1)  # noqa: ASH101"),
        encoding="utf-8",
    )
    run = run_audit(cwd=project)
    assert run.returncode == 0, run.stdout


def test_sarif_with_chain_from_real_engine_validates(tmp_path: Path, sarif_validator: Any) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("", encoding="utf-8")
    (shop / "pay.py").write_text("import time\n\n\ndef charge():\n    time.sleep(1)\n", "utf-8")
    (shop / "views.py").write_text(
        "from shop.pay import charge\n\n\nasync def checkout(request):\n    charge()\n", "utf-8"
    )
    (tmp_path / "broken.py").write_text("def (:\n", encoding="utf-8")
    run = run_audit("--format", "sarif", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    document = run.json()
    errors = [e.message for e in sarif_validator.iter_errors(document)]
    assert errors == []
    (result,) = document["runs"][0]["results"]
    hops = result["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [h["location"]["physicalLocation"]["artifactLocation"]["uri"] for h in hops] == [
        "shop/views.py",
        "shop/pay.py",
    ]
    assert document["runs"][0]["invocations"][0]["toolExecutionNotifications"]


def test_machine_formats_do_not_import_rich(project: Path) -> None:
    # Startup cost: rich is only for the text format, jsonschema only for tests.
    code = (
        "import sys; from asgishift.cli import main;"
        "status = main(['audit', '--format', 'sarif', '-o', 'out.sarif']);"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'jsonschema'});"
        "print(status, ','.join(heavy) or '-')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
        timeout=120,
    )
    assert done.stdout.split() == ["1", "-"], done.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_non_utf8_console_does_not_crash(project: Path, fmt: str) -> None:
    (project / "shop" / "caf\u00e9.py").write_text(
        "import time\n\n\nasync def menu():\n    time.sleep(1)  # cr\u00e8me\n", encoding="utf-8"
    )
    run = run_audit("--format", fmt, cwd=project, env={"PYTHONIOENCODING": "ascii"})
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    if fmt == "json":
        assert "shop/caf\u00e9.py" in [f["path"] for f in run.json()["findings"]]
    elif fmt == "sarif":
        results = run.json()["runs"][0]["results"]
        uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
        assert "shop/caf%C3%A9.py" in uris  # RFC 3986 percent-encoding of UTF-8
    else:
        assert "caf\\xe9.py" in run.stdout


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_link_to_a_directory_does_not_take_the_real_directory_s_place(project: Path) -> None:
    # "a_link" sorts before "shop": the real path must still be the one reported
    # (annotations, SARIF and baseline fingerprints name it), the link the duplicate.
    os.symlink(project / "shop", project / "a_link", target_is_directory=True)
    run = run_audit("--format", "json", cwd=project)
    assert run.returncode == 1, run.stderr
    document = run.json()
    assert [f["path"] for f in document["findings"]] == ["shop/views.py"]
    assert [(e["path"], "symlink loop" in e["message"]) for e in document["errors"]] == [
        ("a_link", True)
    ]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_loop_named_py_is_reported(project: Path) -> None:
    os.symlink(project / "shop" / "b.py", project / "shop" / "a.py")
    os.symlink(project / "shop" / "a.py", project / "shop" / "b.py")
    run = run_audit("--format", "json", cwd=project)
    assert run.returncode == 1, run.stderr
    errors = run.json()["errors"]
    assert [(e["path"], "symlink loop" in e["message"]) for e in errors] == [
        ("shop/a.py", True),
        ("shop/b.py", True),
    ]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    ("flags", "clean", "status"),
    [
        pytest.param([], False, 1, id="findings"),
        pytest.param(["--exit-zero"], False, 0, id="exit-zero"),
        pytest.param([], True, 0, id="clean"),
    ],
)
def test_a_reader_that_leaves_does_not_change_the_exit_status(
    project: Path, flags: list[str], clean: bool, status: int, fmt: str
) -> None:
    # `asgishift audit --exit-zero | head -1` under `set -o pipefail` must not fail the job.
    if clean:
        (project / "shop" / "views.py").write_text(CLEAN, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    child = subprocess.Popen(
        [sys.executable, "-m", "asgishift", "audit", "--format", fmt, *flags],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the report is written
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == status, stderr
    assert b"Traceback" not in stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(60)
def test_a_fifo_given_as_a_path_is_called_what_it_is(project: Path) -> None:
    os.mkfifo(project / "shop" / "pipe.py")
    run = run_audit("shop/pipe.py", "--format", "json", cwd=project)
    assert run.returncode == 0, run.stderr
    assert [(e["path"], e["message"]) for e in run.json()["errors"]] == [
        ("shop/pipe.py", "not a regular file; remove it or add it to `exclude`")
    ]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_link_to_a_file_in_the_tree_is_not_audited_twice(project: Path) -> None:
    # "a_views.py" sorts before "views.py": the real file is still the one reported.
    os.symlink(project / "shop" / "views.py", project / "shop" / "a_views.py")
    run = run_audit("--format", "json", cwd=project)
    assert run.returncode == 1, run.stderr
    document = run.json()
    assert [f["path"] for f in document["findings"]] == ["shop/views.py"]
    assert [(e["path"], "already audited" in e["message"]) for e in document["errors"]] == [
        ("shop/a_views.py", True)
    ]
