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
- the qualified name of the ``async def`` its chain starts in (the first hop's
  function; nothing for a hazard written in the ``async def`` itself): the engine
  reports one finding per call site in async code, so a new view calling an
  already recorded helper is a new finding, and the recorded one still matches;
- an occurrence index: the n-th finding with the same preceding parts in file order,
  so two identical ``time.sleep(1)`` lines in one function stay distinct.

Version 1 baselines left the ``async def`` out: a new call site of a recorded
hazard then took the recorded entry (it came first in file order) and the old
call site was reported instead. A version 1 file is still read and matched the
version 1 way; ``--write-baseline`` rewrites it as version 2 (a hazard written in
an ``async def`` keeps its fingerprint).

The same value is SARIF's ``partialFingerprints["asgishift/v2"]`` so code-scanning
alerts track a finding across commits the same way the baseline does.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgishift.audit._model import Finding
from asgishift.audit._regular import NotRegularFile, read_regular

#: The version :func:`write_baseline` writes (and :func:`fingerprints` computes by default).
BASELINE_VERSION = 2
#: The versions :func:`read_baseline` reads.
READABLE_VERSIONS = (1, 2)
FINGERPRINT_KEY = f"asgishift/v{BASELINE_VERSION}"
#: The order of a baseline file's entries.
_SORT_KEYS = ("path", "code", "snippet", "entry", "fingerprint")


class BaselineError(Exception):
    """A baseline file that cannot be read; the CLI exits with status 2."""


def _normalise(snippet: str) -> str:
    return " ".join(snippet.split())


def _entry(finding: Finding) -> str:
    """Return the ``async def`` the finding's chain starts in, or ``""`` without a chain."""
    return finding.chain[0].function if finding.chain else ""


def _identity(finding: Finding, version: int) -> str:
    parts = [finding.code, finding.path, _normalise(finding.snippet)]
    if version >= 2 and finding.chain:
        parts.append(_entry(finding))
    return "\0".join(parts)


def fingerprints(findings: Sequence[Finding], version: int = BASELINE_VERSION) -> list[str]:
    """Compute the line-independent fingerprint of each finding.

    :param findings: findings in report order (sorted by path, line, column, code);
        the order decides the occurrence index of identical findings.
    :param version: the baseline version whose fingerprints to compute (a
        version 1 file is matched with version 1 fingerprints).
    :return: one 32-character hex string per finding, in the same order.
    """
    seen: Counter[str] = Counter()
    result = []
    for finding in findings:
        identity = _identity(finding, version)
        occurrence = seen[identity]
        seen[identity] += 1
        digest = hashlib.sha256(f"{identity}\0{occurrence}".encode()).hexdigest()
        result.append(digest[:32])
    return result


def in_scope(path: object, scopes: Sequence[str]) -> bool:
    """Return whether a baseline entry's file lies under the audited paths.

    :param path: the entry's ``path`` (relative to the project root, POSIX);
        an entry without one counts as audited.
    :param scopes: the audited paths relative to the project root, POSIX
        (``"."`` for the root itself).
    """
    if not isinstance(path, str):
        return True
    return any(scope == "." or path == scope or path.startswith(f"{scope}/") for scope in scopes)


def entry_in_scope(entry: dict[str, Any], scopes: Sequence[str]) -> bool | None:
    """Return whether a run over ``scopes`` reports the finding a baseline entry records.

    A finding belongs to the file of the ``async def`` it is reached from (the
    engine keeps a finding when that file is audited), which for a chain is not
    the hazard's ``path``: ``entry_path`` records it. An entry with an ``entry``
    but no ``entry_path`` (written before it was recorded) belongs to a file
    this cannot tell.

    :param entry: one baseline entry as read.
    :param scopes: the audited paths, as for :func:`in_scope`.
    :return: ``True`` or ``False``, or ``None`` when unknown (only for a run
        over part of the project).
    """
    if "." in scopes:
        return True
    owner = entry.get("entry_path")
    if owner is None and "entry" in entry:
        return None
    return in_scope(owner if owner is not None else entry.get("path"), scopes)


@dataclass
class Baseline:
    """A baseline file as read.

    :param version: its format version (one of :data:`READABLE_VERSIONS`); match
        it with ``fingerprints(findings, version)``.
    :param entries: its entries as written (each has a ``fingerprint``).
    """

    version: int
    entries: list[dict[str, Any]]

    @property
    def counts(self) -> Counter[str]:
        """Fingerprint to how many times it occurs (normally once)."""
        return Counter(e["fingerprint"] for e in self.entries)


@dataclass
class BaselineOutcome:
    """What applying a baseline did.

    :param kept: indexes (into the run's findings) of the findings not in the
        baseline, in order: the ones to report.
    :param matched: how many findings the baseline suppressed.
    :param stale: baseline entries of audited files no finding matched any
        more (fixed code); rewriting the baseline drops them. An entry is of
        an audited file when the ``async def`` its finding is reached from is
        (:func:`entry_in_scope`); one whose file is unknown is not counted.
    """

    kept: list[int]
    matched: int
    stale: int


