"""ASH101 blocking-sleep: direct, through a helper, through a dispatch dict."""

import time
from time import sleep as nap


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


def sync_view():
    time.sleep(1)  # ok: sync code never reached from async code
