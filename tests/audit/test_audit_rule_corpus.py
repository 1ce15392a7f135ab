"""The rule corpus: one file per rule, each finding marked with its code and column.

Every file in ``rules_corpus/`` is named after its rule (``ash101_sleep.py``)
and marks each expected finding on its line as ``# error: ASH101:5`` (code and
1-based column; several separated by commas), in the manner of flake8-async's
test files. Lines marked ``# ok`` are negative controls. The corpus is audited
as one project (``ash2_models.py`` holds the models the ORM files import), and
the set of findings must equal the set of marks. Then the same code written
sync-only (no ``async``/``await``) must stay silent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig, AuditResult
from asgishift.audit.engine import audit_paths
from asgishift.audit.rules import all_rules

CORPUS = Path(__file__).parent / "rules_corpus"
ERROR_RE = re.compile(r"#\s*error:\s*(?P<marks>ASH\d{3}:\d+(?:\s*,\s*ASH\d{3}:\d+)*)")
CONFIG = AuditConfig(cache_dir=None, extra_blocking=["legacy_lib.slow_lookup"])
#: Rules about sync code by nature: their findings stay in the sync-only version.
SYNC_RULES = {"ASH304", "ASH305"}


def _marks(root: Path) -> set[tuple[str, int, str, int]]:
    found = set()
    for path in sorted(root.glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = ERROR_RE.search(line)
            if match is None:
                continue
            for mark in re.split(r"\s*,\s*", match.group("marks")):
                code, col = mark.split(":")
                found.add((path.name, number, code, int(col)))
    return found


def _found(result: AuditResult) -> set[tuple[str, int, str, int]]:
    return {(f.path, f.line, f.code, f.col) for f in result.findings}


@pytest.fixture(scope="module")
def result() -> AuditResult:
    return audit_paths([CORPUS], root=CORPUS, config=CONFIG)


def test_every_rule_has_a_corpus_file() -> None:
    names = {path.name[:6].upper() for path in CORPUS.glob("ash*.py")}
    assert {rule.code for rule in all_rules()} <= names


def test_findings_equal_the_error_marks(result: AuditResult) -> None:
    assert result.errors == []
    expected = _marks(CORPUS)
    found = _found(result)
    assert sorted(found - expected) == [], "unexpected findings"
    assert sorted(expected - found) == [], "missed findings"


def test_every_rule_fires_in_its_own_file(result: AuditResult) -> None:
    by_file = {(f.path[:6].upper(), f.code) for f in result.findings}
    for rule in all_rules():
        assert (rule.code, rule.code) in by_file, rule.code


def _sync_only(source: str) -> str:
    """Rewrite a corpus file as sync code: no async defs, awaits or async wrappers."""
    source = re.sub(r"\basync (def|for|with)\b", r"\1", source)
    source = re.sub(r"\bawait ", "", source)
    source = re.sub(r"\bsync_to_async\((\w+)(?:,[^)]*)?\)\(", r"\1(", source)
    return source.replace("asyncio.sleep(", "time.sleep(")


def test_the_same_code_written_sync_only_stays_silent(tmp_path: Path) -> None:
    for path in CORPUS.glob("*.py"):
        (tmp_path / path.name).write_text(_sync_only(path.read_text("utf-8")), "utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    assert result.errors == []
    assert {f.code for f in result.findings} <= SYNC_RULES
    assert _found(result) == {m for m in _marks(CORPUS) if m[2] in SYNC_RULES}


def test_ash301_names_the_assignment_that_made_the_wrapper(result: AuditResult) -> None:
    lines = (CORPUS / "ash301_async_to_sync.py").read_text("utf-8").splitlines()
    assignment = next(i for i, line in enumerate(lines, 1) if "self.send = async_to_sync" in line)
    (finding,) = [
        f for f in result.findings if f.code == "ASH301" and "self.send(message)" in f.snippet
    ]
    assert finding.args["why"] == (
        f" (self.send = async_to_sync(...) at ash301_async_to_sync.py:{assignment})"
    )
    decorated = next(
        f for f in result.findings if f.snippet == "return fetch_sync()  # error: ASH301:12"
    )
    assert "decorated with @async_to_sync at ash301_async_to_sync.py:" in decorated.args["why"]


def test_binary_files_have_their_exact_type(result: AuditResult) -> None:
    calls = {f.args["call"] for f in result.findings if f.path == "ash105_files.py"}
    assert "io.BufferedWriter.write" in calls
    assert not any(call.startswith("io.TextIOWrapper") for call in calls)


def test_a_helper_reached_from_two_call_sites_is_two_findings(tmp_path: Path) -> None:
    shutil.copy(CORPUS / "ash101_sleep.py", tmp_path / "ash101_sleep.py")
    (tmp_path / "more.py").write_text(
        "from ash101_sleep import backoff\n\n\nasync def retry():\n    backoff(3)\n", "utf-8"
    )
    result = audit_paths([tmp_path], root=tmp_path, config=CONFIG)
    backoff = [f for f in result.findings if "2**attempt" in f.snippet]
    assert sorted(f.chain[0].function for f in backoff) == [
        "ash101_sleep.poll",
        "more.retry",
    ]
    assert all(f.chain[-1].line == f.line for f in backoff)


def test_flake8_async_blocking_findings_are_a_subset_of_ours(result: AuditResult) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flake8_async",
            "--enable",
            "ASYNC2",
            *map(str, CORPUS.glob("*.py")),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    theirs = set()
    for line in proc.stdout.splitlines():
        match = re.match(r"(?P<path>.+?):(?P<line>\d+):\d+: ASYNC2\d\d ", line)
        assert match is not None, line
        theirs.add((Path(match["path"]).name, int(match["line"])))
    assert theirs, "flake8-async found nothing: the comparison would be vacuous"
    assert sorted(theirs - {(f.path, f.line) for f in result.findings}) == []
