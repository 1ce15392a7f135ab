"""Peak RSS growth of a server while a large body goes up and a large body comes down.

For each bridge, a fresh server (uvicorn by default; ``--server hypercorn``
or ``granian``) runs the plain WSGI app from ``bench_app``. The process
measured is the one that serves: the deepest process of the server's tree
holding the listening socket (``_common.serving_pid``). uvicorn serves from the
process we start; hypercorn spawns its worker through :mod:`multiprocessing`,
whose first child is the resource tracker (flat ~12 MiB, whatever the bridge
does); granian forks a worker. The line ``measured pid`` names it.
A raw-socket client that is deliberately slower than the server then

1. uploads ``--size`` bytes to ``POST /upload`` (the app drains
   ``wsgi.input`` in 64 KiB reads), sending small pieces with small pauses so
   it keeps to ``--rate`` bytes/s;
2. downloads ``--size`` bytes from ``GET /download`` (the app yields 64 KiB
   chunks), reading small pieces with small pauses at the same rate, so a
   bridge without backpressure would pile the response up in memory.

Before each direction the server's peak RSS is reset (``5`` written to
``/proc/<pid>/clear_refs``) and its ``VmRSS`` taken as the baseline; after
it, growth = ``VmHWM`` - baseline. A sampler thread also polls ``VmRSS``
every 10 ms as a cross-check when the kernel refuses the reset. A 1 MiB
transfer each way runs first, so thread pools and buffers that a bridge
creates once are not counted as growth. The ``whole run`` row is the highest
RSS either direction reached minus the RSS after that warm-up.

asgiref's ``WsgiToAsgi`` spools the whole request body to a temporary file
(``SpooledTemporaryFile``) before calling the app: its upload growth is small
because the body goes to disk, not because it streams.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from _common import (
    ADAPTERS,
    CLIENT_CORE,
    machine_info,
    markdown_table,
    process_name,
    read_status_kib,
    reset_peak_rss,
    run_servers,
)

MiB = 1024 * 1024


class Pacer:
    """Keep a transfer at ``rate`` bytes/s by pausing whenever it runs ahead.

    :param rate: bytes per second; ``0`` means no limit.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.perf_counter()
        self.done = 0

    def advance(self, nbytes: int) -> None:
        """Count ``nbytes`` more and sleep until the schedule allows the next piece."""
        self.done += nbytes
        if self.rate <= 0:
            return
        ahead = self.done / self.rate - (time.perf_counter() - self.start)
        if ahead > 0.002:
            time.sleep(ahead)


def read_head(sock: socket.socket) -> tuple[int, bytes]:
    """Read an HTTP/1.1 response head; return the status and any body bytes read with it.

    :raise ConnectionError: when the server closes before the head is complete.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"server closed before the response head: {data!r}")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def upload(port: int, size: int, piece: int, rate: float) -> int:
    """Send ``size`` bytes to ``/upload`` in ``piece``-byte writes; return the bytes the app read.

    :raise RuntimeError: when the response is not 200 or the count differs.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        block = b"u" * piece
        pacer = Pacer(rate)
        left = size
        while left > 0:
            chunk = block if left >= piece else block[:left]
            sock.sendall(chunk)
            left -= len(chunk)
            pacer.advance(len(chunk))
        status, rest = read_head(sock)
        while True:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
    if status != 200 or int(rest or b"-1") != size:
        raise RuntimeError(f"upload: status {status}, app read {rest!r} of {size} bytes")
    return size


