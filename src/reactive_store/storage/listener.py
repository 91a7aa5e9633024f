"""A dedicated connection that LISTENs for commit notifications and reconnects when lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from reactive_store.storage.connections import CONNECT_TIMEOUT

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 1.0  # seconds between attempts while the database is away
HEALTH_CHECK_SECONDS = 15.0  # a silent connection is probed this often (half-open sockets)


class Listener:
    """Delivers NOTIFY payloads of one channel in arrival (= commit) order.

    After every (re)connection, `on_connected` runs with LISTEN already active, so it can
    read what was committed while no connection listened without missing anything newer.
    Whatever fails while reconnecting (the database refusing connections, the connection
    dying again during `on_connected`), the listener keeps trying until `stop()`.
    """

    def __init__(self, url: str, channel: str, on_payload: Callable[[str], None],
                 on_connected: Callable[[], Awaitable[None]], *,
                 application_name: str = "reactive-store listener") -> None:
        self._url = url
        self._channel = channel
        self._on_payload = on_payload
        self._on_connected = on_connected
        self._application_name = application_name
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.reconnects = 0  # successful reconnections, for tests and /api/_stats

    def _notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._on_payload(payload)

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._lost.set()

    async def _connect(self) -> None:
        # Cleared before connecting: a loss noticed from here on must not be forgotten.
        self._lost.clear()
        self._drop()
        conn = await asyncpg.connect(
            self._url, timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": self._application_name})
        self._conn = conn
        try:
            conn.add_termination_listener(self._terminated)
            await conn.add_listener(self._channel, self._notify)
            await self._on_connected()
        except BaseException:
            self._drop()
            raise
        if conn.is_closed():
            self._lost.set()
        self._ready.set()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            try:
                async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                    await self._lost.wait()
            except TimeoutError:
                if await self._healthy():
                    continue
            log.warning("commit listener connection lost; reconnecting")
            await self._reconnect()

    async def _healthy(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await conn.execute("SELECT 1")
        except Exception as exc:
            log.warning("commit listener health check failed: %r", exc)
            return False
        return True

    async def _reconnect(self) -> None:
        delay = 0.05
        failures = 0
        while True:
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("commit listener reconnect failed (%d so far): %r",
                                failures, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
                continue
            self.reconnects += 1
            if failures:
                log.warning("commit listener reconnected after %d failed attempts", failures)
            return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:
                with contextlib.suppress(Exception):
                    conn.terminate()
