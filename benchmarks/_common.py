"""Shared plumbing for the benchmark scripts: servers, wrk, CPU pinning, RSS.

Every server runs ``bench_app:app`` (see ``bench_app.py``) as a single worker
process pinned to one core with ``taskset``; the load generator is pinned to
another core, so the two do not compete for the same CPU.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.machinery
import importlib.metadata
import io
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SRC_DIR = REPO_ROOT / "src"

#: ASGI servers the bridges run under, with the settings used (all defaults
#: except logging): uvicorn picks uvloop + httptools (uvicorn[standard]),
#: hypercorn its asyncio worker, granian its Rust HTTP/1 stack with one
#: runtime thread. One worker process each.
ASGI_SERVERS = ("uvicorn", "hypercorn", "granian")
#: The bridges compared. ``wsgi`` means no bridge (gunicorn serves the app).
ADAPTERS = ("asgishift", "a2wsgi", "asgiref")
SERVER_CORE = "0"
CLIENT_CORE = "1"

_T = TypeVar("_T")


def rotated(items: Sequence[_T], round_no: int) -> list[_T]:
    """Return ``items`` starting at index ``round_no % len(items)``, wrapping around.

    Round ``r`` of a benchmark measures its configurations in the order
    ``rotated(configs, r)``, so over ``len(configs)`` rounds each configuration
    runs once in every position and a drift in the machine's load does not
    always fall on the same one.

    :raise ZeroDivisionError: if ``items`` is empty.
    """
    start = round_no % len(items)
    return [*items[start:], *items[:start]]


#: Compiles the C extensions of an unpacked ``src/`` in place, as ``setup.py`` does
#: for the checkout (argv: the extensions' names in ``asgishift.bridge``).
_BUILD_EXTENSIONS = """
import sys
from setuptools import Extension, setup
setup(
    ext_modules=[
        Extension(f"asgishift.bridge.{name}", [f"asgishift/bridge/{name}.c"])
        for name in sys.argv[1:]
    ],
    script_args=["build_ext", "--inplace", "--quiet"],
)
"""


def unpack_src(revision: str, into: Path) -> Path:
    """Unpack ``src/asgishift`` of git ``revision`` under ``into``; return ``into / "src"``.

    The revision's C extensions (``src/asgishift/bridge/_c*.c``, built from git's
    sources, which do not hold the compiled modules) are compiled in place, so the
    baseline runs the same kind of code as this checkout. Without this it ran its
    pure Python fallbacks while the checkout ran C, and every ``--baseline``
    comparison of the WSGI->ASGI direction before 2026-12-07 favoured the checkout
    (``benchmarks/RESULTS.md``, fifteenth session). ``ASGISHIFT_NO_EXTENSIONS`` set:
    nothing is compiled, as ``setup.py`` does; nor when this checkout has no compiled
    extensions (no C compiler at install time).

    Where the revision's C sources equal this checkout's, this checkout's builds are
    copied instead (no compiler or setuptools needed).

    :raise subprocess.CalledProcessError: if git cannot archive ``revision``, or a C
        extension does not compile (its compiler output is in the exception's
        ``stderr``; compiling needs setuptools in this interpreter).
    """
    tar = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", revision, "src/asgishift"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    src = into / "src"
    bridge, here = src / "asgishift" / "bridge", SRC_DIR / "asgishift" / "bridge"
    names = sorted(path.stem for path in bridge.glob("_c*.c"))
    # Built only when this checkout's are, for this Python (a machine without a C compiler
    # runs both sides in Python), so the two sides always run the same kind of code.
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    built = [here / f"{name}{suffix}" for name in names]
    if not names or not all(path.exists() for path in built):
        return src
    if os.environ.get("ASGISHIFT_NO_EXTENSIONS"):
        return src
    if all(
        (here / f"{name}.c").is_file()
        and (here / f"{name}.c").read_bytes() == (bridge / f"{name}.c").read_bytes()
        for name in names
    ):
        # The same C sources: this checkout's builds are the revision's builds too (and
        # need no compiler or setuptools, which a uv virtualenv on 3.12+ lacks).
        for path in built:
            shutil.copy2(path, bridge / path.name)
        print(f"# {revision}: C extensions as this checkout's: {', '.join(names)}", file=sys.stderr)
    else:
        subprocess.run(
            [sys.executable, "-c", _BUILD_EXTENSIONS, *names],
            cwd=src,
            capture_output=True,
            check=True,
        )
        print(f"# {revision}: C extensions compiled: {', '.join(names)}", file=sys.stderr)
    return src


def asgishift_available() -> bool:
    """Return whether ``asgishift.bridge.WSGIToASGI`` imports from ``src/``."""
    probe = "from asgishift.bridge import WSGIToASGI"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=child_env({}),
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Return the environment for a server: ``benchmarks/`` and ``src/`` first on the path."""
    env = dict(os.environ)
    paths = [str(BENCH_DIR), str(SRC_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    """Prefix ``argv`` with ``taskset -c core`` when taskset exists and the core does."""
    if shutil.which("taskset") and int(core) < (os.cpu_count() or 1):
        return ["taskset", "-c", core, *argv]
    return list(argv)


def server_argv(server: str, port: int, *, threads: int = 8) -> list[str]:
    """Return the argv that serves ``bench_app:app`` on ``server`` at 127.0.0.1:``port``.

    :param server: one of :data:`ASGI_SERVERS` or ``gunicorn`` (gthread worker,
        serving the WSGI app natively with ``threads`` threads).
    :raise ValueError: for an unknown server.
    """
    py = sys.executable
    app = "bench_app:app"
    if server == "uvicorn":
        return [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
    if server == "hypercorn":
        return [py, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
                "--log-level", "WARNING"]  # fmt: skip
    if server == "granian":
        return [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1", "--log-level", "warning", app]  # fmt: skip
    if server == "gunicorn":
        return [py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
                "--threads", str(threads), "--log-level", "warning", app]  # fmt: skip
    raise ValueError(f"unknown server {server!r}; use one of {(*ASGI_SERVERS, 'gunicorn')}")


@dataclass
class Server:
    """A running, pinned benchmark server.

    :param label: a short name for tables, e.g. ``uvicorn/a2wsgi``.
    """

    label: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """Return ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Return what the server wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def worker_pid(self) -> int:
        """Return the pid of the process that serves: the one holding the listening socket.

        uvicorn with one worker serves from the process we started (``taskset``
        execs); hypercorn spawns its worker through :mod:`multiprocessing`, so
        its first child is the resource tracker; granian and gunicorn fork a
        worker. Parents keep the socket open too, so of the processes in the
        tree that hold it, the one deepest in the tree is the worker.

        :raise RuntimeError: if no process in the tree holds the socket.
        """
        return serving_pid(self.process.pid, self.port)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(part) for part in path.read_text().split()]
    return []


def listening_inodes(port: int) -> set[int]:
    """Return the socket inodes listening on TCP ``port`` (``/proc/net/tcp``, ``tcp6``)."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], int(fields[9])
                if state == "0A" and int(local.rpartition(":")[2], 16) == port:
                    inodes.add(inode)
    return inodes


def holds_socket(pid: int, inodes: set[int]) -> bool:
    """Return whether process ``pid`` has a descriptor open on one of the socket ``inodes``."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in wanted:
                    return True
    return False


def serving_pid(root: int, port: int) -> int:
    """Return the deepest process under ``root`` (itself included) holding the socket on ``port``.

    :raise RuntimeError: if none does.
    """
    inodes = listening_inodes(port)
    best: tuple[int, int] | None = None  # (depth, pid)
    stack = [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        if holds_socket(pid, inodes) and (best is None or depth > best[0]):
            best = (depth, pid)
        stack.extend((child, depth + 1) for child in _children(pid))
    if best is None:
        raise RuntimeError(f"no process under pid {root} holds the socket listening on {port}")
    return best[1]


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system, seconds) process ``pid`` has used so far.

    Read from ``/proc/<pid>/stat`` (fields 14 and 15, in clock ticks); the
    command name in field 2 may hold spaces, so fields are counted after its ``)``.

    :raise OSError: if the process is gone.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_name(pid: int) -> str:
    """Return ``pid``'s command line, spaces for NULs (``/proc/<pid>/cmdline``)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return "?"


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    """Poll until ``GET /`` answers 200, the process dies, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} before answering on {port}:\n"
                + log.read_text(errors="replace")
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"server not answering on {port} after {timeout}s:\n"
                + log.read_text(errors="replace")
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


@contextlib.contextmanager
def run_servers(
    specs: Sequence[tuple[str, str, dict[str, str], int]], timeout: float = 60.0
) -> Iterator[dict[str, Server]]:
    """Start several servers at once, pinned to the server core, and stop them afterwards.

    :param specs: ``(label, server, env, threads)`` per server; ``env`` holds the
        ``BENCH_*`` variables (see ``bench_app.py``).
    :param timeout: seconds each server may take to answer ``GET /``.
    :raise RuntimeError: when a server exits or does not answer in time (with its log).
    """
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="asgishift-bench-") as tmp:
        try:
            for label, server, env, threads in specs:
                port = free_port()
                log_path = Path(tmp) / (label.replace("/", "_") + ".log")
                with log_path.open("wb") as log_file:
                    proc = subprocess.Popen(
                        pinned(SERVER_CORE, server_argv(server, port, threads=threads)),
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        cwd=str(BENCH_DIR),
                        env=child_env({"PYTHONUNBUFFERED": "1", **env}),
                        start_new_session=True,
                    )
                servers[label] = Server(label, port, proc, log_path)
            for srv in servers.values():
                wait_ready(srv.process, srv.port, srv.log_path, timeout)
            yield servers
        finally:
            for srv in servers.values():
                stop(srv.process)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` and its process group: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- wrk ---------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    """What one wrk run measured.

    :param rps: requests per second (wrk's ``Requests/sec``).
    :param p99_ms: 99th-percentile latency in milliseconds.
    :param errors: non-2xx/3xx responses plus socket errors (connect, read,
        write, timeout).
    """

    rps: float
    p99_ms: float
    requests: int
    errors: int


def parse_wrk(output: str) -> WrkResult:
    """Parse the text wrk prints with ``--latency``.

    :raise ValueError: when ``Requests/sec`` or the 99% latency line is missing.
    """
    rps_match = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p99_match = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\b", output, re.M)
    if rps_match is None or p99_match is None:
        raise ValueError(f"wrk output has no Requests/sec or 99% line:\n{output}")
    req_match = re.search(r"^\s+(\d+) requests in", output, re.M)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(part) for part in sock.groups())
    return WrkResult(
        rps=float(rps_match.group(1)),
        p99_ms=float(p99_match.group(1)) * _UNITS[p99_match.group(2)],
        requests=int(req_match.group(1)) if req_match else 0,
        errors=errors,
    )


def run_wrk(url: str, *, connections: int, duration: float, timeout: float = 2.0) -> WrkResult:
    """Run ``wrk -t1`` pinned to the client core against ``url`` and parse the result.

    :param duration: seconds (wrk takes whole seconds; rounded up, at least 1).
    :param timeout: seconds before wrk counts a request as timed out.
    :raise RuntimeError: when wrk fails; :raise ValueError: when its output does not parse.
    """
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
            f"--timeout={max(1, round(timeout))}s", "--latency", url]  # fmt: skip
    result = subprocess.run(pinned(CLIENT_CORE, argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk exited {result.returncode}: {result.stderr}{result.stdout}")
    return parse_wrk(result.stdout)


# --- memory ------------------------------------------------------------------


def read_status_kib(pid: int, field: str) -> int:
    """Return a ``/proc/<pid>/status`` size field such as ``VmRSS`` or ``VmHWM`` in KiB.

    :raise KeyError: when the field is absent.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (``echo 5 > /proc/<pid>/clear_refs``).

    :return: whether the kernel accepted the reset.
    """
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- reporting ---------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """Return the facts a result needs next to it: cores, CPU, Python, package versions."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for dist in ("asgishift", "a2wsgi", "asgiref", "uvicorn", "uvloop", "httptools",
                 "hypercorn", "granian", "gunicorn", "flask", "werkzeug"):  # fmt: skip
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = "not installed"
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        info["wrk"] = (out.stdout + out.stderr).split("\n", 1)[0].split(" [", 1)[0].strip()
    return info


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a Markdown table with columns padded to equal width."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)
