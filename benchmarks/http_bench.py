"""Requests per second and p99 latency of the WSGI->ASGI bridges under real servers.

Two scenarios, each measured in one run on the same apps:

``hello``
    ``GET /`` on a Flask hello world and on a plain WSGI hello world, served by
    asgishift, a2wsgi and asgiref's ``WsgiToAsgi`` under uvicorn, hypercorn and
    granian, plus gunicorn's gthread worker serving the WSGI app natively as
    the reference. ``wrk -t1 -c50 --latency``.
``sleep``
    ``GET /sleep`` (the view blocks 0.1 s) with 100 connections, asgishift at
    ``max_workers=100``, a2wsgi at its default (10 threads) and at
    ``workers=100``, asgiref (one thread, no setting), gunicorn gthread with
    100 threads. 100 connections x 0.1 s bounds the ideal at 1000 req/s.

Every server is one process pinned to core 0, wrk is pinned to core 1. All
servers of a scenario are started first; then each round runs wrk once
against each of them in a rotated order, so slow drifts of a shared machine
hit every configuration alike. The table shows the median over the rounds
of req/s and p99, and each figure as a ratio to a2wsgi (default workers) on
the same server: the median over rounds of the ratio within each round. The
gunicorn rows are compared with a2wsgi under uvicorn. "server CPU us/req" is
the CPU time (user + system) the serving process (the one holding the
listening socket) used during each round's wrk run, divided by the requests
wrk completed, median over rounds: unlike req/s it barely moves when other
jobs share the machine, and in the sleep scenario it separates the cost of a
request from the latency that bounds req/s there.

Run ``python benchmarks/http_bench.py --help`` for the options; ``--smoke``
checks the machinery in a few seconds and measures nothing worth reading.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from _common import (
    ADAPTERS,
    ASGI_SERVERS,
    WrkResult,
    asgishift_available,
    cpu_seconds,
    machine_info,
    markdown_table,
    run_servers,
    run_wrk,
)


@dataclass
class Config:
    """One server + bridge + app combination to measure.

    :param adapter: ``asgishift``, ``a2wsgi``, ``a2wsgi-100``, ``asgiref`` or ``wsgi``.
    :param env: the ``BENCH_*`` variables for ``bench_app``.
    :param threads: gunicorn thread count (ignored by the ASGI servers).
    """

    app: str
    server: str
    adapter: str
    env: dict[str, str]
    threads: int = 8
    results: list[WrkResult] = field(default_factory=list)
    #: server CPU (user + system) per request of each round, microseconds,
    #: measured on the process that holds the listening socket
    cpu_us: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Return ``app/server/adapter``."""
        return f"{self.app}/{self.server}/{self.adapter}"


def hello_configs(
    apps: Sequence[str], servers: Sequence[str], adapters: Sequence[str]
) -> list[Config]:
    """Return the configurations of the hello-world scenario."""
    configs: list[Config] = []
    for app in apps:
        for server in servers:
            for adapter in adapters:
                env = {"BENCH_APP": app, "BENCH_ADAPTER": adapter}
                configs.append(Config(app, server, adapter, env))
        env = {"BENCH_APP": app, "BENCH_ADAPTER": "wsgi"}
        configs.append(Config(app, "gunicorn", "wsgi", env, threads=8))
    return configs


def sleep_configs(servers: Sequence[str], adapters: Sequence[str], workers: int) -> list[Config]:
    """Return the configurations of the blocking-view scenario (Flask app)."""
    configs: list[Config] = []
    for server in servers:
        for adapter in adapters:
            env = {"BENCH_APP": "flask", "BENCH_ADAPTER": adapter}
            if adapter == "asgishift":
                env["BENCH_WORKERS"] = str(workers)
            configs.append(Config("flask", server, adapter, env))
            if adapter == "a2wsgi":
                env = {**env, "BENCH_WORKERS": str(workers)}
                configs.append(Config("flask", server, f"a2wsgi-{workers}", env))
    env = {"BENCH_APP": "flask", "BENCH_ADAPTER": "wsgi"}
    configs.append(Config("flask", "gunicorn", "wsgi", env, threads=workers))
    return configs


