"""The fixture project: findings equal the ``# expect:`` marks, chains are right.

Each expected finding is marked on its own line in ``fixtures/`` with
``# expect: ASH101`` (several codes separated by commas); the marks are read
with a regular expression. Lines marked ``# ok`` are negative controls
(wrapped in ``sync_to_async``, sync code never reached from async...); the
exact-set comparison makes any finding on them fail the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig, AuditResult, Finding
from asgishift.audit.engine import audit_paths
from asgishift.audit.rules import get_rule

FIXTURES = Path(__file__).parent / "fixtures"
EXPECT_RE = re.compile(r"#.*\bexpect:\s*(?P<codes>ASH\d{3}(?:\s*,\s*ASH\d{3})*)")
OK_RE = re.compile(r"#\s*ok\b")


def _marks(regex: re.Pattern[str]) -> dict[tuple[str, int], list[str]]:
    """Return ``{(path, line): [codes]}`` for every marked line of the fixtures."""
    marks: dict[tuple[str, int], list[str]] = {}
    for path in sorted(FIXTURES.rglob("*.py")):
        rel = path.relative_to(FIXTURES).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = regex.search(line)
            if match is not None:
                codes = match.groupdict().get("codes") or ""
                marks[(rel, number)] = re.split(r"\s*,\s*", codes) if codes else []
    return marks


def _audit(**overrides: object) -> AuditResult:
    config = AuditConfig(cache_dir=None, **overrides)  # type: ignore[arg-type]
    return audit_paths([FIXTURES], root=FIXTURES, config=config)


@pytest.fixture(scope="module")
def result() -> AuditResult:
    return _audit()


def _find(result: AuditResult, path: str, line: int, code: str) -> Finding:
    return next(f for f in result.findings if (f.path, f.line, f.code) == (path, line, code))


def _line_of(path: str, text: str) -> int:
    lines = (FIXTURES / path).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_findings_equal_the_expect_marks(result: AuditResult) -> None:
    expected = {(p, line, code) for (p, line), codes in _marks(EXPECT_RE).items() for code in codes}
    found = {(f.path, f.line, f.code) for f in result.findings}
    assert result.errors == []
    assert sorted(found - expected) == [], "unexpected findings"
    assert sorted(expected - found) == [], "missed findings"


def test_every_family_is_covered(result: AuditResult) -> None:
    families = {f.code[:4] for f in result.findings}
    assert families == {"ASH1", "ASH2", "ASH3", "ASH4"}
    assert len(_marks(OK_RE)) >= 20


def test_ok_lines_have_no_findings(result: AuditResult) -> None:
    flagged = {(f.path, f.line) for f in result.findings}
    ok_lines = {key for key, codes in _marks(OK_RE).items() if not codes}
    assert flagged & ok_lines == set()


def test_every_finding_message_formats(result: AuditResult) -> None:
    for finding in result.findings:
        text = get_rule(finding.code).message.format(**finding.args)
        assert "{" not in text, (finding, text)
        assert finding.args["call"] in text


def test_chain_across_modules_and_reexport(result: AuditResult) -> None:
    finding = _find(
        result, "shop/clients.py", _line_of("shop/clients.py", "requests.get("), "ASH102"
    )
    hops = [(h.path, h.function, h.callee) for h in finding.chain]
    assert hops == [
        ("shop/views.py", "shop.views.profile_view", "shop.load_profile_reexport"),
        ("shop/helpers.py", "shop.helpers.load_profile", "shop.clients.Client.fetch"),
        ("shop/clients.py", "shop.clients.Client.fetch", "requests.get"),
    ]
    assert finding.chain[-1].line == finding.line
    assert finding.args["call"] == "requests.get"
    assert finding.snippet == "return requests.get(self.base + path)  # expect: ASH102"


def test_shortest_chain_is_reported(result: AuditResult) -> None:
    # nap() is reached from everything_view through two_deep -> wait_a_bit -> nap.
    finding = _find(result, "shop/clients.py", _line_of("shop/clients.py", "t.sleep("), "ASH101")
    functions = [h.function for h in finding.chain]
    assert functions == [
        "shop.views.everything_view",
        "shop.helpers.two_deep",
        "shop.helpers.wait_a_bit",
        "shop.clients.nap",
    ]


def test_direct_hazard_has_no_chain(result: AuditResult) -> None:
    finding = _find(
        result, "shop/views.py", _line_of("shop/views.py", "time.sleep(1)  # expect"), "ASH101"
    )
    assert finding.chain == ()
    assert (finding.col, finding.end_line) == (5, finding.line)
    assert finding.end_col == finding.col + len("time.sleep(1)")


def test_follow_chains_off_reports_only_direct_hazards() -> None:
    result = _audit(follow_chains=False)
    assert all(len(f.chain) <= 2 for f in result.findings)
    assert all(f.chain == () for f in result.findings if f.code < "ASH300")
    paths = {f.path for f in result.findings if f.code.startswith("ASH1")}
    assert paths == {"shop/views.py"}


def test_select_ignore_and_per_file_ignores() -> None:
    only_orm = _audit(
        select=["ASH2"], ignore=["ASH203"], per_file_ignores={"shop/models.py": ["ASH"]}
    )
    codes = {f.code for f in only_orm.findings}
    assert codes == {"ASH201", "ASH202", "ASH204", "ASH205", "ASH206"}
    assert "shop/models.py" not in {f.path for f in only_orm.findings}


def test_exclude_glob_skips_files() -> None:
    result = _audit(exclude=["shop/flask*.py", "shop/loops.py"])
    assert {f.path for f in result.findings}.isdisjoint({"shop/flaskapp.py", "shop/loops.py"})
    assert {f.code for f in result.findings} >= {"ASH101", "ASH201"}


def test_extra_safe_stops_descent() -> None:
    result = _audit(extra_safe=["shop.helpers.load_profile"])
    line = _line_of("shop/clients.py", "requests.get(")
    assert ("shop/clients.py", line) not in {(f.path, f.line) for f in result.findings}


def test_extra_blocking_is_reported_as_ash199() -> None:
    result = _audit(extra_blocking=["shop.helpers.critical_section"])
    [finding] = [f for f in result.findings if f.code == "ASH199"]
    assert finding.path == "shop/views.py"
    assert finding.args["call"] == "shop.helpers.critical_section"
    # A user-declared blocking call is a leaf: its body is not reported through it.
    assert "shop/helpers.py" not in {f.path for f in result.findings if f.code == "ASH108"}


def _flake8_async(paths: list[Path]) -> set[tuple[str, int]]:
    """Run flake8-async's ASYNC2xx checks and return ``{(path, line)}``."""
    proc = subprocess.run(
        [sys.executable, "-m", "flake8_async", "--enable", "ASYNC2", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    hits = set()
    for line in proc.stdout.splitlines():
        match = re.match(r"(?P<path>.+?):(?P<line>\d+):\d+: ASYNC2\d\d ", line)
        assert match is not None, line
        rel = Path(match["path"]).resolve().relative_to(FIXTURES.resolve()).as_posix()
        hits.add((rel, int(match["line"])))
    return hits


def test_flake8_async_findings_are_a_subset_of_ours(result: AuditResult) -> None:
    theirs = _flake8_async(sorted(FIXTURES.rglob("*.py")))
    assert theirs, "flake8-async found nothing: the comparison would be vacuous"
    # Lines silenced with our own noqa codes (ASH...) are not ours to report.
    noqa = {key for key in theirs if "noqa" in _source_line(*key)}
    ours = {(f.path, f.line) for f in result.findings}
    assert sorted(theirs - noqa - ours) == []


def _source_line(path: str, line: int) -> str:
    return (FIXTURES / path).read_text(encoding="utf-8").splitlines()[line - 1]
