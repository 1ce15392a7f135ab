"""An app whose lifespan waits on files, served by ``EmbeddedServer`` (as ``runasgi`` does).

``embedded_gate.py SERVER PORT DIR``. The app's startup writes ``DIR/startup-entered``,
then waits for ``DIR/gate``; it fails when ``DIR/fail`` exists by then. Its
shutdown writes ``DIR/shutdown-entered`` and, when ``DIR/hold-shutdown`` exists,
waits for ``DIR/shutdown-gate``. Each HTTP request appends its path to
``DIR/view-ran`` and is answered 200 with ``{"startup_finished": ...}``: whether
startup had finished when the app saw the request. ``/slow`` writes
``DIR/slow-entered``, waits for ``DIR/release-slow`` and also answers whether
shutdown had begun by then (``"shutdown_entered"``). SIGTERM stops the server
gracefully. An optional fourth argument is ``EmbeddedServer.start``'s timeout
in seconds. When ``DIR/stop-at-startup`` exists, another thread calls
``EmbeddedServer.stop`` once startup has begun. A failed start prints why and
exits with status 3 at once (the app's startup may still hold a thread).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from asgishift.serve import ServeConfig
from asgishift.serve._embedded import EmbeddedServer, StartupError

FILES = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(".")
startup_finished = False


def block_until_exists(path: Path) -> None:
    """Return once ``path`` exists (polls every 20 ms)."""
    while not path.exists():
        time.sleep(0.02)


async def wait_for_file(path: Path) -> None:
    """Return once ``path`` exists, without blocking the event loop."""
    await asyncio.to_thread(block_until_exists, path)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Lifespan per the module docstring; every HTTP request answers 200 with JSON."""
    global startup_finished
    if scope["type"] == "lifespan":
        await receive()
        (FILES / "startup-entered").touch()
        await wait_for_file(FILES / "gate")
        if (FILES / "fail").exists():
            await send({"type": "lifespan.startup.failed", "message": "the test said fail"})
            return
        startup_finished = True
        await send({"type": "lifespan.startup.complete"})
        await receive()
        (FILES / "shutdown-entered").touch()
        if (FILES / "hold-shutdown").exists():
            await wait_for_file(FILES / "shutdown-gate")
        await send({"type": "lifespan.shutdown.complete"})
        return
    with (FILES / "view-ran").open("a", encoding="utf-8") as ran:
        ran.write(scope["path"] + "\n")
    answer: dict[str, bool] = {"startup_finished": startup_finished}
    if scope["path"] == "/slow":
        (FILES / "slow-entered").touch()
        await wait_for_file(FILES / "release-slow")
        answer["shutdown_entered"] = (FILES / "shutdown-entered").exists()
    body = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    """Serve until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    config = ServeConfig(app=app, server=sys.argv[1], host="127.0.0.1", port=int(sys.argv[2]))
    # SIGTERM is blocked in every thread (they inherit this mask) and taken with
    # sigwait below, so no handler runs on top of the main thread: a handler
    # that set a threading.Event could deadlock on the Event's own lock, held
    # by the interrupted stop.wait().
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    server = EmbeddedServer(config, app)
    if (FILES / "stop-at-startup").exists():

        def stop_once_starting() -> None:
            block_until_exists(FILES / "startup-entered")
            server.stop()

        threading.Thread(target=stop_once_starting, daemon=True).start()
    try:
        server.start(*(float(arg) for arg in sys.argv[4:5]))
    except StartupError as exc:
        print(f"start failed: {exc}", flush=True)
        os._exit(3)
    print("serving", flush=True)
    signal.sigwait({signal.SIGTERM})
    server.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
