"""The sync protocol's WebSocket endpoint: one `SyncConnection` per socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from reactive_store.auth import Caller
from reactive_store.deployment import Deployment
from reactive_store.limits import ServerLimits
from reactive_store.server.cors import websocket_origin_allowed
from reactive_store.server.parallel_writes import ParallelWrites
from reactive_store.server.socket_writes import HeldWrites, SharedFrame, immediate_sender
from reactive_store.sync.connection import ConnectionClosed, SyncConnection
from reactive_store.sync.protocol import Authenticate, ProtocolError
from reactive_store.sync.shared_encodings import SharedEncodings

log = logging.getLogger(__name__)

# RFC 6455: a close frame's reason is at most 123 bytes of UTF-8.
MAX_CLOSE_REASON_BYTES = 123
PROTOCOL = "reactive_store.ws_protocol"


def close_reason(text: str) -> str:
    """`text` cut to fit a close frame, on a character boundary."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


class TransportProbe:
    """ASGI middleware (outermost): puts a socket's server protocol in its scope, when the
    server exposes its transport, so the endpoint can see how much output a client has not
    taken yet (and write a frame at once, server/socket_writes.py).

    uvicorn's WebSocket protocols write to the transport without waiting, so a client that
    stops reading never blocks a send; the transport's write buffer is where it shows."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            protocol = getattr(send, "__self__", None)
            transport = getattr(protocol, "transport", None)
            if transport is not None and hasattr(transport, "get_write_buffer_size"):
                scope[PROTOCOL] = protocol
        await self.app(scope, receive, send)


class SyncEndpoint:
    """Accepts a socket and serves the sync protocol on it until either side closes."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.open_by_address: Counter[str] = Counter()
        # Shared by every socket of the deployment: a fan-out encodes and frames once.
        self.encodings = SharedEncodings()
        self.frame = SharedFrame()
        self.writes = HeldWrites(ParallelWrites())
        deployment.subscriptions.notify_scope = self._fan_out_pass

    @contextlib.contextmanager
    def _fan_out_pass(self) -> Iterator[None]:
        """One notification's pass over its sockets: steps shared, writes held to the end,
        then the sessions' shared steps settled (after the writes, which start sooner)."""
        with self.encodings.sharing_steps(), self.writes.holding():
            yield

    async def serve(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        if not websocket_origin_allowed(self.deployment.settings.cors_origins, origin,
                                        websocket.headers.get("host")):
            log.warning("refused a sync socket from origin %r (allowed: %s)", origin,
                        ", ".join(self.deployment.settings.cors_origins) or "same origin only")
            await websocket.close(1008)  # before accept: the handshake is answered 403
            return
        await websocket.accept()
        limits = self.deployment.settings.limits
        address = websocket.client.host if websocket.client is not None else ""
        allowed = limits.sockets_per_address
        if allowed and self.open_by_address[address] >= allowed:
            await self._close(websocket, 1008, f"TooManyConnections: at most {allowed} "
                              "sockets per client address")
            return
        self.open_by_address[address] += 1
        try:
            await self._serve(websocket, limits)
        finally:
            self.open_by_address[address] -= 1
            if not self.open_by_address[address]:
                del self.open_by_address[address]

    async def _serve(self, websocket: WebSocket, limits: ServerLimits) -> None:
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

        protocol = websocket.scope.get(PROTOCOL)
        transport: Any = getattr(protocol, "transport", None)
        buffered = transport.get_write_buffer_size if transport is not None else None
        d = self.deployment
        connection = SyncConnection(d.engine, d.subscriptions, receive, websocket.send_text,
                                    verify, limits, buffered,
                                    immediate_sender(protocol, self.frame, self.writes),
                                    self.encodings)
        await connection.run()
        if connection.close_reason is not None:
            await self._close(websocket, connection.close_code, connection.close_reason)
            if transport is not None:
                await self._drop_if_stuck(transport)

    @staticmethod
    async def _drop_if_stuck(transport: Any) -> None:
        # A client that stopped reading will not take the close frame either: give it a
        # moment, then drop the connection so its buffer and socket are freed.
        for _ in range(20):
            if transport.get_write_buffer_size() == 0 or transport.is_closing():
                return
            await asyncio.sleep(0.05)
        transport.abort()

    @staticmethod
    async def _close(websocket: WebSocket, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await websocket.close(code, close_reason(reason))
