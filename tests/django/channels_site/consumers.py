"""An echo consumer: answers each text frame with ``echo: <text>``."""

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Accepts every connection and echoes text frames back, prefixed with ``echo: ``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> Any:
        await self.send(text_data=f"echo: {text_data}")
