"""Buffered inserts (issue 13): a transaction whose writes are all inserts is one message,
BEGIN to COMMIT; a statement after an insert sees it; a lost one-message commit is resolved
by its first document once its backend is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.schema import Schema, TableDefinition
from reactive_store.storage.store import (
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    StorageError,
    Store,
    TransientConflict,
)
from reactive_store.validators import v
from tests.db_faults import ScratchDatabase
from tests.support import new_namespace

SCHEMA = Schema({"items": TableDefinition(v.object({"n": v.float64()}))})
INDEX = "by_creation_time"


def keys(key: bytes) -> dict[str, bytes]:
    return {INDEX: key}


async def open_store(url: str, namespace: str, max_size: int = 3) -> Store:
    store = await Store.open(url, namespace, min_size=1, max_size=max_size)
    await store.push_schema(SCHEMA, document_from_row)
    return store


@asynccontextmanager
async def items_store(url: str, max_size: int = 3) -> AsyncIterator[Store]:
    """A store with the items table on a namespace of its own, dropped afterwards."""
    store = await open_store(url, new_namespace(), max_size)
    try:
        yield store
    finally:
        await store.drop()
        await store.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with items_store(database_url) as store:
        yield store


async def state_of(url: str, pid: int) -> str:
    conn = await asyncpg.connect(url)
    try:
        state: str = await conn.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1",
                                         pid)
        return state
    finally:
        await conn.close()


async def test_inserts_wait_for_commit_and_go_in_one_message(
        store: Store, database_url: str) -> None:
    async with store.write(buffered=True) as tx:
        await tx.insert("items", "a1", 1.0, b'{"n": 1}', keys(b"a1"))
        await tx.insert("items", "a2", 2.0, b'{"n": 2}', keys(b"a2"))
        xid = await tx.commit_writes("{}", ("session", 1), '"ok"')
        assert xid is None and tx.xid is None
        # Nothing was sent: the backend is not even inside a transaction.
        pid = tx._conn.get_server_pid()
        assert await state_of(database_url, pid) == "idle"
    async with store.read() as tx:
        assert {r.id for r in await tx.get_many("items", ["a1", "a2"])} == {"a1", "a2"}
        recorded = await tx.find_request("session", 1)
    assert recorded is not None and recorded.result == '"ok"'
    # The commit is known by its request: its timestamp is the recorded one.
    ts = await store.commit_ts(("session", 1))
    async with store.read() as tx:
        again = await tx.find_request("session", 1)
    assert again is not None and again.ts == ts


async def test_a_statement_after_an_insert_sees_it(store: Store) -> None:
    async with store.write(buffered=True) as tx:
        await tx.insert("items", "b1", 1.0, b'{"n": 1}', keys(b"b1"))
        row = await tx.get("items", "b1")
        assert row is not None and row.doc == b'{"n": 1}'
        await tx.insert("items", "b2", 2.0, b'{"n": 2}', keys(b"b2"))
        scanned = await tx.scan("items", INDEX, b"", None, False, 10)
        assert [r.id for r in scanned] == ["b1", "b2"]
        await tx.commit_writes("{}")


AWKWARD_DOCS = ['{"s": "it\'s"}', '{"s": "back\\\\slash"}', '{"s": "\\u0000 nul"}',
                '{"s": "日本語 ✓ $$ E\'x\'"}', '{"s": "line\\nbreak"}']
AWKWARD_TIMES = [0.1, 1764502000000.123, 5e-324, 1.7976931348623157e308, -0.0]
AWKWARD_KEYS = [b"\x00", b"\xff\x00'\\", b"", bytes(range(256)), b"E'\\x'"]


async def test_values_sent_as_literals_arrive_exactly(store: Store) -> None:
    ids = [f"c{i}" for i in range(len(AWKWARD_DOCS))]
    async with store.write(buffered=True) as tx:
        for doc_id, doc, time, key in zip(ids, AWKWARD_DOCS, AWKWARD_TIMES, AWKWARD_KEYS,
                                          strict=True):
            await tx.insert("items", doc_id, time, doc.encode(), keys(key))
        await tx.commit_writes("{}")
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 100)}
    for doc_id, doc, time, key in zip(ids, AWKWARD_DOCS, AWKWARD_TIMES, AWKWARD_KEYS,
                                      strict=True):
        assert rows[doc_id].doc == doc.encode()
        assert rows[doc_id].creation_time == time
        assert rows[doc_id].key == key


async def test_a_write_skew_in_the_commit_message_is_a_conflict(store: Store) -> None:
    """Both read the table, both insert: the one committing second conflicts, and the
    failure comes back from COMMIT's message with nothing of it committed."""
    with pytest.raises(TransientConflict):
        async with store.write(buffered=True) as first:
            await first.scan("items", INDEX, b"", None, False, 10)
            await first.insert("items", "d1", 1.0, b'{"n": 1}', keys(b"d1"))
            await first.commit_writes("{}")
            async with store.write() as second:
                await second.scan("items", INDEX, b"", None, False, 10)
                await second.insert("items", "d2", 2.0, b'{"n": 2}', keys(b"d2"))
                await second.commit_writes("{}")
    async with store.read() as tx:
        ids = {r.id for r in await tx.scan("items", INDEX, b"", None, False, 10)}
    assert ids == {"d2"}


