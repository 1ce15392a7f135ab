"""``asgishift audit`` on real projects nobody here wrote: speed, findings, ruff, misses.

For each project the script fetches the source at run time into
``benchmarks/_work/`` (gitignored; never commit it), then measures on that tree:

* **files**: Python files the audit reads;
* **floor / cold / warm**: wall time to read and ``ast.parse`` every file
  (``parse_floor.floor`` from ``benchmarks/audit/parse_floor.py``, same worker
  count), the audit with an empty cache, and the audit again with the cache the
  cold run filled; best of ``--runs``, alternated, with ratios to the floor,
  of wall time and of CPU time (this process and its finished children: the
  worker processes and ruff), the steadier of the two on a shared machine;
* **findings by code** (from the cold run);
* **ruff ASYNC**: ``ruff check --isolated --select ASYNC`` on the same tree, by code;
* **ruff ASYNC2xx not ours**: ruff's blocking-call findings (ASYNC2xx) with no
  asgishift finding on the same line, to classify by hand;
* **grep misses**: lines inside an ``async def`` body (nested ``def``/``lambda``
  excluded) that match a grep for blocking calls (the regex :data:`BLOCKING_GREP`)
  and carry no asgishift finding, to classify by hand;
* a **precision sample**: ``--sample`` findings per project drawn with a fixed seed,
  printed with their source line, to classify by hand.

Everything is also written to ``benchmarks/_work/results/<project>.json``.

Sources: a PyPI sdist (``pip download --no-binary :all: --no-deps``), or, for a
project that is not on PyPI (Saleor), a git directory given with
``--git-dir saleor=PATH`` (``git clone --bare https://github.com/saleor/saleor PATH``);
its ``HEAD`` is exported with ``git archive``.

Usage::

    python benchmarks/audit/real_projects.py --git-dir saleor=PATH
    python benchmarks/audit/real_projects.py --projects django,quart --runs 3
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asgishift.audit._discover import discover
from asgishift.audit._model import AuditConfig, AuditResult
from asgishift.audit.engine import audit_paths

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "_work"

#: name -> ("pypi", requirement) or ("git", default ref)
PROJECTS: dict[str, tuple[str, str]] = {
    "django": ("pypi", "django==5.2.*"),
    "saleor": ("git", "HEAD"),
    "quart": ("pypi", "quart"),
    "starlette": ("pypi", "starlette"),
    "datasette": ("pypi", "datasette"),
}

PIP_DOWNLOAD = (sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps")
RUFF_ASYNC = (
    sys.executable,
    "-m",
    "ruff",
    "check",
    "--isolated",
    "--select",
    "ASYNC",
    "--no-cache",
)

#: What the miss grep looks for on lines inside ``async def`` bodies.
_ORM_SYNC = (
    "get|create|count|exists|first|last|latest|earliest|update|delete|get_or_create"
    "|update_or_create|bulk_create|bulk_update|in_bulk|aggregate|contains|explain"
)
BLOCKING_GREP = re.compile(
    r"(?<![.\w])(?:"
    r"time\.sleep\(|open\(|input\(|urlopen\(|requests\.\w+\(|subprocess\.\w+\("
    r"|os\.(?:system|popen|remove|unlink|rename|makedirs|mkdir|listdir|scandir|walk|stat)\("
    r"|os\.path\.(?:exists|isfile|isdir|getsize|getmtime|realpath)\("
    r"|socket\.\w+\(|shutil\.\w+\(|sqlite3\.connect\(|glob\.i?glob\(|tempfile\.\w+\("
    r")"
    r"|\.(?:read_text|write_text|read_bytes|write_bytes|iterdir)\("
    rf"|\.objects\.(?:{_ORM_SYNC})\("
)


def _floor_function() -> tuple[Callable[[list[str], int], float], str]:
    """``parse_floor.floor`` when that script is beside this one, else an inline floor."""
    sys.path.insert(0, str(HERE))
    try:
        from parse_floor import floor  # type: ignore[import-not-found]

        return floor, "benchmarks/audit/parse_floor.py floor()"
    except ImportError:

        def inline(paths: list[str], jobs: int) -> float:
            start = time.perf_counter()
            for path in paths:
                with contextlib.suppress(SyntaxError, ValueError):
                    ast.parse(Path(path).read_bytes())
            return time.perf_counter() - start

        return inline, "inline single-process read+ast.parse (parse_floor.py not found)"
    finally:
        sys.path.pop(0)


def _pip_fetch(requirement: str, dest: Path) -> Path:
    sdists = dest / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    before = set(sdists.iterdir())
    subprocess.run(
        [*PIP_DOWNLOAD, "-d", str(sdists), requirement],
        check=True,
    )
    name = re.split(r"[=<>!~ ]", requirement)[0].lower()
    candidates = sorted(
        (p for p in sdists.iterdir() if p.name.lower().startswith(name + "-")),
        key=lambda p: (p not in before, p.stat().st_mtime),
    )
    archive = candidates[-1]
    trees = dest / "trees"
    stem = archive.name.removesuffix(".tar.gz").removesuffix(".zip")
    tree = trees / stem
    if not tree.exists():
        trees.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(trees, filter="data")
    return tree


def _git_fetch(name: str, git_dir: Path, ref: str, dest: Path) -> Path:
    sha = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = dest / "trees" / f"{name}-{sha[:10]}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "--git-dir", str(git_dir), "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        archive.wait()
    return tree


@dataclass
class ProjectResult:
    """Everything measured on one project."""

    name: str
    tree: str
    files: int
    floor: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    floor_cpu: list[float] = field(default_factory=list)
    cold_cpu: list[float] = field(default_factory=list)
    warm_cpu: list[float] = field(default_factory=list)
    findings_by_code: dict[str, int] = field(default_factory=dict)
    ruff_by_code: dict[str, int] = field(default_factory=dict)
    ruff_async2_not_ours: list[str] = field(default_factory=list)
    grep_misses: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    hazards: dict[str, int] = field(default_factory=dict)
    errors: int = 0


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(run: Callable[[], AuditResult], cpu: list[float]) -> tuple[float, AuditResult]:
    """Run once; append its CPU seconds to ``cpu``; return its wall seconds and result."""
    before = _cpu()
    start = time.perf_counter()
    result = run()
    wall = time.perf_counter() - start
    cpu.append(_cpu() - before)
    return wall, result


def _ruff(tree: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*RUFF_ASYNC, "--output-format", "json", "--exit-zero", "."],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: list[dict[str, Any]] = json.loads(out or "[]")
    for item in found:
        item["relpath"] = Path(item["filename"]).resolve().relative_to(tree).as_posix()
    return found


def _async_body_lines(source: str) -> Iterator[int]:
    """Line numbers inside ``async def`` bodies, nested ``def``/``lambda``/class excluded."""
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(module):
        if not isinstance(node, ast.AsyncFunctionDef):
            continue
        first = node.body[0].lineno
        last = node.end_lineno or first
        nested: set[int] = set()
        for inner in ast.walk(node):
            if inner is not node and isinstance(
                inner, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
            ):
                nested.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
        yield from (n for n in range(first, last + 1) if n not in nested)


def _grep_misses(tree: Path, paths: list[str], flagged: set[tuple[str, int]]) -> list[str]:
    misses = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        rel = Path(path).relative_to(tree).as_posix()
        for number in sorted(set(_async_body_lines(text))):
            line = lines[number - 1] if number <= len(lines) else ""
            stripped = line.strip()
            if stripped.startswith("#") or not BLOCKING_GREP.search(line):
                continue
            if (rel, number) not in flagged:
                misses.append(f"{rel}:{number}: {stripped[:110]}")
    return misses


def measure(
    name: str, tree: Path, *, runs: int, jobs: int, sample: int, floor: Callable[..., float]
) -> ProjectResult:
    """Measure one project (see the module docstring)."""
    found = discover([tree], tree, exclude=[], respect_gitignore=True)
    paths = [f.abspath for f in found.files]
    result = ProjectResult(name=name, tree=tree.name, files=len(paths))
    cold_result: AuditResult | None = None
    cache_root = tempfile.mkdtemp(prefix="asgishift-real-")
    try:
        for run in range(runs):
            before = _cpu()
            result.floor.append(floor(paths, jobs))
            result.floor_cpu.append(_cpu() - before)
            cache = os.path.join(cache_root, str(run))
            config = AuditConfig(cache_dir=cache, jobs=jobs)
            seconds, cold_result = _timed(
                lambda c=config: audit_paths([tree], root=tree, config=c), result.cold_cpu
            )
            result.cold.append(seconds)
            seconds, _ = _timed(
                lambda c=config: audit_paths([tree], root=tree, config=c), result.warm_cpu
            )
            result.warm.append(seconds)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    assert cold_result is not None
    findings = cold_result.findings
    result.errors = len(cold_result.errors)
    result.findings_by_code = dict(sorted(Counter(f.code for f in findings).items()))
    # One hazard reached from N call sites in async code is N findings.
    sites = Counter(f"{f.code} {f.path}:{f.line}" for f in findings)
    result.hazards = dict(sorted(sites.items()))
    ruff = _ruff(tree)
    result.ruff_by_code = dict(sorted(Counter(item["code"] for item in ruff).items()))
    flagged = {(f.path, f.line) for f in findings}
    flagged |= {(hop.path, hop.line) for f in findings for hop in f.chain}
    result.ruff_async2_not_ours = [
        f"{item['code']} {item['relpath']}:{item['location']['row']}: {item['message']}"
        for item in ruff
        if item["code"].startswith("ASYNC2")
        and (item["relpath"], item["location"]["row"]) not in flagged
    ]
    result.grep_misses = _grep_misses(tree, paths, flagged)
    picks = random.Random(f"asgishift-{name}").sample(findings, min(sample, len(findings)))
    for finding in sorted(picks, key=lambda f: (f.path, f.line, f.code)):
        lines = (tree / finding.path).read_text(encoding="utf-8", errors="replace").splitlines()
        result.sample.append(
            {
                "code": finding.code,
                "where": f"{finding.path}:{finding.line}:{finding.col}",
                "source": lines[finding.line - 1].strip() if finding.line <= len(lines) else "",
                "args": finding.args,
                "chain": [f"{h.path}:{h.line} {h.function} -> {h.callee}" for h in finding.chain],
            }
        )
    out = WORK / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    return result


def _best(values: Sequence[float]) -> float:
    return min(values) if values else float("nan")


def report(results: Sequence[ProjectResult], floor_source: str, jobs: int) -> str:
    """The Markdown tables for RESULTS.md."""
    rows = [
        f"Floor: {floor_source}; {jobs} worker processes; best of the runs, alternated "
        "(floor, cold, warm) in one process. Ratios: wall / CPU, each of the best runs.",
        "",
        "| project | files | floor | cold | cold/floor | warm | warm/floor | findings | "
        "hazard sites | ruff ASYNC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        floor, cold, warm = _best(r.floor), _best(r.cold), _best(r.warm)
        floor_cpu, cold_cpu, warm_cpu = _best(r.floor_cpu), _best(r.cold_cpu), _best(r.warm_cpu)
        rows.append(
            f"| {r.tree} | {r.files} | {floor:.2f} s | {cold:.2f} s | "
            f"{cold / floor:.2f}x / {cold_cpu / floor_cpu:.2f}x | {warm:.2f} s | "
            f"{warm / floor:.2f}x / {warm_cpu / floor_cpu:.2f}x | "
            f"{sum(r.findings_by_code.values())} | {len(r.hazards)} | "
            f"{sum(r.ruff_by_code.values())} |"
        )
    rows += ["", "| project | asgishift findings by code | ruff ASYNC by code |", "|---|---|---|"]
    for r in results:
        ours = ", ".join(f"{c} {n}" for c, n in r.findings_by_code.items()) or "none"
        ruff = ", ".join(f"{c} {n}" for c, n in r.ruff_by_code.items()) or "none"
        rows.append(f"| {r.tree} | {ours} | {ruff} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch, measure and print; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", default=",".join(PROJECTS), help="comma list")
    parser.add_argument(
        "--git-dir",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="git directory of a project fetched from git (saleor)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each timing")
    parser.add_argument("--jobs", type=int, default=0, help="processes (0: one per CPU)")
    parser.add_argument("--sample", type=int, default=10, help="findings sampled per project")
    parser.add_argument("--details", action="store_true", help="print samples and misses")
    args = parser.parse_args(argv)
    git_dirs = dict(item.split("=", 1) for item in args.git_dir)
    jobs = args.jobs or os.cpu_count() or 1
    floor, floor_source = _floor_function()
    results = []
    for name in args.projects.split(","):
        kind, spec = PROJECTS[name]
        if kind == "pypi":
            tree = _pip_fetch(spec, WORK)
        elif name in git_dirs:
            tree = _git_fetch(name, Path(git_dirs[name]), spec, WORK)
        else:
            print(f"skipping {name}: pass --git-dir {name}=PATH", file=sys.stderr)
            continue
        print(f"measuring {tree.name} ...", file=sys.stderr)
        result = measure(
            name, tree.resolve(), runs=args.runs, jobs=jobs, sample=args.sample, floor=floor
        )
        results.append(result)
        if args.details:
            print(f"\n## {tree.name}")
            print(json.dumps(result.sample, indent=1))
            print("ruff ASYNC2xx without an asgishift finding on the line:")
            print("\n".join(result.ruff_async2_not_ours) or "  none")
            print("grep misses:")
            print("\n".join(result.grep_misses) or "  none")
    print(report(results, floor_source, jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
