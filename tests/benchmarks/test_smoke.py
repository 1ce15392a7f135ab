"""The benchmark scripts still run: ``--smoke`` mode of each, as a subprocess.

Smoke mode measures nothing worth reading; these tests check the machinery
(servers start, wrk output parses, ratios are computed, tables print) and
never look at how fast anything was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO_ROOT / "benchmarks"
SERVERS = ("uvicorn", "hypercorn", "granian")
RATIO = re.compile(r"^\d+\.\d\dx$")


def _asgishift_bridge_imports() -> bool:
    try:
        from asgishift.bridge import WSGIToASGI  # noqa: F401
    except ImportError:
        return False
    return True


def _adapters() -> list[str]:
    bridges = ["a2wsgi", "asgiref"]
    if _asgishift_bridge_imports():
        bridges.insert(0, "asgishift")
    return bridges


def _run(script: str) -> str:
    """Run ``benchmarks/<script> --smoke`` and return its stdout; fail on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / script), "--smoke"],
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, f"{script} --smoke exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def _rows(output: str) -> list[list[str]]:
    """Return the body rows of every Markdown table in ``output`` (header rows dropped)."""
    rows: list[list[str]] = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("| "):
            continue
        if index + 1 < len(lines) and lines[index + 1].startswith("|-"):
            continue  # a header row
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _require_wrk() -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is not on PATH but CI=true: install it (apt-get install wrk)")
        pytest.skip("wrk is not on PATH: install it (apt-get install wrk) to run this test")


@pytest.mark.live
@pytest.mark.timeout(600)
def test_http_bench_smoke_prints_every_row_with_ratios() -> None:
    _require_wrk()
    output = _run("http_bench.py")
    rows = _rows(output)
    by_key = {(row[0], row[1], row[2]): row for row in rows}
    expected = [("flask", server, bridge) for server in SERVERS for bridge in _adapters()]
    expected.append(("flask", "gunicorn", "wsgi"))
    sleep_bridges = [*_adapters(), "a2wsgi-100"]
    expected += [("flask", "uvicorn", bridge) for bridge in sleep_bridges]
    missing = [key for key in expected if key not in by_key]
    assert not missing, f"rows missing from the tables: {missing}\n{output}"
    # Both scenarios (hello and sleep) print a table; gunicorn is in each.
    assert sum(1 for row in rows if row[1] == "gunicorn") == 2, output
    for row in rows:
        assert float(row[3]) >= 0, output
        assert RATIO.match(row[4]), f"req/s ratio not computed in {row}:\n{output}"
        assert RATIO.match(row[6]), f"p99 ratio not computed in {row}:\n{output}"
        # The serving process did work for the requests it answered.
        assert float(row[8]) > 0, f"server CPU per request not measured in {row}:\n{output}"
        if row[2] == "a2wsgi":
            assert row[4] == "1.00x", output


@pytest.mark.timeout(300)
def test_inprocess_bench_smoke_prints_overhead_per_bridge() -> None:
    rows = _rows(_run("inprocess_bench.py"))
    keys = {(row[0], row[1], row[2]) for row in rows}
    expected = {("plain", "-", "direct WSGI call"), ("flask", "-", "direct WSGI call")}
    expected |= {
        (app, loop, bridge)
        for app in ("plain", "flask")
        for loop in ("uvloop", "asyncio")
        for bridge in _adapters()
    }
    assert expected <= keys, f"missing rows: {sorted(expected - keys)}"
    for row in rows:
        if row[2] != "direct WSGI call":
            assert re.match(r"^[+-]\d+\.\d$", row[4]), f"overhead not computed: {row}"


@pytest.mark.timeout(120)
def test_inprocess_bench_times_the_floor_adapter_and_its_parts() -> None:
    # Each adapter must answer 200 with the app's body before it is timed
    # (inprocess_bench.check), so a row is also a working adapter.
    floors = ["floor", "floor+pool", "floor+context+environ+inbox+pool"]
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "inprocess_bench.py"), "--smoke", "--adapters",
         ",".join(floors), "--apps", "plain,flask", "--loops", "asyncio"],
        cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    floor_rows = [row for row in _rows(result.stdout) if row[2].startswith("floor")]
    assert sorted((row[0], row[2]) for row in floor_rows) == sorted(
        (app, floor) for app in ("plain", "flask") for floor in floors
    )
    for row in floor_rows:
        assert float(row[3]) > 0, row
        assert re.match(r"^[+-]\d+\.\d$", row[4]), row


