"""Line-move-proof finding fingerprints and the baseline file built from them.

A project adopting the audit usually has findings it cannot fix today. It records
them once with ``asgishift audit --write-baseline .asgishift-baseline.json`` and
runs CI with ``--baseline .asgishift-baseline.json``: only findings missing from
the baseline are reported, so CI fails on *new* hazards only.

The fingerprint must not change when unrelated edits move a line, so it never
includes a line or column. It hashes:

- the rule code and the file path (relative to the project root);
- the flagged source line with all whitespace collapsed (re-indenting or
  re-wrapping around it does not matter, editing the call itself does);
- an occurrence index: the n-th finding with the same preceding parts in file order,
  so two identical ``time.sleep(1)`` lines in one function stay distinct.

The call chain is left out on purpose: the engine reports one finding per hazard
site, and which ``async def`` it shows as the entry can change when an unrelated view
starts calling the same helper; that must not make a recorded finding new.

The same value is SARIF's ``partialFingerprints["asgishift/v1"]`` so code-scanning
alerts track a finding across commits the same way the baseline does.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgishift.audit._model import Finding

BASELINE_VERSION = 1
FINGERPRINT_KEY = "asgishift/v1"


class BaselineError(Exception):
    """A baseline file that cannot be read; the CLI exits with status 2."""


def _normalise(snippet: str) -> str:
    return " ".join(snippet.split())


def _identity(finding: Finding) -> str:
    return "\0".join((finding.code, finding.path, _normalise(finding.snippet)))


def fingerprints(findings: Sequence[Finding]) -> list[str]:
    """Compute the line-independent fingerprint of each finding.

    :param findings: findings in report order (sorted by path, line, column, code);
        the order decides the occurrence index of identical findings.
    :return: one 32-character hex string per finding, in the same order.
    """
    seen: Counter[str] = Counter()
    result = []
    for finding in findings:
        identity = _identity(finding)
        occurrence = seen[identity]
        seen[identity] += 1
        digest = hashlib.sha256(f"{identity}\0{occurrence}".encode()).hexdigest()
        result.append(digest[:32])
    return result


@dataclass
class BaselineOutcome:
    """What applying a baseline did.

    :param kept: indexes (into the run's findings) of the findings not in the
        baseline, in order: the ones to report.
    :param matched: how many findings the baseline suppressed.
    :param stale: baseline entries no finding matched any more (fixed code);
        rewriting the baseline drops them.
    """

    kept: list[int]
    matched: int
    stale: int


def write_baseline(path: Path, findings: Sequence[Finding]) -> int:
    """Write ``findings`` to a baseline file.

    The file is JSON, sorted and without line numbers, so it only changes in a diff
    when findings appear or disappear::

        {"version": 1, "tool": "asgishift",
         "findings": [{"fingerprint": "...", "code": "ASH101",
                       "path": "shop/views.py", "snippet": "time.sleep(1)"}]}

    ``code``, ``path`` and ``snippet`` are there for reviewers; only ``fingerprint``
    is matched.

    :param path: the file to (over)write.
    :param findings: the findings in report order.
    :return: the number of entries written.
    :raise OSError: when the file cannot be written.
    """
    entries = [
        {"fingerprint": fp, "code": f.code, "path": f.path, "snippet": _normalise(f.snippet)}
        for f, fp in zip(findings, fingerprints(findings), strict=True)
    ]
    entries.sort(key=lambda e: (e["path"], e["code"], e["snippet"], e["fingerprint"]))
    document = {"version": BASELINE_VERSION, "tool": "asgishift", "findings": entries}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(entries)


def read_baseline(path: Path) -> Counter[str]:
    """Read the fingerprints of a baseline file.

    :param path: a file written by :func:`write_baseline`.
    :return: fingerprint to how many times it occurs (normally once).
    :raise BaselineError: when the file is missing, not JSON, or not a version-1
        baseline; the message names the file and how to regenerate it.
    """
    fix = f"regenerate it with `asgishift audit --write-baseline {path}`"
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file does not exist; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read baseline ({exc}); {fix}") from None
    if not isinstance(document, dict) or document.get("version") != BASELINE_VERSION:
        raise BaselineError(f"{path}: not a version {BASELINE_VERSION} asgishift baseline; {fix}")
    entries = document.get("findings")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("fingerprint"), str) for e in entries
    ):
        raise BaselineError(f"{path}: 'findings' must be a list of {{fingerprint: ...}}; {fix}")
    return Counter(e["fingerprint"] for e in entries)


def apply_baseline(finding_fingerprints: Sequence[str], baseline: Counter[str]) -> BaselineOutcome:
    """Match a run's findings against a baseline.

    Each baseline entry suppresses at most one finding, so a second identical
    finding added next to a baselined one is still reported (it gets the next
    occurrence index, hence a different fingerprint anyway).

    :param finding_fingerprints: :func:`fingerprints` of the run's findings, in
        report order.
    :param baseline: as returned by :func:`read_baseline`.
    :return: which findings to report and the match counts.
    """
    remaining = Counter(baseline)
    kept = []
    matched = 0
    for index, fp in enumerate(finding_fingerprints):
        if remaining[fp] > 0:
            remaining[fp] -= 1
            matched += 1
        else:
            kept.append(index)
    return BaselineOutcome(kept=kept, matched=matched, stale=sum(remaining.values()))


__all__ = [
    "BASELINE_VERSION",
    "FINGERPRINT_KEY",
    "BaselineError",
    "BaselineOutcome",
    "apply_baseline",
    "fingerprints",
    "read_baseline",
    "write_baseline",
]
