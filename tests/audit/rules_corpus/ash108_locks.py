"""ASH108 blocking-thread-sync."""

import threading

LOCK = threading.Lock()
READY = threading.Event()


async def bump(counter):
    with LOCK:  # error: ASH108:10
        counter.value += 1


async def wait_ready():
    READY.wait(5)  # error: ASH108:5
