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
