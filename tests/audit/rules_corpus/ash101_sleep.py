"""ASH101 blocking-sleep: direct, through a helper, through a dispatch dict."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from time import sleep as nap

POOL = ThreadPoolExecutor(max_workers=2)


def backoff(attempt):
    time.sleep(2**attempt)  # error: ASH101:5


def on_created(event):
    nap(0.1)  # error: ASH101:5


def on_deleted(event):
    return event


# A module-level dispatch dict of functions, called as HANDLERS[kind](...).
HANDLERS = {"created": on_created, "deleted": on_deleted}


async def poll(attempt):
    time.sleep(1)  # error: ASH101:5
    backoff(attempt)


async def handle(kind, event):
    HANDLERS[kind](event)


class Poller:
    def __init__(self, loop):
        self.loop = loop

    async def poll_in_pool(self):
        await self.loop.run_in_executor(None, lambda: time.sleep(1))  # ok: runs in the pool

    async def poll_everywhere(self):
        future = POOL.submit(lambda: time.sleep(1))  # ok: runs in the pool
        POOL.submit(backoff, 3)  # ok: a function reference, called in the pool
        thread = threading.Thread(target=lambda: nap(1), daemon=True)  # ok: another thread
        thread.start()
        return future, [time.sleep(0) for _ in range(1)]  # error: ASH101:25


def sync_view():
    time.sleep(1)  # ok: sync code never reached from async code
