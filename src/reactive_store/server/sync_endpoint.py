"""The sync protocol's WebSocket endpoint: one `SyncConnection` per socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from starlette.websockets import WebSocket

from reactive_store.auth import Caller
from reactive_store.deployment import Deployment
from reactive_store.sync.connection import ConnectionClosed, SocketLimits, SyncConnection
from reactive_store.sync.protocol import Authenticate, ProtocolError

# RFC 6455: a close frame's reason is at most 123 bytes of UTF-8.
MAX_CLOSE_REASON_BYTES = 123


def close_reason(text: str) -> str:
    """`text` cut to fit a close frame, on a character boundary."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


class SyncEndpoint:
    """Accepts a socket and serves the sync protocol on it until either side closes."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.open_by_address: Counter[str] = Counter()

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        limits = self.deployment.settings.sockets
        address = websocket.client.host if websocket.client is not None else ""
        if self.open_by_address[address] >= limits.sockets_per_address:
            await self._close(websocket, 1008, f"TooManyConnections: at most "
                              f"{limits.sockets_per_address} sockets per client address")
            return
        self.open_by_address[address] += 1
        try:
            await self._serve(websocket, limits)
        finally:
            self.open_by_address[address] -= 1
            if not self.open_by_address[address]:
                del self.open_by_address[address]

    async def _serve(self, websocket: WebSocket, limits: SocketLimits) -> None:

        async def receive() -> str:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise ConnectionClosed()
            text = message.get("text")
            if text is None:
                raise ProtocolError("binary frames are not part of the protocol")
            return str(text)

        async def verify(message: Authenticate) -> Caller:
            # The deployment's authenticator is replaced by a hot reload: look it up now.
            return await self.deployment.auth.caller(message.token_type, message.value,
                                                      message.acting_as)

        d = self.deployment
        connection = SyncConnection(d.engine, d.subscriptions, receive, websocket.send_text,
                                    verify, limits)
        await connection.run()
        if connection.close_reason is not None:
            await self._close(websocket, connection.close_code, connection.close_reason)

    @staticmethod
    async def _close(websocket: WebSocket, code: int, reason: str) -> None:
        # A client that stopped reading may never take the close frame: give up after a
        # moment and let the server drop the connection.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await websocket.close(code, close_reason(reason))
