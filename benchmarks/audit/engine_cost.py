"""CPU cost of one audit engine on real trees: warm run (linking), cold run, cache size.

Compares two engines by running this script once per engine, each in a fresh
process, with ``--src`` naming the ``src`` directory to import ``asgishift``
from (for another commit: ``git archive COMMIT src | tar -x -C DIR`` and pass
``DIR/src``). For each tree it prints:

* **warm**: ``audit_paths()`` with the cache a cold run filled, after deleting
  the whole-run memo (``*.run`` in the cache directory) so the run re-links
  instead of replaying the last result; process CPU time, best of ``--runs``;
* **cold**: ``audit_paths()`` with no cache, best of ``--cold-runs``
  (``0`` skips it);
* **cache**: bytes of the per-file cache the cold run wrote.

Everything runs with ``jobs=1``, so CPU time is the engine's own. Run it under
the shared lock and alternate the engines, e.g.::

    for i in 1 2 3 4; do
      flock /tmp/bench.lock python benchmarks/audit/engine_cost.py --src /tmp/main/src TREES...
      flock /tmp/bench.lock python benchmarks/audit/engine_cost.py --src src TREES...
    done
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the engine under ``--src`` on each tree; print one line per tree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="directory holding the asgishift package")
    parser.add_argument("--runs", type=int, default=5, help="warm runs (best is printed)")
    parser.add_argument("--cold-runs", type=int, default=0, help="cold runs (0: skip)")
    parser.add_argument("trees", nargs="+", type=Path)
    args = parser.parse_args(argv)
    src = os.path.abspath(args.src)
    sys.path.insert(0, src)
    sys.dont_write_bytecode = True
    import asgishift
    from asgishift.audit._model import AuditConfig
    from asgishift.audit.engine import audit_paths

    if not os.path.abspath(asgishift.__file__).startswith(src):
        raise SystemExit(f"imported {asgishift.__file__}, not from {src}")
    for tree in args.trees:
        cache = tempfile.mkdtemp(prefix="asgishift-cost-")
        try:
            result = audit_paths([tree], root=tree, config=AuditConfig(cache_dir=cache, jobs=1))
            size = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
            warm = float("inf")
            for _ in range(args.runs):
                for memo in Path(cache).rglob("*.run"):
                    memo.unlink()
                start = time.process_time()
                audit_paths([tree], root=tree, config=AuditConfig(cache_dir=cache, jobs=1))
                warm = min(warm, time.process_time() - start)
            cold = float("inf")
            for _ in range(args.cold_runs):
                start = time.process_time()
                audit_paths([tree], root=tree, config=AuditConfig(cache_dir=None, jobs=1))
                cold = min(cold, time.process_time() - start)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        cold_text = f" cold {cold:.3f} s" if args.cold_runs else ""
        print(
            f"{args.src} {tree.name}: findings {len(result.findings)} warm {warm:.3f} s"
            f"{cold_text} cache {size / 1e6:.2f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
