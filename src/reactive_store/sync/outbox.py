"""A sync connection's sending side: the output queue and the writes, watched for a stalled client.

`Outbox` is the base class of `SyncConnection` (sync/connection.py): its pump is the only
caller of the awaiting sends, so messages leave in the order they were queued or built.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from reactive_store.limits import ServerLimits
from reactive_store.sync.protocol import ClientLimitExceeded

STALL_CHECK_SECONDS = 1.0

# Sends smaller than this, onto a transport holding less than it, go out unwatched: asyncio
# transports pause (and a draining send waits) only above 64 KiB.
UNWATCHED_SEND_BYTES = 8 * 1024  # characters: at most 4 bytes each, 40 KiB in all


class Outbox:
    """Queued responses and the socket writes, closing a client that stopped reading."""

    def __init__(self, send: Callable[[str], Awaitable[None]], limits: ServerLimits,
                 buffered: Callable[[], int] | None = None,
                 send_now: Callable[..., bool] | None = None) -> None:
        self._send = send
        self.limits = limits
        # Bytes written to the socket and not yet taken by the client (the transport's
        # buffer): the only measure of a client that stopped reading, since sends never block.
        self._buffered = buffered or (lambda: 0)
        self._sees_buffer = buffered is not None
        # Writes a frame at once (False: it could not); lets `_on_result` push a Transition
        # itself while the pump is idle, so a fan-out wakes no task per socket.
        self._send_now = send_now if buffered is not None else None
        self._stall: tuple[float, int] | None = None  # (since, buffered bytes then)
        self._responses: deque[str] = deque()  # encoded once, sent in order
        self._queued_bytes = 0
        self._last_send = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _now(self) -> float:
        """The event loop's clock. The loop is looked up once: on Python 3.11 each
        `get_running_loop` makes a system call, once per socket in a fan-out."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop.time()

    def _queue(self, text: str) -> None:
        """Text for the pump to send before anything it builds next."""
        self._queued_bytes += len(text)
        self._responses.append(text)

    async def _send_text(self, text: str) -> None:
        """Send, watching for a client that stopped reading: the server's send waits while
        the socket's buffer is full, and a buffer that does not shrink for
        `stalled_socket_seconds` closes the socket."""
        self._check_output()
        if self._sees_buffer and self._buffered() + len(text) < UNWATCHED_SEND_BYTES:
            # Below the transport's high-water mark a send cannot wait for the client (a
            # protocol that drains only waits on a paused transport): no watcher needed.
            await self._send(text)
            self._last_send = self._now()
            return
        started = self._now()
        sending = asyncio.ensure_future(self._send(text))
        try:
            while not (await asyncio.wait({sending}, timeout=STALL_CHECK_SECONDS))[0]:
                self._check_output()
                stalled = self.limits.stalled_socket_seconds
                if not self._sees_buffer and stalled and self._now() - started > stalled:
                    raise ClientLimitExceeded(f"client is not reading: a send made no "
                                              f"progress for {stalled:g} s")
            sending.result()
        finally:
            if not sending.done():
                sending.cancel()
        self._last_send = self._now()

    def _check_output(self) -> None:
        """Close a client that lets output pile up, or that takes none for too long."""
        limit = self.limits.queued_bytes_per_socket
        waiting = self._buffered() + self._queued_bytes
        if limit and waiting > limit:
            raise ClientLimitExceeded(f"client is not reading: over {limit} bytes waiting "
                                      "to be sent")
        now = self._now()
        if waiting == 0:
            self._stall = None
        elif self._stall is None or waiting < self._stall[1]:
            self._stall = (now, waiting)
        elif self.limits.stalled_socket_seconds and (
                now - self._stall[0] > self.limits.stalled_socket_seconds):
            raise ClientLimitExceeded(f"client is not reading: no output taken for "
                                      f"{self.limits.stalled_socket_seconds:g} s")

    def _write_now(self, *texts: str) -> bool:
        """Write `texts` at once, in one write, when the socket takes them without waiting
        (below the high-water mark, no stall); False, having written nothing, otherwise."""
        if (self._send_now is None or self._stall is not None
                or self._buffered() + sum(map(len, texts)) >= UNWATCHED_SEND_BYTES
                or not self._send_now(*texts)):
            return False
        self._last_send = self._now()
        return True

    async def _send_all(self, step: str | None) -> None:
        """Send the queued responses, then `step`: in one write when the socket takes it at
        once, else one by one, watched (`_send_text`)."""
        texts = [*self._responses, step] if step is not None else [*self._responses]
        if self._write_now(*texts):
            self._responses.clear()
            self._queued_bytes = 0
            return
        await self._flush_responses()
        if step is not None:
            await self._send_text(step)

    async def _flush_responses(self) -> None:
        while self._responses:
            text = self._responses.popleft()
            self._queued_bytes -= len(text)
            await self._send_text(text)
