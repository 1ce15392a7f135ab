"""ASH199 user-declared-blocking (the test config declares legacy_lib.slow_lookup)."""

import legacy_lib


async def view(request):
    return legacy_lib.slow_lookup(request)  # error: ASH199:12
