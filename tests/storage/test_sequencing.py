"""`_sequence` in SQL: the watermark it keeps never skips a commit, and only moves forward."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.schema import Schema, TableDefinition
from reactive_store.storage.store import Store
from reactive_store.validators import v
from tests.support import new_namespace


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, new_namespace(), min_size=1, max_size=2)
    await store.push_schema(Schema({"items": TableDefinition(v.object({}))}), document_from_row)
    yield store
    await store.drop()
    await store.close()


async def log_commit(store: Store, writes: str) -> int:
    async with store.write() as tx:
        await tx.execute("SELECT 1")
        xid: int = await tx.commit_writes(writes)
    return xid


async def watermark(conn: asyncpg.Connection, store: Store) -> int:
    value: int = await conn.fetchval(
        f"SELECT sequenced_below FROM {store.names.system('sequencing')}")
    return value


async def oldest_open(conn: asyncpg.Connection) -> int:
    """A bound below every transaction still open on the server now (the watermark of a
    later call is at least this: other tests' transactions hold it back too)."""
    value: int = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())"
                                     "::text::bigint")
    return value


async def test_a_transaction_older_than_a_sequencing_call_is_still_found(
        store: Store, database_url: str) -> None:
    """A commit whose transaction began before a sequencing call, and committed after it,
    lies above the watermark that call left, so the next call gives it its timestamp."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("BEGIN")
        old_xid = await conn.fetchval(
            f"SELECT {store.names.system('record_commit')}('old writes')")
        new_xid = await log_commit(store, "new writes")
        new_ts = await store.commit_ts(new_xid)
        assert old_xid < new_xid
        assert await watermark(conn, store) <= old_xid, "the open transaction holds it back"
        await conn.execute("COMMIT")
        async with store.read() as tx:
            snapshot = await tx.snapshot()
        assert snapshot.unsequenced == ("old writes",)
        oldest = await oldest_open(conn)
        assert await store.commit_ts(old_xid) > new_ts
        if oldest > new_xid:  # nothing older is open anywhere on the server
            assert await watermark(conn, store) > new_xid
    finally:
        await conn.close()


async def test_the_watermark_moves_past_every_sequenced_commit(
        store: Store, database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        before = await watermark(conn, store)
        xids = [await log_commit(store, f"w{i}") for i in range(5)]
        timestamps = [await store.commit_ts(xid) for xid in xids]
        assert timestamps == sorted(timestamps) and len(set(timestamps)) == 5
        oldest = await oldest_open(conn)
        await store.latest_ts()  # one more call, after every one of them ended
        after = await watermark(conn, store)
        assert before <= after
        if oldest > max(xids):  # nothing older is open anywhere on the server
            assert max(xids) < after
        unsequenced = await conn.fetchval(
            f"SELECT count(*) FROM {store.names.system('commits')} WHERE ts IS NULL")
        assert unsequenced == 0
    finally:
        await conn.close()


async def test_a_rolled_back_sequencing_call_leaves_the_watermark(
        store: Store, database_url: str) -> None:
    """The watermark is written in the sequencing call's own transaction: a call that fails
    moves neither the timestamps nor the watermark."""
    conn = await asyncpg.connect(database_url)
    try:
        xid = await log_commit(store, "kept")
        before = await watermark(conn, store)
        await conn.execute("BEGIN")
        await conn.fetch(f"SELECT * FROM {store.names.system('sequence')}($1::bigint[])", [xid])
        await conn.execute("ROLLBACK")
        assert await watermark(conn, store) == before
        ts = await conn.fetchval(
            f"SELECT ts FROM {store.names.system('commits')} WHERE xid = $1", xid)
        assert ts is None
        assert await store.commit_ts(xid) > 0
    finally:
        await conn.close()


async def test_a_write_set_too_long_for_a_notification_is_announced_by_timestamp(
        store: Store, database_url: str) -> None:
    """`ts writes` when it fits a notification; `ts` alone when the write set is longer
    than NOTIFY_WRITES_CHARS (listeners read it from the log)."""
    from reactive_store.storage.commit_log_ddl import NOTIFY_WRITES_CHARS

    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener(store.names.channel, lambda *a: heard.put_nowait(a[3]))
        short, long = "w" * NOTIFY_WRITES_CHARS, "w" * (NOTIFY_WRITES_CHARS + 1)
        for writes in (short, long):
            ts = await store.commit_ts(await log_commit(store, writes))
            payload = await asyncio.wait_for(heard.get(), 5)
            assert payload == (f"{ts} {short}" if writes == short else str(ts))
    finally:
        await conn.close()


async def test_a_call_that_waited_while_its_commit_was_sequenced_writes_nothing(
        store: Store, database_url: str) -> None:
    """Calls queue on the commit lock; one that finds, once it has the lock, that the
    holder gave every commit its timestamp returns those without writing anything (no
    transaction id), so the next in the queue is not kept waiting by it."""
    holder, waiter = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    sequence = store.names.system("sequence")
    try:
        xid = await log_commit(store, "one")
        await holder.execute("BEGIN")
        await holder.execute("SELECT pg_advisory_xact_lock($1)", store.names.commit_lock)
        call = asyncio.create_task(waiter.fetch(
            f"SELECT s.*, txid_current_if_assigned() FROM {sequence}($1::bigint[]) s", [xid]))
        pid = waiter.get_server_pid()
        while not await holder.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", pid):
            await asyncio.sleep(0.01)
        given = await holder.fetch(f"SELECT * FROM {sequence}($1::bigint[])", [xid])
        await holder.execute("COMMIT")
        rows = await asyncio.wait_for(call, 5)
        assert [tuple(row) for row in rows] == [(xid, given[0]["ts"], None)]
    finally:
        await holder.close()
        await waiter.close()