async def test_a_refused_insert_commits_nothing_and_the_connection_is_reused(
        store: Store) -> None:
    with pytest.raises(StorageError, match="database error"):
        async with store.write(buffered=True) as tx:
            await tx.insert("items", "e1", 1.0, b'{"n": 1}', keys(b"e1"))
            await tx.insert("items", "e1", 2.0, b'{"n": 2}', keys(b"e2"))  # same id
            await tx.commit_writes("{}")
    async with store.read() as tx:
        assert await tx.get("items", "e1") is None
    async with store.write(buffered=True) as tx:
        await tx.insert("items", "e3", 3.0, b'{"n": 3}', keys(b"e3"))
        await tx.commit_writes("{}")
    async with store.read() as tx:
        assert await tx.get("items", "e3") is not None


async def test_a_transaction_that_sends_nothing_begins_nothing(store: Store) -> None:
    before = await store.latest_ts()
    async with store.write(buffered=True) as tx:
        assert tx.final_statements() == ""
    assert await store.latest_ts() == before


# -- a one-message commit whose connection is lost --------------------------------------


@pytest.fixture
async def scratch_store(scratch: ScratchDatabase) -> AsyncIterator[Store]:
    store = await open_store(scratch.url, "buffered")
    yield store
    await store.close()


async def kill_after(scratch: ScratchDatabase, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await scratch.terminate()


async def exists(store: Store, doc_id: str) -> bool:
    async with store.read() as tx:
        return await tx.get("items", doc_id) is not None


async def test_lost_before_commit_is_resolved_as_not_committed(
        scratch_store: Store, scratch: ScratchDatabase) -> None:
    killer = asyncio.create_task(kill_after(scratch, 0.5))
    with pytest.raises(DatabaseUnavailable) as caught:
        async with scratch_store.write(buffered=True) as tx:
            await tx.insert("items", "f1", 1.0, b'{"n": 1}', keys(b"f1"))
            await tx.commit_writes("{}")
            tx.commit_step += "; SELECT pg_sleep(5)"  # killed here, before COMMIT
    await killer
    assert caught.value.retryable
    assert not await exists(scratch_store, "f1")


async def test_lost_after_commit_is_resolved_as_committed(
        scratch_store: Store, scratch: ScratchDatabase) -> None:
    killer = asyncio.create_task(kill_after(scratch, 0.5))
    async with scratch_store.write(buffered=True) as tx:
        await tx.insert("items", "g1", 1.0, b'{"n": 1}', keys(b"g1"))
        await tx.commit_writes("{}")
        # COMMIT runs, then the backend is killed before the message's reply is complete.
        tx.commit_step += "; COMMIT; SELECT pg_sleep(5); BEGIN"
    await killer
    assert await exists(scratch_store, "g1")


async def test_lost_after_commit_is_committed_even_if_the_document_is_gone(
        scratch_store: Store, scratch: ScratchDatabase) -> None:
    """Another commit deleted the new document before the outcome was asked: the commit
    log still holds the write set that names it."""
    killer = asyncio.create_task(kill_after(scratch, 0.5))
    table = scratch_store.names.table("items")
    async with scratch_store.write(buffered=True) as tx:
        await tx.insert("items", "g2", 1.0, b'{"n": 1}', keys(b"g2"))
        await tx.commit_writes('[["items", "by_id", ["Zzi="]]]')
        tx.commit_step += (f"; COMMIT; BEGIN; DELETE FROM {table} WHERE _id = 'g2'; "
                           "COMMIT; SELECT pg_sleep(5); BEGIN")
    await killer
    assert not await exists(scratch_store, "g2")


async def test_lost_and_unresolvable_is_outcome_unknown(
        scratch_store: Store, scratch: ScratchDatabase) -> None:
    async def outage_soon() -> None:
        await asyncio.sleep(0.5)
        await scratch.refuse_connections()

    outage = asyncio.create_task(outage_soon())
    try:
        with pytest.raises(CommitOutcomeUnknown):
            async with scratch_store.write(buffered=True) as tx:
                await tx.insert("items", "h1", 1.0, b'{"n": 1}', keys(b"h1"))
                await tx.commit_writes("{}")
                tx.commit_step += "; SELECT pg_sleep(5)"
    finally:
        await outage
        await scratch.allow_connections()
    assert not await exists(scratch_store, "h1")


async def test_sequencing_after_commit_never_fails_the_commit(
        store: Store, database_url: str) -> None:
    """The statement after COMMIT in its message swallows its own errors: a commit that
    happened must not be reported as failed; the commit then waits for the sequencer."""
    sequence = store.names.system("sequence")
    conn = await asyncpg.connect(database_url)
    try:
        definition = await conn.fetchval(
            f"SELECT pg_get_functiondef('{sequence}(bigint[])'::regprocedure)")
        await conn.execute(
            f"CREATE OR REPLACE FUNCTION {sequence}(wanted bigint[]) "
            "RETURNS TABLE (xid bigint, ts bigint) LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'sequencing is broken'; END $$")
        async with store.write(buffered=True) as tx:
            await tx.insert("items", "i1", 1.0, b'{"n": 1}', keys(b"i1"))
            await tx.commit_writes("{}", ("s", 7), '"r"')
            tx.sequence_soon = True  # nothing else sequences: it carries its own
        async with store.read() as tx:
            assert await tx.get("items", "i1") is not None
            found = await tx.find_request("s", 7)
        assert found is not None and found.ts is None  # committed, not sequenced
        await conn.execute(definition)
        assert await store.commit_ts(("s", 7)) > 0
    finally:
        await conn.close()


async def test_concurrent_commits_share_the_batched_sequencing(store: Store) -> None:
    """Under load, commits whose callers wait on the stream do not each sequence in their
    own message: one carries its sequencing, the rest are sequenced by the batched calls
    their COMMITs nudge, with nobody asking for their timestamps."""
    answers: list[bool] = []
    carry = store.sequencer.carry

    def recording() -> bool:
        answers.append(carry())
        return answers[-1]

    store.sequencer.carry = recording  # type: ignore[method-assign]

    async def socket_write(n: int) -> None:
        async with store.write(buffered=True) as tx:
            await tx.insert("items", f"c{n}", float(n), b'{"n": %d}' % n, keys(b"c%d" % n))
            await tx.commit_writes("{}", ("s", n), '"r"')
            tx.sequence_soon = True

    await asyncio.gather(*(socket_write(n) for n in range(8)))
    assert answers.count(True) >= 1 and answers.count(False) >= 1, answers
    for _ in range(200):
        async with store.read() as tx:
            found = [await tx.find_request("s", n) for n in range(8)]
        stamps = [f.ts for f in found if f is not None]
        if len(stamps) == 8 and None not in stamps:
            break
        await asyncio.sleep(0.01)
    assert len(set(stamps)) == 8 and None not in stamps, stamps


async def put(store: Store, doc_id: str, n: int) -> None:
    async with store.write() as tx:
        await tx.insert("items", doc_id, float(n), b'{"n": %d}' % n, keys(doc_id.encode()))
        await tx.commit_writes("{}")


async def test_updates_and_deletes_wait_too_when_asked(store: Store, database_url: str) -> None:
    await put(store, "u1", 1)
    await put(store, "u2", 2)
    async with store.write(buffered=True, buffer_updates=True) as tx:
        await tx.insert("items", "u3", 3.0, b'{"n": 3}', keys(b"u3"))
        await tx.update("items", "u1", b'{"n": 10}', keys(b"u1-new"))
        await tx.delete("items", "u2")
        assert await tx.commit_writes("{}") is None and tx.xid is None
        assert await state_of(database_url, tx._conn.get_server_pid()) == "idle"
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 10)}
    assert set(rows) == {"u1", "u3"}
    assert rows["u1"].doc == b'{"n": 10}' and rows["u1"].key == b"u1-new"


