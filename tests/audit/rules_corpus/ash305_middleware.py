"""ASH305 sync-only-middleware."""


class TimingMiddleware:  # error: ASH305:1
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


class AsyncReadyMiddleware:  # ok: declares its capabilities
    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        return await self.get_response(request)
