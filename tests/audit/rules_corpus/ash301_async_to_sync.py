"""ASH301 async-to-sync-in-async: direct, decorated, an attribute made a wrapper."""

from asgiref.sync import async_to_sync


async def fetch():
    return 1


@async_to_sync
async def fetch_sync():
    return 2


class Notifier:
    def __init__(self, channel_layer, is_sync):
        self.channel_layer = channel_layer
        if is_sync:
            # Only in one branch: in async mode a subclass's async method is used.
            self.send = async_to_sync(self.channel_layer.send)

    def notify_sync(self, message):
        self.send(message)  # error: ASH301:9

    async def notify(self, message):
        await self.send(message)  # ok: awaited, so an async send is expected here


class AsyncNotifier(Notifier):
    async def send(self, message):
        return message


async def view(request):
    return async_to_sync(fetch)()  # error: ASH301:12


async def decorated_view(request):
    return fetch_sync()  # error: ASH301:12


async def legacy(notifier: Notifier, message):
    notifier.notify_sync(message)
