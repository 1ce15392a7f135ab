"""Django's ``/count/`` through two ASGI apps in process: CPU per request, no server.

The same project and view as ``django_bench.py`` (``sample_projects/django_project``
on SQLite or, with ``--database postgres``, PostgreSQL; startproject's
MIDDLEWARE, ``CONN_MAX_AGE=60``, ``DEBUG=False``), but no sockets: each ASGI
app is awaited on one event loop (``--loop``: uvloop, which uvicorn picks
when it is installed, or asyncio's) by ``--callers``
concurrent callers with a minimal ``receive`` (the empty GET body once, then
``http.disconnect`` after the response) and a ``send`` that keeps the status.
The apps are ``WSGIToASGI(get_wsgi_application(), max_workers=8)`` and
asgishift's ``get_asgi_application(max_threads=8)``. Rounds of ``--requests``
requests alternate between the apps; per request it prints the median
process CPU time (``getrusage``: user + system, all threads; the system part
too), wall time and context switches (voluntary + involuntary), the threads
each app started, and the ratio of the two apps' CPU (of the medians, and the
median of each round's ratio, steadier on a busy machine). The process is
pinned to one core (``--cpu``), as the servers of ``django_bench.py`` are.

``--count-calls`` counts function calls per request (Python and C, loop
thread and worker threads apart) instead of timing: deterministic; ``--list N``
adds each app's N most called functions.
``--src`` measures another checkout's ``src`` (e.g. main's, for an A/B run
in the same session). ``--profile NAME`` runs cProfile over one more round of app ``NAME``
(``bridge`` or ``ours``) and prints the top functions by own time (the
loop thread only: cProfile does not follow the worker threads).

Usage::

    .venv/bin/python benchmarks/django_inprocess_bench.py [--rounds 5] [--requests 1000]
        [--callers 8] [--cpu 0] [--loop uvloop|asyncio] [--only ours] [--profile ours]
        [--src OTHER_CHECKOUT/src] [--database sqlite|postgres] [--count-calls [--list N]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, SRC_DIR

SAMPLE = REPO_ROOT / "sample_projects" / "django_project"

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/count/",
    "raw_path": b"/count/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


class Exchange:
    """One request's ``receive``/``send`` (ASGI HTTP spec): the empty body, then
    ``http.disconnect`` once the response is complete."""

    __slots__ = ("done", "sent_request", "status")

    def __init__(self) -> None:
        self.sent_request = False
        self.done = asyncio.Event()
        self.status = 0

    async def receive(self) -> dict[str, Any]:
        """Return the next message from the client."""
        if not self.sent_request:
            self.sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        """Take one message from the app."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif not message.get("more_body", False):
            self.done.set()


async def caller(app: Any, count: int) -> None:
    """Send ``count`` requests one after another; fail on a status other than 200."""
    for _ in range(count):
        exchange = Exchange()
        await app(dict(SCOPE), exchange.receive, exchange.send)
        if exchange.status != 200:
            raise RuntimeError(f"/count/ answered {exchange.status}")


