"""A dedicated connection that LISTENs for commit notifications and reconnects when lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class Listener:
    """Delivers NOTIFY payloads of one channel in arrival (= commit) order.

    After every (re)connection, `on_connected` runs with LISTEN already active, so it can
    read what was committed while no connection listened without missing anything newer.
    """

    def __init__(self, url: str, channel: str, on_payload: Callable[[str], None],
                 on_connected: Callable[[], Awaitable[None]]) -> None:
        self._url = url
        self._channel = channel
        self._on_payload = on_payload
        self._on_connected = on_connected
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._on_payload(payload)

    def _terminated(self, conn: Any) -> None:
        self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._url)
        conn.add_termination_listener(self._terminated)
        await conn.add_listener(self._channel, self._notify)
        self._conn = conn
        self._lost.clear()
        await self._on_connected()
        self._ready.set()

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        delay = 0.1
        while True:
            await self._lost.wait()
            log.warning("commit listener connection lost; reconnecting")
            while True:
                try:
                    await self._connect()
                    delay = 0.1
                    break
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("commit listener reconnect failed: %s", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
