"""Each output format rendered from hand-built reports (no engine involved)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from audit_cli_helpers import CHAIN, ORM, RULES, SLEEP, finding, make_report

from asgishift.audit._model import FileError, Hop
from asgishift.audit.output import Report, get_renderer, message
from asgishift.audit.output._github import (
    command,
    escape_data,
    escape_property,
    workspace_path,
)
from asgishift.audit.output._json import build as build_json
from asgishift.audit.output._json import schema as json_schema
from asgishift.audit.output._sarif import build as build_sarif


def render(report: Report, fmt: str, **kwargs: Any) -> str:
    stream = io.StringIO()
    get_renderer(fmt, **kwargs)(report, stream)
    return stream.getvalue()


def sample_report() -> Report:
    return make_report(
        [
            finding("ASH101", "shop/views.py", 5),
            finding("ASH101", "shop/pay.py", 4, chain=CHAIN),
            finding(
                "ASH201",
                "shop/views.py",
                12,
                snippet="Book.objects.get(pk=1)",
                call="Book.objects.get",
                async_name="aget",
            ),
        ],
        [FileError(path="broken.py", line=3, message="invalid syntax; fix the file")],
    )


# ---------------------------------------------------------------------- messages


def test_message_formats_rule_template() -> None:
    text = message(ORM, finding("ASH201", call="Book.objects.get", async_name="aget"))
    assert (
        text == "Synchronous ORM call Book.objects.get() in async code; use the `a`-prefixed aget()"
    )


def test_message_keeps_missing_placeholder_visible() -> None:
    assert message(ORM, finding("ASH201", call="x")) == (
        "Synchronous ORM call x() in async code; use the `a`-prefixed {async_name}()"
    )


def test_unknown_code_gets_placeholder_rule_and_args_message() -> None:
    report = make_report([finding("ASH199", call="shop.legacy.fetch")])
    rule = report.rule("ASH199")
    assert rule.name == "rule-ash199"
    assert message(rule, report.findings[0]) == "call=shop.legacy.fetch"


# -------------------------------------------------------------------------- text


def test_text_groups_by_file_and_shows_chain_hop_by_hop() -> None:
    out = render(sample_report(), "text", color=False)
    lines = out.splitlines()
    assert lines[0] == "shop/pay.py"
    assert lines[1].split() == [
        "4:5",
        "ASH101",
        *message(SLEEP, finding()).split(),
        "[blocking-sleep]",
    ]
    assert lines[2].strip() == "via shop/views.py:9 in shop.views.checkout \u2192 shop.pay()"
    assert lines[3].strip() == "shop/pay.py:4 in shop.pay \u2192 time.sleep()"
    views = lines.index("shop/views.py")
    assert lines[views + 1].lstrip().startswith("5:5  ASH101")
    assert lines[views + 2].lstrip().startswith("12:5  ASH201")
    assert lines[-1] == (
        "Found 3 findings (2 ASH101, 1 ASH201) in 2 files; 7 files scanned. "
        "1 file could not be audited (see stderr)."
    )
    assert "\x1b[" not in out


def test_text_clean_run_summary() -> None:
    out = render(make_report(files_scanned=1), "text", color=False)
    assert out == "No blocking calls found; 1 file scanned.\n"


def test_text_reports_baseline_counts() -> None:
    report = make_report([finding()])
    report.baseline_matched, report.baseline_stale = 4, 2
    last = render(report, "text", color=False).splitlines()[-1]
    assert last.endswith(
        "Baseline: 4 findings suppressed; 2 baseline entries no longer found "
        "(rewrite it with --write-baseline)."
    )


def test_text_colour_when_forced() -> None:
    out = render(sample_report(), "text", color=True)
    assert "\x1b[" in out
    assert "ASH101" in out


@pytest.mark.parametrize(
    ("env", "colour"),
    [
        pytest.param({}, False, id="not-a-tty"),
        pytest.param({"FORCE_COLOR": "1"}, True, id="FORCE_COLOR"),
        pytest.param({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, id="NO_COLOR-wins"),
    ],
)
def test_text_colour_detection(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], colour: bool
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = render(sample_report(), "text")  # StringIO is not a terminal
    assert ("\x1b[" in out) is colour


def test_text_arrow_falls_back_on_narrow_encodings() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    get_renderer("text", color=False)(sample_report(), stream)
    stream.flush()
    raw = stream.buffer.getvalue().decode("latin-1")
    assert "shop.views.checkout -> shop.pay()" in raw


# -------------------------------------------------------------------------- json


def test_json_document_shape() -> None:
    report = sample_report()
    document = json.loads(render(report, "json"))
    assert document == build_json(report)
    assert document["version"] == 1
    assert document["tool"] == {"name": "asgishift", "version": "9.9.9"}
    assert document["root"] == "/project"
    assert document["files_scanned"] == 7
    assert [(f["path"], f["line"], f["code"]) for f in document["findings"]] == [
        ("shop/pay.py", 4, "ASH101"),
        ("shop/views.py", 5, "ASH101"),
        ("shop/views.py", 12, "ASH201"),
    ]
    chained = document["findings"][0]
    assert chained["name"] == "blocking-sleep"
    assert chained["severity"] == "error"
    assert chained["fingerprint"] == report.fingerprints[0]
    assert chained["chain"][0] == {
        "path": "shop/views.py",
        "line": 9,
        "col": 5,
        "function": "shop.views.checkout",
        "callee": "shop.pay",
    }
    assert document["findings"][2]["severity"] == "warning"
    assert document["errors"] == [
        {"path": "broken.py", "line": 3, "message": "invalid syntax; fix the file"}
    ]
    assert document["summary"] == {
        "findings": 3,
        "by_code": {"ASH101": 2, "ASH201": 1},
        "files_with_findings": 2,
        "errors": 1,
        "baseline": None,
    }


def test_json_validates_against_shipped_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.check_schema(json_schema())
    report = sample_report()
    report.baseline_matched, report.baseline_stale = 2, 0
    for document in (build_json(report), build_json(make_report())):
        assert [e.message for e in validator.iter_errors(document)] == []
    broken = build_json(report)
    broken["findings"][0]["fingerprint"] = "line-42"
    assert not validator.is_valid(broken)


# ------------------------------------------------------------------------- sarif


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(sample_report(), id="findings-chain-errors"),
        pytest.param(make_report(), id="clean"),
        pytest.param(make_report([finding("ASH199", call="x.y")]), id="uncatalogued-code"),
    ],
)
def test_sarif_validates_against_official_schema(sarif_validator: Any, report: Report) -> None:
    document = json.loads(render(report, "sarif"))
    errors = sorted(sarif_validator.iter_errors(document), key=str)
    assert errors == [], "\n".join(e.message for e in errors)


def test_sarif_schema_rejects_a_broken_log(sarif_validator: Any) -> None:
    # Guards the guard: the validator must fail on a result without a message.
    document = build_sarif(sample_report())
    del document["runs"][0]["results"][0]["message"]
    assert not sarif_validator.is_valid(document)


def test_sarif_rules_and_results() -> None:
    report = sample_report()
    run = build_sarif(report)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in RULES]
    sleep = rules[0]
    assert sleep["name"] == "blocking-sleep"
    assert sleep["shortDescription"]["text"] == SLEEP.summary
    assert sleep["fullDescription"]["text"] == SLEEP.why
    assert "time.sleep(1)" in sleep["help"]["text"]
    assert "```python\nimport asyncio" in sleep["help"]["markdown"]
    assert sleep["defaultConfiguration"]["level"] == "error"
    assert rules[1]["defaultConfiguration"]["level"] == "warning"

    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///project/"}}
    first = run["results"][0]
    assert first["ruleId"] == "ASH101"
    assert rules[first["ruleIndex"]]["id"] == "ASH101"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "shop/pay.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 4, "startColumn": 5, "endLine": 4, "endColumn": 18}
    assert first["partialFingerprints"] == {"asgishift/v2": report.fingerprints[0]}
    flow = first["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [loc["location"]["physicalLocation"]["region"]["startLine"] for loc in flow] == [9, 4]
    assert flow[0]["location"]["message"]["text"] == "shop.views.checkout calls shop.pay()"
    assert first["message"]["text"].endswith(
        " (reached from async function [shop.views.checkout](1))"
    )
    (related,) = first["relatedLocations"]
    assert related["id"] == 1
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "shop/views.py"
    assert related["physicalLocation"]["region"]["startLine"] == 9
    assert "codeFlows" not in run["results"][1]
    assert "relatedLocations" not in run["results"][1]
    assert run["results"][2]["level"] == "warning"


@pytest.mark.parametrize(
    ("workspace", "prefix", "base"),
    [
        pytest.param("/ws", "services/api/", "file:///ws/", id="monorepo"),
        pytest.param("/elsewhere", "", "file:///ws/services/api/", id="outside-workspace"),
        pytest.param(None, "", "file:///ws/services/api/", id="no-workspace"),
    ],
)
def test_sarif_uris_are_relative_to_the_github_workspace(
    monkeypatch: pytest.MonkeyPatch, workspace: str | None, prefix: str, base: str
) -> None:
    # Code scanning resolves relative URIs against the repository root, not %SRCROOT%.
    if workspace is None:
        monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    else:
        monkeypatch.setenv("GITHUB_WORKSPACE", workspace)
    report = sample_report()
    report.root = "/ws/services/api"
    run = build_sarif(report)["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": base}}
    chained = run["results"][0]
    uris = [
        chained["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        chained["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        *(
            loc["location"]["physicalLocation"]["artifactLocation"]["uri"]
            for loc in chained["codeFlows"][0]["threadFlows"][0]["locations"]
        ),
        run["invocations"][0]["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"][
            "artifactLocation"
        ]["uri"],
    ]
    expected = ["shop/pay.py", "shop/views.py", "shop/views.py", "shop/pay.py", "broken.py"]
    assert uris == [prefix + uri for uri in expected]


def test_sarif_unparseable_files_are_notifications() -> None:
    invocation = build_sarif(sample_report())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.py"
    assert "invalid syntax" in note["message"]["text"]


def test_sarif_uri_is_percent_encoded() -> None:
    run = build_sarif(make_report([finding(path="my app/v%1.py")]))["runs"][0]
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20app/v%251.py"


def test_sarif_fingerprint_ignores_line_moves() -> None:
    before = build_sarif(make_report([finding(line=5)]))["runs"][0]["results"][0]
    after = build_sarif(make_report([finding(line=50)]))["runs"][0]["results"][0]
    assert before["partialFingerprints"] == after["partialFingerprints"]
    assert before["locations"] != after["locations"]


# ------------------------------------------------------------------------ github


@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        pytest.param("plain", "plain", "plain", id="plain"),
        pytest.param("100%", "100%25", "100%25", id="percent"),
        pytest.param("a\r\nb", "a%0D%0Ab", "a%0D%0Ab", id="crlf"),
        pytest.param("a:b,c", "a:b,c", "a%3Ab%2Cc", id="colon-comma"),
        pytest.param("%0A", "%250A", "%250A", id="already-looks-escaped"),
    ],
)
def test_github_escaping(raw: str, data: str, prop: str) -> None:
    assert escape_data(raw) == data
    assert escape_property(raw) == prop


def test_github_command_line() -> None:
    line = command("error", {"file": "a,b.py", "line": 3, "title": "T: x"}, "50% done\nnext")
    assert line == "::error file=a%2Cb.py,line=3,title=T%3A x::50%25 done%0Anext"


def test_github_annotations() -> None:
    out = render(sample_report(), "github").splitlines()
    assert out[0] == (
        "::error file=shop/pay.py,line=4,col=5,endLine=4,endColumn=18,"
        "title=ASH101 blocking-sleep::"
        + escape_data(message(SLEEP, finding()))
        + "%0Avia shop/views.py:9 in shop.views.checkout \u2192 shop.pay()"
        + "%0A    shop/pay.py:4 in shop.pay \u2192 time.sleep()"
    )
    assert out[2].startswith("::warning file=shop/views.py,line=12,col=5,")
    assert out[3] == (
        "::warning file=broken.py,line=3,title=asgishift could not audit this file::"
        "invalid syntax; fix the file"
    )
    assert out[4].startswith("Found 3 findings")
    assert out[4].endswith("1 file could not be audited (see the warnings above).")
    # Every finding line is exactly one workflow command (newlines were escaped).
    assert len(out) == 5


@pytest.mark.parametrize(
    ("root", "workspace", "expected"),
    [
        pytest.param("/ws/services/api", "/ws", "services/api/app.py", id="monorepo"),
        pytest.param("/ws", "/ws", "app.py", id="root-is-workspace"),
        pytest.param("/elsewhere", "/ws", "app.py", id="outside-workspace"),
        pytest.param("/ws", None, "app.py", id="no-workspace"),
    ],
)
def test_github_paths_relative_to_workspace(
    root: str, workspace: str | None, expected: str
) -> None:
    assert workspace_path(root, "app.py", workspace) == expected


def test_github_uses_github_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", "/")
    out = render(make_report([finding()], root="/project"), "github")
    assert out.startswith("::error file=project/shop/views.py,")


def test_github_chain_paths_are_relative_to_the_workspace_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", "/")
    out = render(make_report([finding(path="shop/pay.py", chain=CHAIN)], root="/project"), "github")
    assert out.startswith("::error file=project/shop/pay.py,")
    assert "%0Avia project/shop/views.py:9 in shop.views.checkout" in out
    assert "%0A    project/shop/pay.py:4 in shop.pay" in out


@pytest.mark.parametrize(
    ("callee", "shown"),
    [
        pytest.param("list()", "list()", id="builtin-worded-as-a-call"),
        pytest.param(
            "iteration (for ... in queryset)", "iteration (for ... in queryset)", id="how"
        ),
        pytest.param("slicing with a step", "slicing with a step", id="description"),
        pytest.param("time.sleep", "time.sleep()", id="dotted-name"),
    ],
)
def test_a_hop_callee_gets_call_parentheses_once(
    monkeypatch: pytest.MonkeyPatch, callee: str, shown: str
) -> None:
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    last = Hop("shop/pay.py", 4, 5, "shop.pay", callee)
    report = make_report([finding("ASH201", "shop/pay.py", 4, chain=(CHAIN[0], last))])
    assert f"in shop.pay → {shown}\n" in render(report, "text", color=False)
    assert f"in shop.pay → {shown}\n" in render(report, "github").replace("%0A", "\n")
    flow = build_sarif(report)["runs"][0]["results"][0]["codeFlows"][0]["threadFlows"][0]
    assert flow["locations"][1]["location"]["message"]["text"] == f"shop.pay calls {shown}"


def test_text_groups_call_sites_of_one_hazard_and_prints_the_shared_tail_once() -> None:
    tail = (
        Hop("shop/store.py", 30, 5, "shop.store.save", "shop.store.write"),
        Hop("shop/store.py", 31, 9, "shop.store.write", "time.sleep"),
    )
    first = Hop("shop/views.py", 9, 5, "shop.views.checkout", "shop.store.save")
    second = Hop("shop/views.py", 40, 5, "shop.views.refund", "shop.store.save")
    report = make_report(
        [
            finding("ASH101", "shop/store.py", 31, col=9, chain=(first, *tail)),
            finding("ASH101", "shop/store.py", 31, col=9, chain=(second, *tail)),
        ]
    )
    lines = [line.strip() for line in render(report, "text", color=False).splitlines()]
    assert lines[0] == "shop/store.py"
    assert lines[1].startswith("31:9  ASH101")
    assert lines[2:7] == [
        "reached from 2 call sites in async code:",
        "shop/views.py:9 in shop.views.checkout \u2192 shop.store.save()",
        "shop/views.py:40 in shop.views.refund \u2192 shop.store.save()",
        "then shop/store.py:30 in shop.store.save \u2192 shop.store.write()",
        "shop/store.py:31 in shop.store.write \u2192 time.sleep()",
    ]
    assert sum("31:9" in line for line in lines) == 1
    assert lines[-1] == "Found 2 findings (2 ASH101) at 1 place in 1 file; 7 files scanned."


def test_shared_tail_keeps_each_chain_its_own_first_hop() -> None:
    from asgishift.audit.output._text import shared_tail

    hop = Hop("a.py", 1, 1, "a.f", "a.g")
    other = Hop("a.py", 2, 1, "a.h", "a.g")
    assert shared_tail([(hop,), (other,)]) == 0
    assert shared_tail([(hop, other), (other, other)]) == 1
    assert shared_tail([(hop, other)]) == 0


def test_text_summary_says_how_many_files_were_parsed_when_fewer() -> None:
    report = make_report([], files_scanned=10)
    report.files_parsed = 4
    out = render(report, "text", color=False)
    assert out.splitlines()[-1] == (
        "No blocking calls found; 10 files scanned, 4 parsed (--reachable-only)."
    )
    report.files_parsed = 10
    assert "parsed" not in render(report, "text", color=False)


def test_json_reports_files_parsed_when_known() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    report = sample_report()
    assert "files_parsed" not in build_json(report)
    report.files_parsed = 3
    document = build_json(report)
    assert document["files_parsed"] == 3
    assert list(document)[:5] == ["version", "tool", "root", "files_scanned", "files_parsed"]
    assert [e.message for e in validator.iter_errors(document)] == []
