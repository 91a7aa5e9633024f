"""The sync protocol's WebSocket endpoint: one `SyncConnection` per socket."""

from __future__ import annotations

import contextlib

from starlette.websockets import WebSocket

from reactive_store.auth import Caller
from reactive_store.deployment import Deployment
from reactive_store.sync.connection import ConnectionClosed, SyncConnection
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

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()

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
                                    verify)
        await connection.run()
        if connection.close_reason is not None:
            code = 1011 if connection.close_reason.startswith("InternalServerError") else 1000
            with contextlib.suppress(Exception):
                await websocket.close(code, close_reason(connection.close_reason))
