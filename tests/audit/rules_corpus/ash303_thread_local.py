"""ASH303 thread-local-in-async."""

import threading

_state = threading.local()


async def who():
    return _state.user  # error: ASH303:12


def who_sync():
    return _state.user  # ok: sync code
