"""Issue 12 item 1, storage side: terminated backends and a database refusing connections.

Each test runs a `Store` on a scratch database of its own (db_faults.py) and breaks it from
outside, as `pg_terminate_backend` and `ALTER DATABASE ... ALLOW_CONNECTIONS false` do in
production. What must hold: a dead pooled connection is replaced without the caller noticing;
a connection lost before COMMIT is `DatabaseUnavailable` (nothing committed, retryable); lost
during COMMIT is `CommitOutcomeUnknown`; neither message names the database, the driver or
the pool; and the store recovers by itself once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.errors import InternalError
from reactive_store.schema import Schema
from reactive_store.storage.store import (
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    StorageError,
    Store,
)
from tests.db_faults import ScratchDatabase

POOL = 4
# Words that would tell a client what database, driver or internals sit behind the server.
LEAKS = ("asyncpg", "pool", "postgres", "connection.", "interfaceerror", "rs_fault_", "state 1",
         "released", "operation", "backend", "terminat", "uncaught")


@pytest.fixture
async def store(scratch: ScratchDatabase) -> AsyncIterator[Store]:
    store = await Store.open(scratch.url, "faults", min_size=POOL, max_size=POOL)
    await store.push_schema(Schema({}), document_from_row)
    yield store
    await store.close()


def assert_clean(exc: BaseException) -> None:
    """The error a client would be shown names nothing behind the server."""
    assert isinstance(exc, InternalError), type(exc)
    text = f"{exc.code} {exc.message} {exc}".lower()
    for word in LEAKS:
        assert word not in text, f"{word!r} leaks in {text!r}"


async def write_once(store: Store, writes: str = "{}") -> int:
    async with store.write() as tx:
        xid = await tx.commit_writes(writes)
    return await store.commit_ts(xid)


async def warm(store: Store) -> None:
    """Open every pooled connection, so that all of them die when terminated."""
    async def hold() -> None:
        async with store.read() as tx:
            await tx.snapshot()
            await asyncio.sleep(0.05)
    await asyncio.gather(*(hold() for _ in range(POOL)))


async def test_terminated_idle_connections_are_replaced_unnoticed(
    store: Store, scratch: ScratchDatabase
) -> None:
    for _ in range(5):
        await warm(store)
        assert await scratch.terminate() >= POOL
        # At once: the termination notices may not have been read off the sockets yet.
        reads = [store.latest_ts() for _ in range(POOL * 2)]
        writes = [write_once(store) for _ in range(POOL * 2)]
        results = await asyncio.gather(*reads, *writes)
        assert all(isinstance(ts, int) for ts in results)


async def test_connection_lost_before_commit_is_database_unavailable(
    store: Store, scratch: ScratchDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    before = await store.latest_ts()
    with caplog.at_level(logging.WARNING), pytest.raises(DatabaseUnavailable) as caught:
        async with store.write() as tx:
            await tx.snapshot()
            await scratch.terminate()
            await asyncio.sleep(0.1)
            await tx.commit_writes("{}")
    assert_clean(caught.value)
    assert caught.value.retryable and caught.value.client_safe
    # The cause stays in the server log, and nothing was committed.
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("reactive_store")]
    assert any("Error(" in m for m in logged), logged
    assert await store.latest_ts() == before
    assert await write_once(store) > before


async def test_an_error_raised_after_the_connection_died_is_kept(
    store: Store, scratch: ScratchDatabase
) -> None:
    """Rolling back a dead connection must not replace the function's own error."""
    with pytest.raises(ValueError, match="the function's own error"):
        async with store.write() as tx:
            await tx.snapshot()
            await scratch.terminate()
            await asyncio.sleep(0.1)
            raise ValueError("the function's own error")
    assert await write_once(store) > 0


async def test_connection_lost_during_commit_is_outcome_unknown(
    store: Store, scratch: ScratchDatabase
) -> None:
    # A deferred constraint trigger makes COMMIT itself slow, so the backend can be killed
    # while COMMIT is in flight (the trigger runs before the commit record: nothing commits).
    commits = store.names.system("commits")
    async with store.write() as tx:
        conn: Any = tx._conn
        await conn.execute(
            f"CREATE FUNCTION {store.names.schema}.slow() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$")
        await conn.execute(
            f"CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON {commits} DEFERRABLE "
            f"INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {store.names.schema}.slow()")
    before = await store.latest_ts()

    async def kill_soon() -> None:
        await asyncio.sleep(0.5)
        await scratch.terminate()

    killer = asyncio.create_task(kill_soon())
    with pytest.raises(CommitOutcomeUnknown) as caught:
        await write_once(store)
    await killer
    assert_clean(caught.value)
    assert not caught.value.retryable
    assert await store.latest_ts() == before

    # A read-only transaction that loses its connection at COMMIT lost nothing.
    async def kill_later() -> None:
        await asyncio.sleep(0.2)
        await scratch.terminate()

    killer = asyncio.create_task(kill_later())
    with pytest.raises(DatabaseUnavailable):
        async with store.write() as tx:
            await tx.snapshot()
            await asyncio.sleep(0.5)
    await killer


async def test_database_refusing_connections_then_back(
    store: Store, scratch: ScratchDatabase
) -> None:
    await scratch.refuse_connections()
    try:
        for call in (lambda: write_once(store), store.latest_ts,
                     lambda: store.commits_after(0)):
            with pytest.raises(DatabaseUnavailable) as caught:
                await call()
            assert_clean(caught.value)
        with pytest.raises(DatabaseUnavailable):
            async with store.read() as tx:
                await tx.snapshot()
    finally:
        await scratch.allow_connections()
    # Back without reopening the store.
    ts = await write_once(store)
    assert await store.latest_ts() == ts


async def test_other_database_errors_stay_clean(store: Store) -> None:
    """A statement the database refuses (not a lost connection) is a clean StorageError."""
    with pytest.raises(StorageError) as caught:
        async with store.write() as tx:
            await tx.get("no_such_table", "x")
    assert not isinstance(caught.value, DatabaseUnavailable | CommitOutcomeUnknown)
    assert_clean(caught.value)
    assert await write_once(store) > 0


async def test_listener_recovers_from_terminations_and_an_outage(
    store: Store, scratch: ScratchDatabase
) -> None:
    """The commit listener reconnects by itself, whatever fails while it reconnects."""
    payloads: list[str] = []
    caught_up = 0

    async def on_connected() -> None:
        # What the commit stream does on every reconnection: read what it may have missed.
        nonlocal caught_up
        payloads.extend(f"{ts} {writes}" for ts, writes in await store.commits_after(0))
        caught_up += 1

    listener = store.listener(payloads.append, on_connected)
    await listener.start()
    try:
        for _ in range(3):
            await scratch.terminate()
            await asyncio.sleep(0.15)
        await scratch.refuse_connections()
        await asyncio.sleep(1.5)
        await scratch.allow_connections()
        ts = await write_once(store, '{"after": "outage"}')
        for _ in range(100):
            if any(p.startswith(f"{ts} ") for p in payloads):
                break
            await asyncio.sleep(0.05)
        assert any(p.startswith(f"{ts} ") for p in payloads), payloads
        assert caught_up >= 2
    finally:
        await listener.stop()

