"""ASH108 blocking-thread-sync."""

import queue
import threading
import time

LOCK = threading.Lock()
READY = threading.Event()
COND = threading.Condition()


def write_log(line):
    with open("app.log", "a") as fh:  # error: ASH105:10
        fh.write(line)  # error: ASH105:9


def remember(registry, key):
    registry[key] = True
    return len(registry)


class Registry:
    def __init__(self):
        self._lock = threading.RLock()
        self._items = []

    def add(self, item):
        with self._lock:  # ok: the lock guards only in-memory bookkeeping
            self._items.append(item)
            return len(self._items)


async def bump(counter):
    with LOCK:  # ok: nothing in the block waits
        counter.value += 1


async def bump_slowly(counter):
    with LOCK:  # error: ASH108:10
        time.sleep(0.1)  # error: ASH101:9
        counter.value += 1


async def log_under_lock(line):
    with LOCK:  # error: ASH108:10
        write_log(line)


async def remember_under_lock(registry, key):
    with LOCK:  # ok: remember() only touches a dict
        return remember(registry, key)


async def register(registry, item):
    return registry.add(item)


async def wait_for_turn():
    with COND:  # error: ASH108:10
        COND.wait(1)  # error: ASH108:9


async def wait_ready():
    READY.wait(5)  # error: ASH108:5


class Mailbox:
    def __init__(self):
        self.inbox = queue.Queue()
        self.outbox = queue.Queue(maxsize=8)

    async def post(self, message):
        self.inbox.put(message)  # ok: an unbounded queue never fills up
        self.inbox.put_nowait(message)  # ok: never waits
        self.outbox.put(message)  # error: ASH108:9

    async def take(self):
        return self.inbox.get()  # error: ASH108:16


async def relay(message):
    pending = queue.Queue(0)
    pending.put(message)  # ok: maxsize 0 is unbounded
    done = queue.Queue(maxsize=1)
    done.put(message)  # error: ASH108:5
    return pending.get(timeout=1)  # error: ASH108:12
