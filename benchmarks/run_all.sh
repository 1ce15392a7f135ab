#!/usr/bin/env bash
# Run every benchmark at full size and keep the outputs in one directory.
#
# Usage: benchmarks/run_all.sh [OUTDIR]   (default: benchmarks/_work, git-ignored)
# Needs wrk and taskset on PATH, and the project's virtualenv in .venv.
# Takes about 20 minutes on 2 cores: in-process ~2, memory ~1, HTTP ~16.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/_work}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "nproc: $(nproc)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/run.txt"
"$py" benchmarks/inprocess_bench.py > "$out/inprocess.md" 2> "$out/inprocess.log"
"$py" benchmarks/profile_bridge.py > "$out/profile.md" 2> "$out/profile.log"
"$py" benchmarks/memory_bench.py > "$out/memory.md" 2> "$out/memory.log"
"$py" benchmarks/http_bench.py --json "$out/http.json" > "$out/http.md" 2> "$out/http.log"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/run.txt"
echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$out/run.txt"
