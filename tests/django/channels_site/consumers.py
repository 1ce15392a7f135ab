"""An echo consumer: answers each text frame with ``echo: <text>``."""

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    """Accepts every connection and echoes text frames back, prefixed with ``echo: ``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=f"echo: {text_data}")