def download(port: int, size: int, piece: int, rate: float) -> int:
    """Read ``size`` bytes from ``/download`` in ``piece``-byte reads; return the count.

    :raise RuntimeError: when the response is not 200 or ends early.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        request = (
            f"GET /download?size={size} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(request.encode())
        status, rest = read_head(sock)
        got = len(rest)
        pacer = Pacer(rate)
        while got < size:
            data = sock.recv(piece)
            if not data:
                break
            got += len(data)
            pacer.advance(len(data))
    if status != 200 or got != size:
        raise RuntimeError(f"download: status {status}, received {got} of {size} bytes")
    return got


class RSSSampler(threading.Thread):
    """Poll ``VmRSS`` of ``pid`` every 10 ms and keep the maximum (KiB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.max_kib = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Sample until :attr:`stop_event` is set."""
        while not self.stop_event.is_set():
            try:
                self.max_kib = max(self.max_kib, read_status_kib(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            self.stop_event.wait(0.01)


@dataclass
class Growth:
    """RSS figures of one transfer, in KiB.

    :param hwm_growth: ``VmHWM`` after - ``VmRSS`` before (``None`` when the
        peak could not be reset).
    :param sampled_growth: highest sampled ``VmRSS`` - ``VmRSS`` before.
    """

    baseline: int
    hwm_growth: int | None
    sampled_growth: int
    seconds: float


def measure(pid: int, transfer: Callable[[], int]) -> Growth:
    """Run ``transfer`` and return how much the RSS of ``pid`` grew meanwhile."""
    could_reset = reset_peak_rss(pid)
    baseline = read_status_kib(pid, "VmRSS")
    sampler = RSSSampler(pid)
    sampler.start()
    start = time.perf_counter()
    try:
        transfer()
    finally:
        seconds = time.perf_counter() - start
        sampler.stop_event.set()
        sampler.join()
    hwm = read_status_kib(pid, "VmHWM") - baseline if could_reset else None
    return Growth(baseline, hwm, sampler.max_kib - baseline, seconds)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description="Peak RSS growth of the server process while a large body goes up and "
        "comes down through a slow client.",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="4 MiB each way, no pacing: checks the machinery only")  # fmt: skip
    parser.add_argument("--server", choices=["uvicorn", "hypercorn", "granian"], default="uvicorn")
    parser.add_argument("--adapters", default=",".join(ADAPTERS), help="comma-separated bridges")
    parser.add_argument("--size", type=int, default=1024 * MiB, help="bytes each way (1 GiB)")
    parser.add_argument("--piece", type=int, default=16 * 1024,
                        help="client write/read size in bytes (default: %(default)s)")  # fmt: skip
    parser.add_argument(
        "--rate",
        type=float,
        default=128 * MiB,
        help="client bytes/s each way, 0 for no limit (default: 128 MiB/s)",
    )
    return parser


def mib(kib: int | None) -> str:
    """Format KiB as MiB with one decimal, or ``n/a``."""
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        args.size, args.rate = 4 * MiB, 0.0
    adapters = [a for a in args.adapters.split(",") if a]
    try:
        from asgishift.bridge import WSGIToASGI  # noqa: F401
    except ImportError as exc:
        if "asgishift" in adapters:
            print(f"asgishift.bridge does not import ({exc}): leaving it out", file=sys.stderr)
            adapters.remove("asgishift")
    if hasattr(os, "sched_setaffinity") and int(CLIENT_CORE) < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})

    print("# Memory benchmark\n")
    print(", ".join(f"{k} {v}" for k, v in machine_info().items()) + "\n")
    print(f"{args.size / MiB:g} MiB up and {args.size / MiB:g} MiB down per bridge under "
          f"{args.server}, client pieces of {args.piece} bytes at "
          f"{args.rate / MiB:g} MiB/s (0 = unpaced)\n", flush=True)  # fmt: skip
    rows: list[list[str]] = []
    for adapter in adapters:
        env = {"BENCH_APP": "plain", "BENCH_ADAPTER": adapter}
        with run_servers([(adapter, args.server, env, 8)]) as servers:
            srv = servers[adapter]
            pid = srv.worker_pid()
            print(f"measured pid {pid} ({adapter}, holds the socket on port {srv.port}): "
                  f"{process_name(pid)}", file=sys.stderr, flush=True)  # fmt: skip
            try:
                upload(srv.port, MiB, args.piece, 0)
                download(srv.port, MiB, args.piece, 0)
            except (RuntimeError, OSError) as exc:
                # A bridge that cannot carry the transfer gets a row saying so.
                print(f"  {adapter}: warm-up failed: {exc}\n{srv.log()[-2000:]}",
                      file=sys.stderr, flush=True)  # fmt: skip
                rows.append([adapter, "failed", "-", "-", "n/a", "n/a", "-", str(exc)[:60]])
                continue
            start_rss = read_status_kib(pid, "VmRSS")
            transfer = (srv.port, args.size, args.piece, args.rate)
            up = measure(pid, functools.partial(upload, *transfer))
            down = measure(pid, functools.partial(download, *transfer))
            for name, growth in (("upload", up), ("download", down)):
                mbps = args.size / MiB / growth.seconds
                rows.append([adapter, name, mib(start_rss), mib(growth.baseline),
                             mib(growth.hwm_growth), mib(growth.sampled_growth),
                             f"{growth.seconds:.1f}", f"{mbps:.0f}"])  # fmt: skip
                print(f"  {adapter} {name}: +{mib(growth.hwm_growth)} MiB (VmHWM), "
                      f"+{mib(growth.sampled_growth)} MiB (sampled), {growth.seconds:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
            # The whole run: the highest RSS either direction reached, over the
            # RSS after warm-up (what the <= 16 MiB target is about).
            peaks = [g.baseline + (g.hwm_growth if g.hwm_growth is not None else g.sampled_growth)
                     for g in (up, down)]  # fmt: skip
            total = max(peaks) - start_rss
            rows.append([adapter, "whole run", mib(start_rss), mib(start_rss), mib(total),
                         "-", f"{up.seconds + down.seconds:.1f}", "-"])  # fmt: skip
    header = ["bridge", "direction", "RSS after warm-up MiB", "RSS before MiB",
              "growth MiB (VmHWM)", "growth MiB (sampled)", "seconds", "MiB/s"]  # fmt: skip
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