def measure(
    configs: list[Config],
    *,
    path: str,
    connections: int,
    duration: float,
    warmup: float,
    rounds: int,
    timeout: float,
) -> None:
    """Run every configuration ``rounds`` times, rotating the order each round.

    Results are appended to each :attr:`Config.results`.
    """
    specs = [(c.label, c.server, c.env, c.threads) for c in configs]
    pids: dict[str, int] = {}
    with run_servers(specs) as servers:
        for number in range(rounds):
            shift = number % len(configs)
            for config in configs[shift:] + configs[:shift]:
                url = servers[config.label].url + path
                if warmup > 0:
                    run_wrk(url, connections=connections, duration=warmup, timeout=timeout)
                pid = pids.get(config.label)
                if pid is None:
                    pid = pids[config.label] = servers[config.label].worker_pid()
                before = cpu_seconds(pid)
                result = run_wrk(url, connections=connections, duration=duration, timeout=timeout)
                used = cpu_seconds(pid) - before
                config.results.append(result)
                config.cpu_us.append(used * 1e6 / result.requests if result.requests else 0.0)
                print(
                    f"  round {number + 1}/{rounds} {config.label:32} "
                    f"{result.rps:10.1f} req/s  p99 {result.p99_ms:8.2f} ms  "
                    f"CPU {config.cpu_us[-1]:7.1f} us/req  errors {result.errors}",
                    file=sys.stderr,
                    flush=True,
                )


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """Return the medians of req/s, p99 and errors over rounds."""
    return WrkResult(
        rps=statistics.median(r.rps for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        requests=round(statistics.median(r.requests for r in results)),
        errors=round(statistics.median(r.errors for r in results)),
    )


def round_ratio(values: Sequence[float], refs: Sequence[float]) -> float | None:
    """Return the median over rounds of ``value / reference`` within each round.

    Each round measures a configuration and its reference minutes apart at
    most, so the per-round ratio cancels the slow drifts of a shared machine
    better than a ratio of medians taken over the whole run.
    """
    pairs = [v / r for v, r in zip(values, refs, strict=False) if r > 0]
    return statistics.median(pairs) if pairs else None


def table(configs: Sequence[Config]) -> str:
    """Render medians over rounds, and ratios to a2wsgi on the same server and app."""
    by_label = {c.label: c for c in configs}
    rows: list[list[str]] = []
    for config in configs:
        result = median_result(config.results)
        ref_server = "uvicorn" if config.server == "gunicorn" else config.server
        ref = by_label.get(f"{config.app}/{ref_server}/a2wsgi")
        rps_ratio = p99_ratio = None
        if ref is not None:
            rps_ratio = round_ratio([r.rps for r in config.results], [r.rps for r in ref.results])
            p99_ratio = round_ratio(
                [r.p99_ms for r in config.results], [r.p99_ms for r in ref.results]
            )
        rows.append(
            [
                config.app,
                config.server,
                config.adapter,
                f"{result.rps:.0f}",
                "-" if rps_ratio is None else f"{rps_ratio:.2f}x",
                f"{result.p99_ms:.2f}",
                "-" if p99_ratio is None else f"{p99_ratio:.2f}x",
                str(result.errors),
                f"{statistics.median(config.cpu_us):.0f}" if config.cpu_us else "-",
                " ".join(f"{r.rps:.0f}" for r in config.results),
            ]
        )
    header = ["app", "server", "bridge", "req/s", "req/s vs a2wsgi", "p99 ms", "p99 vs a2wsgi",
              "errors", "server CPU us/req", "req/s per round"]  # fmt: skip
    return markdown_table(header, rows)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        epilog="Ratios are to a2wsgi (default workers) on the same server; gunicorn rows "
        "are compared with a2wsgi under uvicorn.",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="1-second runs, one round, no warm-up, Flask app only, sleep scenario on uvicorn "
        "and gunicorn only: checks the machinery, measures nothing worth reading",
    )
    parser.add_argument("--scenario", choices=["hello", "sleep", "all"], default="all")
    parser.add_argument("--apps", default="flask,plain", help="comma-separated: flask,plain")
    parser.add_argument("--servers", default=",".join(ASGI_SERVERS),
                        help="comma-separated ASGI servers (default: %(default)s)")  # fmt: skip
    parser.add_argument("--adapters", default=",".join(ADAPTERS),
                        help="comma-separated bridges (default: %(default)s)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of wrk before each hello run (none for sleep: a warm-up would leave a "
        "backlog of blocked requests behind that the measured run would pay for)",
    )
    parser.add_argument("--connections", type=int, default=50, help="wrk -c for hello")
    parser.add_argument("--sleep-connections", type=int, default=100, help="wrk -c for sleep")
    parser.add_argument("--sleep-duration", type=float, default=6.0,
                        help="seconds per wrk run in the sleep scenario")  # fmt: skip
    parser.add_argument(
        "--workers",
        type=int,
        default=100,
        help="thread-pool size for the sleep scenario (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write raw results as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.sleep_duration, args.warmup = 1, 1.0, 1.0, 0.0
        args.apps = "flask"
    apps = [a for a in args.apps.split(",") if a]
    servers = [s for s in args.servers.split(",") if s]
    adapters = [a for a in args.adapters.split(",") if a]
    if "asgishift" in adapters and not asgishift_available():
        print("asgishift.bridge.WSGIToASGI does not import: leaving asgishift out", file=sys.stderr)
        adapters.remove("asgishift")

    info = machine_info()
    print("# HTTP benchmark\n")
    print(", ".join(f"{k} {v}" for k, v in info.items()) + "\n")
    report: dict[str, object] = {"machine": info, "args": vars(args)}
    if args.scenario in ("hello", "all"):
        configs = hello_configs(apps, servers, adapters)
        print(f"## hello: GET /, wrk -t1 -c{args.connections} -d{args.duration:g}s, "
              f"{args.rounds} round(s), median\n", flush=True)  # fmt: skip
        measure(configs, path="/", connections=args.connections, duration=args.duration,
                warmup=args.warmup, rounds=args.rounds, timeout=2.0)  # fmt: skip
        print(table(configs) + "\n", flush=True)
        report["hello"] = [{**asdict(c), "label": c.label} for c in configs]
    if args.scenario in ("sleep", "all"):
        sleep_servers = servers[:1] if args.smoke else servers
        configs = sleep_configs(sleep_servers, adapters, args.workers)
        print(
            f"## sleep: GET /sleep (blocks 0.1 s), Flask, wrk -t1 -c{args.sleep_connections} "
            f"-d{args.sleep_duration:g}s, {args.rounds} round(s), median\n",
            flush=True,
        )
        measure(configs, path="/sleep", connections=args.sleep_connections,
                duration=args.sleep_duration, warmup=0.0, rounds=args.rounds,
                timeout=20.0)  # fmt: skip
        print(table(configs) + "\n", flush=True)
        report["sleep"] = [{**asdict(c), "label": c.label} for c in configs]
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