@pytest.mark.timeout(120)
def test_inprocess_bench_times_the_apps_own_work_where_it_runs() -> None:
    # --app-time adds a column: the app's own microseconds per request, timed
    # around the call on whichever thread runs it. Every request goes through
    # the timing wrapper, so a row with no calls would read 0.0.
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "inprocess_bench.py"), "--smoke", "--app-time",
         "--adapters", "floor", "--apps", "flask", "--loops", "asyncio"],
        cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "app's own us/req (sequential)" in result.stdout
    rows = _rows(result.stdout)
    assert [row[2] for row in rows] == ["direct WSGI call", "floor"]
    for row in rows:
        assert len(row) == 8, row
        assert float(row[7]) > 0, row
        # The app's own time is part of the whole request's.
        assert float(row[7]) < float(row[3]), row


def test_after_burst_times_every_adapter_over_the_direct_call() -> None:
    rows = _rows(_run("after_burst.py"))
    assert sorted((row[0], row[1]) for row in rows) == sorted(
        (app, adapter)
        for app in ("flask", "plain")
        for adapter in ("direct WSGI call", "asgishift", "one-worker", "fresh", "floor")
    )
    for row in rows:
        assert float(row[2]) > 0, row
        if row[1] != "direct WSGI call":
            assert re.match(r"^[+-]\d+\.\d$", row[3]), row


def test_the_floor_refuses_a_part_the_bridge_does_not_have() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "inprocess_bench.py"), "--smoke", "--adapters",
         "floor+turbo", "--apps", "plain", "--loops", "asyncio"],
        cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unknown floor parts ['turbo']" in result.stderr


@pytest.mark.timeout(120)
def test_ab_bridge_calls_prints_a_count_per_bridge() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "ab_bridge.py"), "--smoke", "--calls",
         "--baseline", "HEAD", "--apps", "plain", "--loops", "asyncio"],
        cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [row for row in _rows(result.stdout) if row[2] == "calls/request"]
    assert [row[:2] for row in rows] == [["plain", "asyncio"]]
    before, after, a2wsgi = (float(cell) for cell in rows[0][3:6])
    assert after > 50  # a request through an event loop takes dozens of calls
    assert before > 50
    assert a2wsgi > after
    # The ratio is computed from the unrounded counts, the printed counts are
    # rounded to 0.1, so the two may differ in the last printed digit.
    assert abs(float(rows[0][8]) - after / before) <= 0.011


@pytest.mark.live
@pytest.mark.timeout(300)
def test_memory_bench_smoke_prints_growth_per_bridge_and_direction() -> None:
    rows = _rows(_run("memory_bench.py"))
    keys = {(row[0], row[1]) for row in rows}
    expected = {(bridge, way) for bridge in _adapters() for way in ("upload", "download")}
    assert expected <= keys, f"missing rows: {sorted(expected - keys)}"
    for row in rows:
        assert re.match(r"^-?\d+\.\d$", row[4]) or row[4] == "n/a", row


@pytest.mark.live
@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", ["hypercorn", "granian"])
def test_memory_bench_measures_the_process_holding_the_listening_socket(server: str) -> None:
    # hypercorn's first child is multiprocessing's resource tracker, not its worker.
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import _common
    finally:
        sys.path.remove(str(BENCH_DIR))
    env = {"BENCH_APP": "plain", "BENCH_ADAPTER": "asgishift"}
    with _common.run_servers([("asgishift", server, env, 8)]) as servers:
        srv = servers["asgishift"]
        pid = srv.worker_pid()
        assert "resource_tracker" not in _common.process_name(pid)
        assert _common.holds_socket(pid, _common.listening_inodes(srv.port))
        if shutil.which("ss"):
            # Cross-check with iproute2: the pid is among the socket's users.
            users = subprocess.run(
                ["ss", "-ltnpH", f"sport = :{srv.port}"],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout
            assert f"pid={pid}," in users, users


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("http_bench.py", id="http"),
        pytest.param("inprocess_bench.py", id="inprocess"),
        pytest.param("memory_bench.py", id="memory"),
        pytest.param("profile_bridge.py", id="profile"),
        pytest.param("ab_bridge.py", id="ab"),
        pytest.param("instructions.py", id="instructions"),
        pytest.param("after_burst.py", id="after-burst"),
    ],
)
def test_every_script_has_help(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--smoke" in result.stdout


def test_profile_bridge_smoke_breaks_the_cost_down_without_errors() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "profile_bridge.py"), "--smoke", "--loop", "asyncio"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # A job that raises is only logged by the pool: the run must not show one.
    assert "Traceback" not in result.stderr, result.stderr
    rows = {
        cells[0]: float(cells[1])
        for line in result.stdout.splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])
        and cells[1].replace(".", "", 1).replace("-", "", 1).isdigit()
    }
    assert rows["crossing (asgishift WorkerPool)"] > 0
    # The interleaved figures come from their own timings: both present, and the
    # interleaved run does at least the work of a plain bridged request.
    assert rows["flask + plain request, interleaved"] > rows["direct (plain)"]
    assert "interleave penalty" in rows
    assert "flask's extra through the bridge" in rows
    assert rows["request (plain)"] > 0