def write_baseline(
    path: Path, findings: Sequence[Finding], kept: Sequence[dict[str, Any]] = ()
) -> int:
    """Write ``findings`` to a baseline file.

    The file is JSON, sorted and without line numbers, so it only changes in a diff
    when findings appear or disappear::

        {"version": 2, "tool": "asgishift",
         "findings": [{"fingerprint": "...", "code": "ASH101",
                       "path": "shop/pay.py", "snippet": "time.sleep(1)",
                       "entry": "shop.views.checkout"}]}

    ``code``, ``path``, ``snippet`` and ``entry`` (the ``async def`` a chain starts
    in; absent for a hazard written in it) are there for reviewers; only
    ``fingerprint`` is matched. ``entry_path`` (the file of ``entry``) tells a run
    over part of the project which entries are its own (:func:`entry_in_scope`).

    :param path: the file to (over)write.
    :param findings: the findings in report order.
    :param kept: entries of the file being rewritten to keep as they are (those
        of files outside the paths audited this time).
    :return: the number of entries written.
    :raise OSError: when the file cannot be written.
    """
    entries: list[dict[str, Any]] = [
        {
            "fingerprint": fp,
            "code": f.code,
            "path": f.path,
            "snippet": _normalise(f.snippet),
            **({"entry": _entry(f), "entry_path": f.chain[0].path} if f.chain else {}),
        }
        for f, fp in zip(findings, fingerprints(findings), strict=True)
    ]
    entries.extend(kept)
    entries.sort(key=lambda e: [str(e.get(k, "")) for k in _SORT_KEYS])
    document = {"version": BASELINE_VERSION, "tool": "asgishift", "findings": entries}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(entries)


def read_baseline(path: Path) -> Baseline:
    """Read the fingerprints of a baseline file.

    :param path: a file written by :func:`write_baseline` (this version or an
        earlier one, :data:`READABLE_VERSIONS`).
    :return: its version and fingerprints.
    :raise BaselineError: when the file is missing, not JSON, or not a baseline
        of a readable version; the message names the file and how to regenerate it.
    """
    fix = f"regenerate it with `asgishift audit --write-baseline {path}`"
    try:
        # Never ``read_text()``: a FIFO given as the baseline would block the run.
        document: Any = json.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file does not exist; {fix}") from None
    except NotRegularFile:
        raise BaselineError(f"{path}: not a regular file (a FIFO, socket or device)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read baseline ({exc}); {fix}") from None
    version = document.get("version") if isinstance(document, dict) else None
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = " or ".join(map(str, READABLE_VERSIONS))
        raise BaselineError(f"{path}: not a version {readable} asgishift baseline; {fix}")
    entries = document.get("findings")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("fingerprint"), str) for e in entries
    ):
        raise BaselineError(f"{path}: 'findings' must be a list of {{fingerprint: ...}}; {fix}")
    return Baseline(version, entries)


def apply_baseline(
    finding_fingerprints: Sequence[str],
    baseline: Baseline,
    scopes: Sequence[str] = (".",),
    covered: Callable[[dict[str, Any]], bool] | None = None,
) -> BaselineOutcome:
    """Match a run's findings against a baseline.

    Each baseline entry suppresses at most one finding, so a second identical
    finding added next to a baselined one is still reported (it gets the next
    occurrence index, hence a different fingerprint anyway).

    :param finding_fingerprints: :func:`fingerprints` of the run's findings, in
        report order, of the baseline's version.
    :param baseline: as returned by :func:`read_baseline`.
    :param scopes: the audited paths (see :func:`in_scope`): an entry of a file
        outside them is not stale for not being matched.
    :param covered: whether the run looked for an entry's finding at all
        (``--select``, ``--ignore`` and ``--no-chains`` leave some out); an
        entry it did not look for is not stale either. ``None``: every entry.
    :return: which findings to report and the match counts.
    """
    remaining = baseline.counts
    kept = []
    matched = 0
    for index, fp in enumerate(finding_fingerprints):
        if remaining[fp] > 0:
            remaining[fp] -= 1
            matched += 1
        else:
            kept.append(index)
    entries = {e["fingerprint"]: e for e in baseline.entries}
    stale = sum(
        n
        for fp, n in remaining.items()
        if entry_in_scope(entries[fp], scopes) and (covered is None or covered(entries[fp]))
    )
    return BaselineOutcome(kept=kept, matched=matched, stale=stale)


__all__ = [
    "BASELINE_VERSION",
    "FINGERPRINT_KEY",
    "READABLE_VERSIONS",
    "Baseline",
    "BaselineError",
    "BaselineOutcome",
    "apply_baseline",
    "entry_in_scope",
    "fingerprints",
    "in_scope",
    "read_baseline",
    "write_baseline",
]
