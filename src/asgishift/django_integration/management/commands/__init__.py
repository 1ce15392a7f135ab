"""``runasgi``: the ASGI development server."""
