"""``benchmarks/django_bench.py --smoke --rounds 4`` still runs, rotates and computes per round.

Smoke mode (SQLite, 1 s wrk runs, 8 connections) measures nothing worth
reading: these tests check the machinery (the four servers start and stay up
for every round, each variant runs once in every position of a round, the
server counters are read around each run, the ratios are computed within each
round) and never look at how fast anything was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "django_bench.py"
VARIANTS = ["gunicorn-gthread", "uvicorn-stock", "uvicorn-wsgitoasgi", "uvicorn-ours"]
ROUNDS = 4
THREADS = 8

# Every test here reads the one smoke run, which starts the four servers.
pytestmark = [pytest.mark.live, pytest.mark.timeout(420)]


def _table_rows(output: str, first_header: str) -> dict[str, list[str]]:
    """Return the body rows, by first cell, of the Markdown table headed ``first_header``."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] == first_header:
            rows: dict[str, list[str]] = {}
            for body in lines[index + 2 :]:
                if not body.startswith("| "):
                    break
                row = [cell.strip() for cell in body.strip().strip("|").split("|")]
                rows[row[0]] = row
            return rows
    raise AssertionError(f"no table headed {first_header!r} in:\n{output}")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, list[dict]]]:
    """Run the script once in smoke mode; return its stdout and its ``--json`` samples."""
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is not on PATH but CI=true: install it (apt-get install wrk)")
        pytest.skip("wrk is not on PATH: install it (apt-get install wrk) to run this test")
    raw = tmp_path_factory.mktemp("django-bench") / "samples.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--rounds", str(ROUNDS),
         "--threads", str(THREADS), "--json", str(raw)],
        cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"exited {result.returncode}:\n{result.stderr}"
    samples: dict[str, list[dict]] = json.loads(raw.read_text())["SQLite"]
    return result.stdout, samples


def test_each_variant_runs_once_in_every_position_of_a_round(
    smoke_run: tuple[str, dict[str, list[dict]]],
) -> None:
    _, samples = smoke_run
    assert list(samples) == VARIANTS
    for variant, runs in samples.items():
        assert len(runs) == ROUNDS, variant
        assert sorted(run["position"] for run in runs) == list(range(ROUNDS)), variant
    # Round r starts at variant r.
    first = [next(v for v in VARIANTS if samples[v][r]["position"] == 0) for r in range(ROUNDS)]
    assert first == VARIANTS


def test_server_counters_are_read_around_every_run(
    smoke_run: tuple[str, dict[str, list[dict]]],
) -> None:
    _, samples = smoke_run
    for variant, runs in samples.items():
        for run in runs:
            assert run["served"] > 0, (variant, run)
            assert run["cpu_s"] > 0, (variant, run)
        # One server per variant for all rounds: its total only grows.
        totals = [run["opened_total"] for run in runs]
        assert totals == sorted(totals), (variant, totals)
    # CONN_MAX_AGE=60: where connections persist, a thread opens one at its first
    # request and again once a minute; Django's stock ASGI handler runs each
    # request's sync work in a new thread context and opens one per request.
    for variant in ("gunicorn-gthread", "uvicorn-wsgitoasgi", "uvicorn-ours"):
        opened = sum(run["opened"] for run in samples[variant])
        served = sum(run["served"] for run in samples[variant])
        assert opened * 10 < served, (variant, opened, served)
    opened = sum(run["opened"] for run in samples["uvicorn-stock"])
    served = sum(run["served"] for run in samples["uvicorn-stock"])
    assert opened * 2 > served, (opened, served)


def test_ratios_are_the_median_of_each_rounds_ratio(
    smoke_run: tuple[str, dict[str, list[dict]]],
) -> None:
    output, samples = smoke_run
    rows = _table_rows(output, "ratio")
    ours = samples["uvicorn-ours"]
    expected = {
        "req/s ours / stock": [
            o["rps"] / s["rps"] for o, s in zip(ours, samples["uvicorn-stock"], strict=True)
        ],
        "req/s ours / gunicorn gthread": [
            o["rps"] / g["rps"] for o, g in zip(ours, samples["gunicorn-gthread"], strict=True)
        ],
        "CPU/req WSGIToASGI / ours": [
            (b["cpu_s"] * 1e6 / b["served"]) / (o["cpu_s"] * 1e6 / o["served"])
            for o, b in zip(ours, samples["uvicorn-wsgitoasgi"], strict=True)
        ],
    }
    for label, values in expected.items():
        row = rows[label]
        assert row[2] == f"{statistics.median(values):.2f}x", (label, row, values)
        assert row[3] == f"{min(values):.2f}x-{max(values):.2f}x", (label, row)
        assert row[4].split() == [f"{value:.2f}" for value in values], (label, row)
    assert re.fullmatch(r"\d of 4", rows["req/s ours / WSGIToASGI"][5]), rows
    # The same ratio over only the rounds where both servers had their core.
    gunicorn = samples["gunicorn-gthread"]
    full = [
        o["rps"] / g["rps"]
        for o, g in zip(ours, gunicorn, strict=True)
        if min(o["cpu_s"] / o["wall_s"], g["cpu_s"] / g["wall_s"]) >= 0.95
    ]
    median = f"{statistics.median(full):.2f}x" if full else "n/a"
    assert rows["req/s ours / gunicorn gthread"][6] == f"{median} ({len(full)} of 4)", rows
    assert len(rows) == 6, rows


def test_variant_table_shows_every_round_and_the_median(
    smoke_run: tuple[str, dict[str, list[dict]]],
) -> None:
    output, samples = smoke_run
    rows = _table_rows(output, "variant")
    assert list(rows) == VARIANTS
    for variant, runs in samples.items():
        row = rows[variant]
        assert row[2].split() == [f"{run['rps']:.0f}" for run in runs], row
        assert row[1] == f"{statistics.median(run['rps'] for run in runs):.0f}", row
        shares = [f"{run['cpu_s'] / run['wall_s']:.2f}" for run in runs]
        assert row[6].split() == shares, row
        assert row[7] == str(sum(run["errors"] for run in runs)), row
    # Ours hops to a worker thread once for a sync view (counted in process).
    assert re.search(r"^Thread hops per request .*uvicorn-ours /count/: 1,", output, re.M), output


def test_pool_pairs_the_rounds_of_several_json_files(
    smoke_run: tuple[str, dict[str, list[dict]]], tmp_path: Path
) -> None:
    _, samples = smoke_run
    raw = tmp_path / "one.json"
    # A second file whose ours is twice as fast: pooled, half the rounds double.
    doubled = {v: [dict(run) for run in runs] for v, runs in samples.items()}
    for run in doubled["uvicorn-ours"]:
        run["rps"] *= 2
    raw.write_text(json.dumps({"SQLite": samples}))
    (tmp_path / "two.json").write_text(json.dumps({"SQLite": doubled}))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--pool", str(raw), str(tmp_path / "two.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = _table_rows(result.stdout, "ratio")["req/s ours / gunicorn gthread"]
    ours, gunicorn = samples["uvicorn-ours"], samples["gunicorn-gthread"]
    once = [o["rps"] / g["rps"] for o, g in zip(ours, gunicorn, strict=True)]
    values = once + [2 * value for value in once]
    assert row[4].split() == [f"{value:.2f}" for value in values], row
    assert row[2] == f"{statistics.median(values):.2f}x", row
