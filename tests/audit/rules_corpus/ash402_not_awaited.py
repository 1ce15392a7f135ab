"""ASH402 coroutine-never-awaited."""

import asyncio


async def notify(user):
    return user


async def view(user):
    notify(user)  # error: ASH402:5
    asyncio.sleep(1)  # error: ASH402:5
    await notify(user)  # ok: awaited