async def test_a_read_after_a_waiting_update_sees_it(store: Store) -> None:
    await put(store, "r1", 1)
    async with store.write(buffered=True, buffer_updates=True) as tx:
        await tx.update("items", "r1", b'{"n": 5}', keys(b"r1"))
        row = await tx.get("items", "r1")
        assert row is not None and row.doc == b'{"n": 5}'
        await tx.delete("items", "r1")
        assert await tx.get("items", "r1") is None
        await tx.commit_writes("{}")


async def test_updated_values_arrive_exactly(store: Store) -> None:
    ids = [f"x{i}" for i in range(len(AWKWARD_DOCS))]
    for doc_id in ids:
        await put(store, doc_id, 0)
    async with store.write(buffered=True, buffer_updates=True) as tx:
        for doc_id, doc, key in zip(ids, AWKWARD_DOCS, AWKWARD_KEYS, strict=True):
            await tx.update("items", doc_id, doc.encode(), keys(key))
        await tx.commit_writes("{}")
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 100)}
    for doc_id, doc, key in zip(ids, AWKWARD_DOCS, AWKWARD_KEYS, strict=True):
        assert rows[doc_id].doc == doc.encode() and rows[doc_id].key == key


async def test_a_waiting_update_that_conflicts_fails_at_commit(store: Store) -> None:
    """Two transactions read a document and update it: the second to commit conflicts,
    from COMMIT's message, and its update is not applied."""
    await put(store, "w1", 1)
    with pytest.raises(TransientConflict):
        async with store.write(buffered=True, buffer_updates=True) as first:
            await first.get("items", "w1")
            await first.update("items", "w1", b'{"n": 2}', keys(b"w1"))
            await first.commit_writes("{}")
            async with store.write() as second:
                await second.get("items", "w1")
                await second.update("items", "w1", b'{"n": 3}', keys(b"w1"))
                await second.commit_writes("{}")
    async with store.read() as tx:
        row = await tx.get("items", "w1")
    assert row is not None and row.doc == b'{"n": 3}'


async def test_without_buffer_updates_an_update_reads_the_xid(store: Store) -> None:
    await put(store, "v1", 1)
    async with store.write(buffered=True) as tx:
        await tx.update("items", "v1", b'{"n": 2}', keys(b"v1"))
        assert tx.xid is not None
        assert await tx.commit_writes("{}") == tx.xid
