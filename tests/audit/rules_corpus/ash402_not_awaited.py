"""ASH402 coroutine-never-awaited."""

import asyncio


async def notify(user):
    return user


async def view(user):
    notify(user)  # error: ASH402:5
    asyncio.sleep(1)  # error: ASH402:5
    await notify(user)  # ok: awaited


def in_background(func):
    """Start the coroutine function as a task; return the task, not a coroutine."""

    def start(*args):
        return asyncio.ensure_future(func(*args))

    return start


@in_background
async def refresh(user):
    return user


class Panel:
    @staticmethod
    async def ping():
        return None

    @registry.task  # noqa: F821 - a decorator the audit cannot name
    async def sync_later(self):
        return None

    async def on_click(self):
        refresh(self)  # ok: the decorator starts a task
        self.sync_later()  # ok: an unknown decorator may return anything
        Panel.ping()  # error: ASH402:9
