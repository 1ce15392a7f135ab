"""``[tool.asgishift.audit]`` loading and the baseline file, as units."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from audit_cli_helpers import CHAIN, finding

from asgishift.audit._baseline import (
    BaselineError,
    apply_baseline,
    fingerprints,
    read_baseline,
    write_baseline,
)
from asgishift.audit._config import (
    ConfigError,
    config_key,
    find_pyproject,
    load_config,
    parse_table,
)
from asgishift.audit._model import AuditConfig, Finding, Hop

# ------------------------------------------------------------------------ config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


FULL = """
[project]
name = "demo"

[tool.asgishift.audit]
select = ["ASH1", "ASH201"]
ignore = ["ASH105"]
per-file-ignores = { "tests/**" = ["ASH1"], "scripts/*.py" = ["ASH101", "ASH102"] }
exclude = ["migrations/**"]
extra-blocking = ["shop.legacy.fetch_rates"]
extra-safe = ["shop.utils.run_in_thread"]
respect-gitignore = false
max-file-bytes = 1000
jobs = 3
cache-dir = "build/audit-cache"
"""


def test_every_key_is_read(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", FULL)
    loaded = load_config([tmp_path / "pkg"])
    assert loaded.root == tmp_path
    assert loaded.source == tmp_path / "pyproject.toml"
    assert loaded.config == AuditConfig(
        select=["ASH1", "ASH201"],
        ignore=["ASH105"],
        per_file_ignores={"tests/**": ["ASH1"], "scripts/*.py": ["ASH101", "ASH102"]},
        exclude=["migrations/**"],
        extra_blocking=["shop.legacy.fetch_rates"],
        extra_safe=["shop.utils.run_in_thread"],
        respect_gitignore=False,
        max_file_bytes=1000,
        jobs=3,
        cache_dir=str(tmp_path / "build" / "audit-cache"),
    )


def test_nearest_pyproject_upward_from_first_path(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", FULL)
    inner = write(tmp_path / "sub" / "pyproject.toml", "[tool.asgishift.audit]\njobs = 1\n")
    module = write(tmp_path / "sub" / "pkg" / "mod.py", "")
    assert find_pyproject(module) == inner
    loaded = load_config([module])
    assert (loaded.root, loaded.config.jobs) == (tmp_path / "sub", 1)


def test_pyproject_without_table_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    loaded = load_config([tmp_path])
    assert loaded.config.select == []
    assert loaded.config.cache_dir == str(tmp_path / ".asgishift_cache")


def test_no_pyproject_root_is_common_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # find_pyproject walks up to /; make sure nothing above tmp_path is picked up.
    monkeypatch.setattr("asgishift.audit._config.find_pyproject", lambda start: None)
    a = write(tmp_path / "a" / "x.py", "")
    b = write(tmp_path / "b" / "c" / "y.py", "")
    loaded = load_config([a, b])
    assert (loaded.root, loaded.source) == (tmp_path, None)


def test_explicit_config_file(tmp_path: Path) -> None:
    config = write(tmp_path / "conf" / "pyproject.toml", "[tool.asgishift.audit]\njobs = 2\n")
    loaded = load_config([tmp_path], config)
    assert (loaded.root, loaded.config.jobs) == (tmp_path / "conf", 2)


def test_cache_dir_false_disables_cache(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.asgishift.audit]\ncache-dir = false\n")
    assert load_config([tmp_path]).config.cache_dir is None


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(
            'ignroe = ["ASH1"]',
            "unknown key 'ignroe' in [tool.asgishift.audit]; did you mean 'ignore'?",
            id="typo",
        ),
        pytest.param(
            "per_file_ignores = {}", "did you mean 'per-file-ignores'?", id="underscore-spelling"
        ),
        pytest.param('colour = "red"', "known keys: select, ignore,", id="unknown-no-hint"),
        pytest.param('select = "ASH1"', "select must be a list of strings", id="select-not-list"),
        pytest.param("jobs = -1", "jobs must be an integer >= 0", id="negative-jobs"),
        pytest.param("jobs = true", "jobs must be an integer >= 0", id="bool-jobs"),
        pytest.param(
            "max-file-bytes = 0", "max-file-bytes must be an integer > 0", id="zero-bytes"
        ),
        pytest.param('respect-gitignore = "yes"', "must be true or false", id="bool"),
        pytest.param('per-file-ignores = ["x"]', "must be a table of glob", id="pfi-not-table"),
        pytest.param('per-file-ignores = { "a" = "ASH1" }', "per-file-ignores.'a'", id="pfi-value"),
        pytest.param('cache-dir = ""', "cache-dir must be a directory path or false", id="cache"),
    ],
)
def test_bad_table_names_file_and_key(tmp_path: Path, table: str, expected: str) -> None:
    source = write(tmp_path / "pyproject.toml", f"[tool.asgishift.audit]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_config([tmp_path])
    assert info.value.source == str(source)
    assert str(info.value).startswith(f"{source}: ")
    assert expected in info.value.message


def test_invalid_toml(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.asgishift.audit\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config([tmp_path])


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param("tool = 3\n", "[tool] must be a table", id="tool"),
        pytest.param("[tool]\nasgishift = 3\n", "[tool.asgishift] must be a table", id="asgishift"),
        pytest.param(
            "[tool.asgishift]\naudit = 3\n", "[tool.asgishift.audit] must be a table", id="audit"
        ),
    ],
)
def test_a_parent_of_the_table_that_is_not_a_table(
    tmp_path: Path, document: str, expected: str
) -> None:
    source = write(tmp_path / "pyproject.toml", document)
    with pytest.raises(ConfigError) as info:
        load_config([tmp_path])
    assert info.value.source == str(source)
    assert expected in info.value.message


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file does not exist; check --config"):
        load_config([tmp_path], tmp_path / "nope.toml")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(15)
def test_a_fifo_named_pyproject_is_skipped_by_the_search(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.asgishift.audit]\njobs = 3\n")
    (tmp_path / "pkg").mkdir()
    os.mkfifo(tmp_path / "pkg" / "pyproject.toml")  # nearer, but never opened
    loaded = load_config([tmp_path / "pkg" / "app"])
    assert loaded.source == tmp_path / "pyproject.toml"
    assert loaded.config.jobs == 3


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(15)
def test_a_fifo_given_as_config_is_refused_not_read(tmp_path: Path) -> None:
    pipe = tmp_path / "pyproject.toml"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match="not a regular file") as info:
        load_config([tmp_path], pipe)
    assert info.value.source == str(pipe)


def test_parse_table_defaults_untouched_keys() -> None:
    config = parse_table({"jobs": 4}, "x.toml")
    assert config == AuditConfig(jobs=4)


def test_rules_name_config_keys_as_written_in_pyproject() -> None:
    from asgishift.audit.rules import all_rules

    # extra_blocking is the AuditConfig attribute; in pyproject.toml the key is extra-blocking.
    attributes = [a for a in vars(AuditConfig()) if "_" in a]
    texts = [f"{r.summary} {r.message} {r.why}" for r in all_rules()]
    assert [(a, t) for a in attributes for t in texts if a in t] == []
    assert config_key("extra_blocking") == "extra-blocking"


# ---------------------------------------------------------------------- baseline


def test_fingerprint_ignores_line_and_whitespace_but_not_code_path_or_snippet() -> None:
    (base,) = fingerprints([finding(line=3, snippet="time.sleep(1)")])
    assert fingerprints([finding(line=300, col=9, snippet="  time.sleep(1)  ")]) == [base]
    assert fingerprints([finding(code="ASH201")]) != [base]
    assert fingerprints([finding(path="other.py")]) != [base]
    assert fingerprints([finding(snippet="time.sleep(2)")]) != [base]
    # Of the chain, only the async def it starts in counts (one finding per call
    # site in async code): the path below it may change without the finding changing.
    (chained,) = fingerprints([finding(chain=CHAIN)])
    assert chained != base
    moved = (CHAIN[0], Hop("shop/pay.py", 9, 1, "shop.pay._inner", "time.sleep"))
    assert fingerprints([finding(chain=moved)]) == [chained]


def test_identical_findings_get_occurrence_indexes() -> None:
    first, second = fingerprints([finding(line=3), finding(line=7)])
    assert first != second
    # Both move down by ten lines: same fingerprints, same order.
    assert fingerprints([finding(line=13), finding(line=17)]) == [first, second]


def test_baseline_round_trip(tmp_path: Path) -> None:
    old = [finding(line=3), finding("ASH201", line=8, snippet="Book.objects.get()")]
    path = tmp_path / "baseline.json"
    assert write_baseline(path, old) == 2
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["version"] == 2
    assert all(set(e) == {"fingerprint", "code", "path", "snippet"} for e in document["findings"])
    assert "line" not in path.read_text(encoding="utf-8")

    # The sleep moved down 20 lines, the ORM call was fixed, a new sleep appeared.
    new = [finding(line=23), finding(line=40, snippet="time.sleep(5)")]
    outcome = apply_baseline(fingerprints(new), read_baseline(path))
    assert outcome.kept == [1]
    assert (outcome.matched, outcome.stale) == (1, 1)


def test_baseline_entry_suppresses_one_finding_only(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, [finding(line=3)])
    outcome = apply_baseline(fingerprints([finding(line=3), finding(line=4)]), read_baseline(path))
    assert outcome.kept == [1]


def _via(entry: str, line: int) -> Finding:
    """A sleep in ``shop/pay.py`` reached from the ``async def`` ``entry`` (a call on ``line``)."""
    hops = (Hop("shop/views.py", line, 5, entry, "shop.pay"), CHAIN[1])
    return finding("ASH101", "shop/pay.py", 4, chain=hops)


def test_a_version_1_baseline_is_still_matched_the_version_1_way(tmp_path: Path) -> None:
    identity = "ASH101\0shop/pay.py\0time.sleep(1)\0" + "0"
    recorded = hashlib.sha256(identity.encode()).hexdigest()[:32]
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"version": 1, "findings": [{"fingerprint": recorded}]}), "utf-8")
    baseline = read_baseline(path)
    assert baseline.version == 1
    new = [_via("shop.views.new_view", 9), _via("shop.views.old_view", 30)]
    assert fingerprints(new, 1)[0] == recorded
    outcome = apply_baseline(fingerprints(new, baseline.version), baseline)
    assert outcome.kept == [1]
    # A hazard written in the async def itself has the same fingerprint in both versions.
    assert fingerprints([finding()], 1) == fingerprints([finding()])


def test_a_new_call_site_of_a_recorded_hazard_is_the_one_reported(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, [_via("shop.views.old_view", 20)])
    # A new view written above the old one calls the same helper: its finding comes first.
    new = [_via("shop.views.new_view", 9), _via("shop.views.old_view", 30)]
    outcome = apply_baseline(fingerprints(new), read_baseline(path))
    assert outcome.kept == [0]
    assert (outcome.matched, outcome.stale) == (1, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "baseline file does not exist", id="missing"),
        pytest.param("{not json", "cannot read baseline", id="not-json"),
        pytest.param('{"version": 3, "findings": []}', "not a version 1 or 2", id="version"),
        pytest.param('{"version": 1, "findings": [{"x": 1}]}', "must be a list", id="entries"),
    ],
)
def test_bad_baseline_file(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(BaselineError) as info:
        read_baseline(path)
    assert expected in str(info.value)
    assert f"--write-baseline {path}" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(15)
def test_a_fifo_given_as_baseline_is_refused_not_read(tmp_path: Path) -> None:
    pipe = tmp_path / "baseline.json"
    os.mkfifo(pipe)
    with pytest.raises(BaselineError, match="not a regular file") as info:
        read_baseline(pipe)
    assert str(pipe) in str(info.value)
