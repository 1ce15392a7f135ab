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


def wrapping_mixin(tracer):
    # Defined inside a function, this class cannot be named in MIDDLEWARE; the
    # class built on it below declares its capabilities.
    class TracingMixin:
        def __init__(self, get_response):
            self.get_response = get_response
            self.tracer = tracer

    return TracingMixin


def middleware_factory(flag):
    def configured(get_response):  # ok: nested, not importable by MIDDLEWARE
        def middleware(request):
            return get_response(request)

        return middleware

    return configured


class TracedMiddleware(wrapping_mixin(None)):  # ok: declares its capabilities
    async_capable = True
    sync_capable = True

    async def __call__(self, request):
        return await self.get_response(request)
