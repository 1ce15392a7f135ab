"""The ``asgishift audit`` sub-command: arguments, settings, baseline, output, exit status.

The flags are declared once, in :func:`add_arguments`; that declaration is both
``asgishift audit --help`` and the generated ``docs/audit/cli.md``
(:mod:`asgishift.audit.docgen`). Importing this module costs only :mod:`argparse`:
the engine, :mod:`rich` and the output formats load when the command runs.

Exit status (:data:`EXIT_STATUSES`, also the ``--help`` epilog): ``0`` no findings,
``1`` findings (``0`` with ``--exit-zero``), ``2`` an error: a usage error (a bad flag,
a path that does not exist, an unknown rule code, a bad ``[tool.asgishift.audit]`` table
or baseline file) or an internal error. Files that cannot be parsed are reported (stderr
for ``text``, ``errors`` in JSON, notifications in SARIF, warnings in ``github``) but do
not change the exit status: one file with a syntax error should not hide, or stand in
for, the findings in the rest of the project.

An internal error is a bug in asgishift, never reported as findings (``1``). When the
analysis of one file raises, that file is reported like a file that cannot be parsed,
the rest is still audited and reported, and the status is ``2``, also with
``--exit-zero``: the file's findings are unknown, and a status of ``0`` would let a
CI job pass without them. Any other exception stops the run: its traceback, then one
line naming the step that failed, on stderr, and status ``2``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from asgishift.audit._exit import (
    EPILOG,
    EXIT_CLEAN,
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_STATUSES,
    EXIT_USAGE,
    Step,
    crash_status,
    internal_error,
)
from asgishift.audit._exit import error as _error

if TYPE_CHECKING:
    from asgishift.audit._model import AuditConfig, AuditResult, Rule

logger = logging.getLogger("asgishift.audit")

DESCRIPTION = """\
Find calls that block the event loop when a Django or Flask project runs under
ASGI: blocking I/O, sleeps and sync ORM use inside `async def`, directly or
through the functions it calls. Settings come from `[tool.asgishift.audit]` in
pyproject.toml; flags override them."""


class UsageError(Exception):
    """A problem with the command line or its files; printed, then exit status 2."""


def _codes(value: str) -> list[str]:
    """Split a comma list of rule codes or prefixes (``"ASH1,ash201"``)."""
    return [part.strip().upper() for part in value.split(",") if part.strip()]


def _jobs(value: str) -> int:
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per CPU) or more")
    return jobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every ``asgishift audit`` argument on ``parser``.

    :param parser: the sub-command parser (or a stand-alone one for the docs).
    """
    from asgishift.audit.output import FORMATS

    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=(
            "files or directories to audit (default: the current directory); calls into the "
            "project modules they import are followed, and a finding is reported when the "
            "async def it is reached from is in them (docs/audit/index.md)"
        ),
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="report format: text for people, json for scripts, sarif for code scanning, "
        "github for workflow annotations (default: %(default)s)",
    )
    parser.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write the report to FILE, not stdout"
    )
    parser.add_argument(
        "--select",
        type=_codes,
        metavar="CODES",
        help="comma list of rule codes or prefixes to run (ASH1,ASH201); "
        "replaces `select` from pyproject.toml",
    )
    parser.add_argument(
        "--ignore",
        type=_codes,
        metavar="CODES",
        help="comma list of rule codes or prefixes never to report; "
        "added to `ignore` from pyproject.toml",
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit with status 0 even when there are findings"
    )
    parser.add_argument(
        "--no-chains",
        action="store_true",
        help="report only hazards written directly in an async def, not those reached "
        "through calls",
    )
    parser.add_argument(
        "--reachable-only",
        action="store_true",
        help="parse only the import closure of async code instead of every file: faster on "
        "large trees, but a file outside it that does not parse is not reported "
        "(pyproject.toml: `whole-project = false`)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        metavar="N",
        help="worker processes for parsing; 0 means one per CPU (default: `jobs` from "
        "pyproject.toml, else 0)",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="pyproject.toml to read `[tool.asgishift.audit]` from (default: the nearest one "
        "upward from the first PATH); its directory is the project root",
    )
    parser.add_argument(
        "--explain",
        metavar="CODE",
        help="print what rule CODE (or its name, e.g. blocking-sleep) finds, why it matters "
        "and how to fix it, then exit",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="rewrite the findings that have a safe automatic fix (docs/audit/fix.md), "
        "then report what is left",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print the --fix rewrites as a unified diff instead of writing them; exit 1 "
        "when there is one",
    )
    parser.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix/--diff, also apply fixes that may change behaviour "
        "(async for over a QuerySet, sync_to_async around a helper)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="do not report findings recorded in FILE (see --write-baseline); "
        "CI then fails only on new findings",
    )
    parser.add_argument(
        "--write-baseline",
        type=Path,
        metavar="FILE",
        help="record every current finding in FILE and exit 0; commit FILE and pass it to "
        "--baseline",
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``audit`` sub-command on the top-level ``asgishift`` parser.

    :param subparsers: the object returned by ``ArgumentParser.add_subparsers``; the
        new parser's namespace gets ``handler=`` :func:`run`.
    """
    parser = subparsers.add_parser(
        "audit",
        help="find calls that would block the event loop",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def build_parser() -> argparse.ArgumentParser:
    """Return a stand-alone ``asgishift audit`` parser (the docs generator's input)."""
    parser = argparse.ArgumentParser(
        prog="asgishift audit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def _check_selectors(selectors: Sequence[str], codes: Sequence[str], source: str) -> None:
    """Fail on a code or prefix that matches no rule (a typo would silently select nothing)."""
    for selector in selectors:
        if not any(code.startswith(selector) for code in codes):
            raise UsageError(
                f"{source}: unknown rule code or prefix {selector!r}; "
                "run `asgishift audit --explain CODE` or see docs/audit/rules.md for the list"
            )


def _explain(code: str, stream: TextIO) -> int:
    from asgishift.audit import rules as catalogue
    from asgishift.audit._ruledoc import rule_markdown

    by_name = {rule.name: rule for rule in catalogue.all_rules()}
    try:
        rule = by_name.get(code.strip().lower()) or catalogue.get_rule(code.strip().upper())
    except KeyError:
        known = ", ".join(r.code for r in catalogue.all_rules())
        raise UsageError(f"unknown rule code {code!r}; known codes: {known}") from None
    stream.write(rule_markdown(rule) + "\n")
    return EXIT_CLEAN


def _settings(
    args: argparse.Namespace, paths: list[Path], all_rules: Sequence[Rule]
) -> tuple[AuditConfig, Path]:
    from asgishift.audit._config import ConfigError, load_config

    try:
        loaded = load_config(paths, args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    config = loaded.config
    codes = [rule.code for rule in all_rules]
    source = str(loaded.source)
    _check_selectors(config.select, codes, f"{source} [tool.asgishift.audit] select")
    _check_selectors(config.ignore, codes, f"{source} [tool.asgishift.audit] ignore")
    for glob, selectors in config.per_file_ignores.items():
        _check_selectors(selectors, codes, f"{source} per-file-ignores {glob!r}")
    if args.select is not None:
        _check_selectors(args.select, codes, "--select")
        config.select = list(args.select)
    if args.ignore is not None:
        _check_selectors(args.ignore, codes, "--ignore")
        config.ignore = [*config.ignore, *args.ignore]
    if args.jobs is not None:
        config.jobs = args.jobs
    if args.no_cache:
        config.cache_dir = None
    if args.no_chains:
        config.follow_chains = False
    if args.reachable_only:
        config.whole_project = False
    for path in paths:
        try:
            path.resolve().relative_to(loaded.root)
        except ValueError:
            raise UsageError(
                f"{path} is outside the project root {loaded.root} (the directory of "
                f"{source}); audit it with --config pointing at its own pyproject.toml"
            ) from None
    return config, loaded.root


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Show a transient progress bar on stderr while files are parsed.

    Only for people: when ``enabled`` (text format) and stderr itself is a
    terminal. ``isatty()`` rather than rich's detection, because FORCE_COLOR in a CI
    log must not turn on a redrawing bar.
    """
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("auditing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("audit", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _covered(args: argparse.Namespace) -> Callable[[dict[str, Any]], bool] | None:
    """Return whether this run looks for a baseline entry's finding at all.

    ``--select``, ``--ignore`` and ``--no-chains`` narrow one run (a CI job for
    one rule family, say); the entries they leave out are neither "no longer
    found" nor dropped by ``--write-baseline``.

    :return: the test, or ``None`` without those flags (every entry is looked for).
    """
    if args.select is None and not args.ignore and not args.no_chains:
        return None
    select = tuple(args.select) if args.select is not None else None
    ignore = tuple(args.ignore or ())

    def covered(entry: dict[str, Any]) -> bool:
        code = entry.get("code")
        if isinstance(code, str):
            if select is not None and not code.startswith(select):
                return False
            if ignore and code.startswith(ignore):
                return False
        return not (args.no_chains and "entry" in entry)

    return covered


def _entries_to_keep(
    path: Path,
    scopes: Sequence[str],
    current: Sequence[str],
    covered: Callable[[dict[str, Any]], bool] | None,
) -> list[dict[str, Any]]:
    """Return the entries of baseline ``path`` for files outside ``scopes``, to write back.

    Rewriting a baseline while auditing a sub-directory keeps the other files'
    entries as they are. They must be of the version written now, else they
    would never match again. A finding belongs to the file of the ``async def``
    it is reached from, not the hazard's (``entry_in_scope``); an entry whose
    file is unknown is kept unless one of ``current`` (the fingerprints written
    now) rewrites it, so it is neither lost nor written twice. An entry the run
    did not look for (``covered``) is kept too.
    """
    from collections import Counter

    from asgishift.audit._baseline import (
        BASELINE_VERSION,
        BaselineError,
        entry_in_scope,
        read_baseline,
    )

    if not path.exists() or ("." in scopes and covered is None):
        return []
    try:
        old = read_baseline(path)
    except BaselineError as exc:
        raise UsageError(f"{exc} (without a sub-path, --select, --ignore or --no-chains)") from None
    written = Counter(current)
    kept = []
    for entry in old.entries:
        owned = entry_in_scope(entry, scopes) if covered is None or covered(entry) else False
        if owned is None and written[entry["fingerprint"]] > 0:
            written[entry["fingerprint"]] -= 1
        elif not owned:
            kept.append(entry)
    if kept and old.version != BASELINE_VERSION:
        raise UsageError(
            f"{path} is a version {old.version} baseline with entries this run does not "
            f"audit ({', '.join(scopes)}, flags); rewrite it for the whole project first with "
            f"`asgishift audit --write-baseline {path}`"
        )
    return kept


def _audit(args: argparse.Namespace, step: Step) -> int:
    from asgishift import __version__
    from asgishift.audit import engine
    from asgishift.audit import rules as catalogue
    from asgishift.audit._baseline import (
        BASELINE_VERSION,
        BaselineError,
        apply_baseline,
        fingerprints,
        read_baseline,
        write_baseline,
    )
    from asgishift.audit.output import Report, get_renderer, plural, rules_by_code
    from asgishift.audit.output._text import format_error

    paths: list[Path] = args.paths or [Path(".")]
    step.doing = "reading the settings"
    for path in paths:
        if not path.exists():
            raise UsageError(f"path {str(path)!r} does not exist")
    all_rules = catalogue.all_rules()
    config, root = _settings(args, paths, all_rules)
    baseline = None
    if args.baseline is not None:
        step.doing = f"reading the baseline {args.baseline}"
        try:
            baseline = read_baseline(args.baseline)
        except BaselineError as exc:
            raise UsageError(str(exc)) from None

    step.doing = "auditing the files"
    with _progress(args.format == "text") as progress:
        result = engine.audit_paths(
            [p.resolve() for p in paths], root=root.resolve(), config=config, progress=progress
        )
    if args.fix or args.diff:
        from asgishift.audit.fix._cli import run_fixes

        step.doing = "computing fixes" if args.diff else "applying fixes"

        def reaudit() -> AuditResult:
            return engine.audit_paths(
                [p.resolve() for p in paths], root=root.resolve(), config=config
            )

        changed, result = run_fixes(
            result, unsafe=args.unsafe_fixes, write=not args.diff, reaudit=reaudit
        )
        if args.diff:
            return crash_status(result.errors, EXIT_FINDINGS if changed else EXIT_CLEAN)
    step.doing = "fingerprinting the findings"
    prints = fingerprints(result.findings)
    # The audited paths relative to the root: baseline entries of other files are left alone.
    scopes = [p.resolve().relative_to(root.resolve()).as_posix() for p in paths]

    if args.write_baseline is not None:
        step.doing = f"writing the baseline {args.write_baseline}"
        kept = _entries_to_keep(args.write_baseline, scopes, prints, _covered(args))
        count = write_baseline(args.write_baseline, result.findings, kept)
        for error in result.errors:
            print(format_error(error), file=sys.stderr)
        others = f" ({len(kept)} kept for files not audited)" if kept else ""
        written = f"Wrote {plural(count, 'finding')} to {args.write_baseline}{others}."
        print(written, file=sys.stderr)
        return crash_status(result.errors, EXIT_CLEAN)

    report = Report(
        findings=result.findings,
        fingerprints=prints,
        errors=result.errors,
        files_scanned=result.files_scanned,
        files_parsed=result.files_parsed,
        root=result.root,
        rules=rules_by_code(all_rules),
        tool_version=__version__,
    )
    if baseline is not None:
        step.doing = f"applying the baseline {args.baseline}"
        outcome = apply_baseline(
            prints
            if baseline.version == BASELINE_VERSION
            else fingerprints(result.findings, baseline.version),
            baseline,
            scopes,
            _covered(args),
        )
        report.findings = [result.findings[i] for i in outcome.kept]
        report.fingerprints = [prints[i] for i in outcome.kept]
        report.baseline_matched = outcome.matched
        report.baseline_stale = outcome.stale

    step.doing = f"writing the {args.format} report"
    if args.format == "text":
        # Unauditable files go to stderr so `> report.txt` holds findings only.
        for error in report.errors:
            print(format_error(error), file=sys.stderr)
    if args.output is not None:
        with args.output.open("w", encoding="utf-8", newline="\n") as stream:
            get_renderer(args.format, color=False)(report, stream)
    else:
        if isinstance(sys.stdout, io.TextIOWrapper):
            # A non-UTF-8 console must not crash on a non-ASCII path or snippet.
            sys.stdout.reconfigure(errors="backslashreplace")
        try:
            get_renderer(args.format)(report, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # `asgishift audit | head`: the reader left; the audit's outcome, and
            # so the exit status (--exit-zero included), is the same.
            _silence_stdout()

    return crash_status(
        report.errors, EXIT_FINDINGS if report.findings and not args.exit_zero else EXIT_CLEAN
    )


def _silence_stdout() -> None:
    """Point stdout at devnull after its reader left (``BrokenPipeError``).

    The interpreter's final flush then does not raise again (Python docs,
    signal module, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(args: argparse.Namespace) -> int:
    """Run ``asgishift audit`` for parsed arguments and return the exit status.

    :param args: the namespace from the parser :func:`add_arguments` configured.
    :return: :data:`EXIT_CLEAN` (0), :data:`EXIT_FINDINGS` (1) or :data:`EXIT_ERROR`
        (2, see :data:`EXIT_STATUSES`); usage errors are printed to stderr as
        ``asgishift audit: error: ...``, an exception that stops the run (a bug)
        as its traceback and then one such line naming the step that failed.
    """
    step = Step("starting")
    try:
        if args.explain is not None:
            step.doing = f"explaining {args.explain}"
            return _explain(args.explain, sys.stdout)
        return _audit(args, step)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader left while --explain or --diff wrote (the report's own
        # writing handles it in _audit); the outcome is unknown here, so not 0.
        _silence_stdout()
        return EXIT_FINDINGS
    except OSError as exc:
        # --output / --write-baseline into a missing directory, a read-only file...
        _error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        return EXIT_USAGE
    except Exception as exc:
        # A bug: never the status of findings (1), which CI would read as such.
        return internal_error(exc, step)


__all__ = [
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_STATUSES",
    "EXIT_USAGE",
    "add_arguments",
    "add_parser",
    "build_parser",
    "run",
]
