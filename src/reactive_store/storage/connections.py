"""Pooled connections: setup, telling a dead connection from a failed statement, dropping it.

Postgres ends a connection for many reasons (pg_terminate_backend, a restart, the database
refusing connections); the driver then reports it as one of several errors, or as a closed
connection that it has already handed back to the pool. These helpers decide, from the error
and the connection, whether it is gone, so that store.py can classify failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for one new connection (the driver's default is 60)
ROLLBACK_TIMEOUT = 5.0

# Errors that mean the connection is gone (or unusable): class 08 connection exceptions,
# 57P01-57P03 (administrator/crash shutdown, cannot connect now), too many connections, and
# socket errors. The driver's own InterfaceError / InternalClientError count when the
# connection is closed by then, or its protocol state is broken ("another operation is in
# progress" on a connection whose server sent FATAL and is hanging up).
LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,
    OSError,
)
DRIVER = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
FAILURES = (*DRIVER, OSError)


def closed(conn: Any) -> bool:
    """True when a pooled connection is closed, or was already handed back to the pool
    (asyncpg releases a connection the moment it closes, detaching our proxy)."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


def lost(exc: BaseException, conn: Any) -> bool:
    """True when `exc` means the connection is gone (see LOST)."""
    return isinstance(exc, LOST) or (isinstance(exc, DRIVER) and closed(conn))


def discard(conn: Any) -> None:
    """Drop a connection that cannot be trusted; the pool opens a fresh one when needed."""
    with contextlib.suppress(Exception):
        conn.terminate()


class Throttle:
    """Logs one warning per `every` seconds; an outage would otherwise log every request."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._last = 0.0
        self._suppressed = 0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        if self._suppressed:
            message += f" ({self._suppressed} similar since the last report)"
        self._last, self._suppressed = now, 0
        log.warning(message, *args)



def _jsonb_encode(data: bytes | str) -> bytes:
    return b"\x01" + (data.encode() if isinstance(data, str) else data)


def _jsonb_decode(data: bytes) -> bytes:
    return data[1:]


def _json_encode(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _json_decode(data: bytes) -> bytes:
    return data


async def init_connection(conn: asyncpg.Connection) -> None:
    # Documents travel as raw JSON bytes both ways; the engine encodes and decodes them.
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "json", encoder=_json_encode, decoder=_json_decode, schema="pg_catalog",
        format="binary",
    )


def application_name(namespace: str, role: str = "pool") -> str:
    """What `pg_stat_activity` shows for this deployment's connections (at most 63 bytes)."""
    return f"reactive-store {role} {namespace}".encode()[:63].decode(errors="ignore")


class PlainTransaction:
    """BEGIN, COMMIT and ROLLBACK sent as plain SQL (asyncpg's Transaction sends the same
    statements), so that other statements can travel in their messages.

    With `lazy`, BEGIN waits for the first statement (`start_with`) or for COMMIT: a
    transaction whose writes were all buffered is one message, BEGIN to COMMIT.
    """

    def __init__(self, conn: asyncpg.Connection, isolation: str, readonly: bool = False,
                 lazy: bool = False) -> None:
        self._conn = conn
        level = isolation.replace("_", " ").upper()
        self.begin_sql = f"BEGIN ISOLATION LEVEL {level}{' READ ONLY' if readonly else ''}"
        self.begun = False
        self.lazy = lazy

    async def start(self) -> None:
        if not self.lazy:
            await self.start_with("")

    def _after_begin(self, statements: str) -> str:
        """`statements`, after BEGIN if that is still to be sent."""
        if self.begun:
            return statements
        self.begun = True  # from here on a failure leaves a transaction to roll back
        return f"{self.begin_sql}; {statements}" if statements else self.begin_sql

    async def start_with(self, statements: str) -> None:
        """Send `statements` (simple protocol), after BEGIN if it was not sent yet."""
        statements = self._after_begin(statements)
        if statements:
            await self._conn.execute(statements)

    async def start_hearing(self, statement: str) -> list[str]:
        """BEGIN and `statement` in one message; the NOTICEs it raised, in order (the way a
        statement sent with BEGIN answers: the driver drops a simple query's rows)."""
        heard: list[str] = []

        def hear(_: Any, message: Any) -> None:
            heard.append(str(message.message))

        # The driver schedules listeners as it reads each NOTICE, before the reply that
        # ends the message resumes this coroutine: all of them have run by the return.
        self._conn.add_log_listener(hear)
        try:
            await self.start_with(statement)
        finally:
            self._conn.remove_log_listener(hear)
        return heard

    async def commit(self, first: str = "", after: str = "") -> None:
        """COMMIT, after the statements `first` and before `after` (simple protocol: one
        round trip; `after` runs in a transaction of its own and must not fail). A
        transaction that never began and has nothing to send sends nothing."""
        if not self.begun and not first:
            return
        first = self._after_begin(first)
        message = f"{first}; COMMIT" if first else "COMMIT"
        await self._conn.execute(f"{message}; {after}" if after else message)

    async def rollback(self) -> None:
        if self.begun:
            await self._conn.execute("ROLLBACK")


def sql_literal(value: str | int | float | bytes | None) -> str:
    """`value` as an SQL literal, for statements sent without parameters."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("booleans have no literal here")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same double.
        return f"'{value!r}'::float8"
    if isinstance(value, bytes):
        return "E'\\\\x" + value.hex() + "'::bytea"  # the hex format, E'\\x...'
    if "\x00" in value:
        raise ValueError("text values cannot hold NUL characters")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


async def rollback(conn: Any, tx: Any, broken: bool) -> None:
    """Roll back after the body failed; a connection that died or hangs is dropped instead.

    A connection that closed was already handed back to the pool by the driver (and the
    server rolled the transaction back), so there is nothing to do on it. After a cancelled
    statement the protocol can be mid-flight: if ROLLBACK cannot run promptly, drop it.
    """
    if broken or closed(conn):
        discard(conn)
        return
    try:
        await asyncio.wait_for(tx.rollback(), timeout=ROLLBACK_TIMEOUT)
    except asyncio.CancelledError:
        discard(conn)
        raise
    except Exception as exc:
        log.warning("rollback failed; dropping the connection: %r", exc)
        discard(conn)