async def run_round(app: Any, requests: int, callers: int) -> None:
    """``requests`` requests from ``callers`` concurrent callers."""
    await asyncio.gather(*(caller(app, requests // callers) for _ in range(callers)))


def in_project(args: argparse.Namespace) -> None:
    """The measurement itself, run inside the prepared project copy."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    from asgishift.bridge import WSGIToASGI
    from asgishift.django_integration import get_asgi_application

    apps = {
        "bridge": WSGIToASGI(get_wsgi_application(), max_workers=args.threads),
        "ours": get_asgi_application(max_threads=args.threads),
    }
    if args.only:
        apps = {args.only: apps[args.only]}
    if args.loop == "uvloop":  # what uvicorn picks when uvloop is installed (django_bench.py)
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    requests = args.requests - args.requests % args.callers
    if args.count_calls:
        count_calls(apps, loop, requests, args.callers, args.list)
        return
    for app in apps.values():  # start the threads, open their connections
        loop.run_until_complete(run_round(app, requests, args.callers))
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    sys_cpu: dict[str, list[float]] = {name: [] for name in apps}
    wall: dict[str, list[float]] = {name: [] for name in apps}
    switches: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(args.rounds):
        for name, app in apps.items():
            before = resource.getrusage(resource.RUSAGE_SELF)
            start_wall = time.perf_counter()
            loop.run_until_complete(run_round(app, requests, args.callers))
            wall[name].append((time.perf_counter() - start_wall) * 1e6 / requests)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user = after.ru_utime - before.ru_utime
            system = after.ru_stime - before.ru_stime
            cpu[name].append((user + system) * 1e6 / requests)
            sys_cpu[name].append(system * 1e6 / requests)
            count = after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw
            switches[name].append(count / requests)
    print(f"{requests} requests x {args.rounds} rounds, {args.callers} callers, "
          f"{args.threads} threads, core {args.cpu}, {args.loop} loop")  # fmt: skip
    print("| app | CPU µs/req (median) | all rounds | of which system | wall µs/req "
          "| context switches/req |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in apps:
        rounds = " ".join(f"{value:.0f}" for value in cpu[name])
        print(f"| {name} | {statistics.median(cpu[name]):.0f} | {rounds} "
              f"| {statistics.median(sys_cpu[name]):.0f} | {statistics.median(wall[name]):.0f} "
              f"| {statistics.median(switches[name]):.1f} |")  # fmt: skip
    threads = {"bridge": lambda app: app.pool.threads, "ours": lambda app: app.pool.threads_started}
    started = ", ".join(f"{name} {threads[name](app)}" for name, app in apps.items())
    print(f"threads started: {started}")
    if len(apps) == 2:
        ratio = statistics.median(cpu["bridge"]) / statistics.median(cpu["ours"])
        paired = statistics.median(b / o for b, o in zip(cpu["bridge"], cpu["ours"], strict=True))
        print(f"CPU: WSGIToASGI / ours = {ratio:.2f}x of the medians, {paired:.2f}x the median "
              "of each round's ratio (>= 1: ours is cheaper)")  # fmt: skip
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        loop.run_until_complete(run_round(apps[args.profile], requests, args.callers))
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.top)


def count_calls(
    apps: dict[str, Any],
    loop: asyncio.AbstractEventLoop,
    requests: int,
    callers: int,
    listing: int = 0,
) -> None:
    """Count Python and C function calls per request, loop thread and worker threads apart.

    Deterministic, unlike CPU time on a shared machine. A profile hook is set
    before any worker thread starts (``threading.setprofile`` reaches only new
    threads) and counts only while a measured round runs.
    """
    import collections
    import sys
    import threading

    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    active = [False]
    loop_thread = threading.get_ident()

    def hook(frame: Any, event: str, arg: Any) -> None:
        if not active[0] or event not in ("call", "c_call"):
            return
        side = "loop" if threading.get_ident() == loop_thread else "worker"
        if event == "call":
            name = f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_code.co_name}"
        else:
            name = f"C:{getattr(arg, '__qualname__', arg)}"
        counts[(side, name)] += 1

    threading.setprofile(hook)
    sys.setprofile(hook)
    found: dict[str, collections.Counter[tuple[str, str]]] = {}
    for name, app in apps.items():
        loop.run_until_complete(run_round(app, requests, callers))  # warm-up
        counts.clear()
        active[0] = True
        loop.run_until_complete(run_round(app, requests, callers))
        active[0] = False
        found[name] = collections.Counter(counts)
    sys.setprofile(None)
    threading.setprofile(None)
    print(f"function calls per request ({requests} requests, {callers} callers)")
    print("| app | loop thread | worker threads | total |")
    print("|---|---|---|---|")
    for name, found_counts in found.items():
        side = collections.Counter()
        for (where, _), value in found_counts.items():
            side[where] += value
        print(f"| {name} | {side['loop'] / requests:.0f} | {side['worker'] / requests:.0f} "
              f"| {(side['loop'] + side['worker']) / requests:.0f} |")  # fmt: skip
    for name, found_counts in found.items():
        if listing:
            print(f"most called in {name} per request (thread, function):")
            for (where, function), value in found_counts.most_common(listing):
                print(f"  {value / requests:7.2f}  {where:6} {function}")
    if len(found) == 2:
        keys = set(found["bridge"]) | set(found["ours"])
        diff = sorted(keys, key=lambda k: -abs(found["ours"][k] - found["bridge"][k]))
        print("largest differences per request (bridge, ours, thread, function):")
        for key in diff[:25]:
            print(f"  {found['bridge'][key] / requests:6.2f} {found['ours'][key] / requests:6.2f}"
                  f"  {key[0]:6} {key[1]}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Prepare the project copy (and PostgreSQL), then measure in a pinned child process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers")
    parser.add_argument("--threads", type=int, default=8, help="threads per app")
    parser.add_argument("--cpu", default="0", help="core the measuring process is pinned to")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument(
        "--count-calls", action="store_true", help="count function calls per request instead"
    )
    parser.add_argument("--only", choices=("bridge", "ours"), default=None, help="one app")
    parser.add_argument("--profile", choices=("bridge", "ours"), default=None)
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--top", type=int, default=45, help="rows of the profile")
    parser.add_argument(
        "--src", default=str(SRC_DIR), help="the asgishift source tree to measure (A/B runs)"
    )
    parser.add_argument(
        "--database", choices=("sqlite", "postgres"), default="sqlite",
        help="postgres: a throwaway server from Debian's binaries, as django_bench.py starts",
    )  # fmt: skip
    parser.add_argument(
        "--list", type=int, default=0, help="with --count-calls: the N most called functions"
    )
    parser.add_argument("--in-project", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_project:
        in_project(args)
        return
    if args.database == "postgres":
        from django_bench import postgres

        with postgres() as port:
            if port is None:
                raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
            measure_in_copy(args, argv, {"SAMPLE_DB_PORT": str(port)})
    else:
        measure_in_copy(args, argv, {})


def measure_in_copy(
    args: argparse.Namespace, argv: list[str] | None, db_env: dict[str, str]
) -> None:
    """Copy and migrate the sample project, then run the pinned measuring child in it."""
    with tempfile.TemporaryDirectory(prefix="asgishift-django-inproc-") as tmp:
        project = Path(tmp) / "django_project"
        shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
        paths = [str(project), args.src, str(Path(__file__).parent)]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env.update({"SAMPLE_DEBUG": "0", "SAMPLE_CONN_MAX_AGE": "60", **db_env})
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=project, env=env, check=True)
        seed = "from shelf.models import Book; Book.objects.create(title='first book')"
        subprocess.run([py, "manage.py", "shell", "-c", seed], cwd=project, env=env, check=True)
        argv_child = ["taskset", "-c", args.cpu, py, str(Path(__file__).resolve()),
                      *(argv if argv is not None else sys.argv[1:]), "--in-project"]  # fmt: skip
        subprocess.run(argv_child, cwd=project, env=env, check=True)


if __name__ == "__main__":
    main()
