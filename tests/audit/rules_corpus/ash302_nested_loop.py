"""ASH302 nested-event-loop."""

import asyncio


async def work():
    return 1


def run_sync():
    loop = asyncio.get_event_loop()
    return loop.run_until_complete(work())  # error: ASH302:12


async def view(request):
    run_sync()
    return asyncio.run(work())  # error: ASH302:12


def current_loop():
    try:
        return asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()  # ok: only where no loop runs
        asyncio.set_event_loop(loop)
        return loop


async def handler(request):
    return current_loop()
