"""A read's snapshot taken in BEGIN's own message (sent back as a NOTICE): the same as the
snapshot query would give, committed-but-unsequenced writes and awkward text included, and
the query itself when the server does not send notices."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reactive_store.storage.commit_log_ddl import snapshot_sql
from reactive_store.storage.store import Store
from reactive_store.storage.transaction import snapshot_of
from tests.storage.test_buffered_writes import items_store
from tests.storage.test_sequencing import log_commit


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with items_store(database_url, max_size=1) as store:  # one connection (below)
        yield store


async def queried(store: Store) -> tuple[int, tuple[str, ...]]:
    async with store.read() as tx:
        row = await tx.fetch(snapshot_sql(store.names))
    return row[0][0], tuple(row[0][1])


AWKWARD = ['[["t", "i", "AQI="]]', "it's \\ \"quoted\" %s %% \n 日本", "x" * 20_000]


async def test_the_snapshot_sent_with_begin_is_the_queried_one(store: Store) -> None:
    first = await log_commit(store, "sequenced")
    await store.commit_ts(first)  # sequences it
    for writes in AWKWARD:
        await log_commit(store, writes)
    async with store.read(snapshot=True) as tx:
        taken = tx._snapshot
        snapshot = await tx.snapshot()
        assert await tx.snapshot() is snapshot
    assert taken is not None, "the snapshot came with BEGIN"
    assert (snapshot.ts, snapshot.unsequenced) == await queried(store)
    assert snapshot.unsequenced == tuple(AWKWARD)
    assert snapshot.ts > 0


async def test_an_empty_log_gives_timestamp_zero_and_nothing_unsequenced(store: Store) -> None:
    async with store.read(snapshot=True) as tx:
        snapshot = await tx.snapshot()
    assert (snapshot.ts, snapshot.unsequenced) == (0, ())


async def test_without_notices_the_snapshot_is_queried(store: Store) -> None:
    await log_commit(store, "w1")
    async with store.read() as tx:  # the pool's one connection stops sending notices
        await tx.execute("SET client_min_messages = warning")
    async with store.read(snapshot=True) as tx:
        assert tx._snapshot is None
        snapshot = await tx.snapshot()
    assert snapshot.unsequenced == ("w1",)
    assert (snapshot.ts, snapshot.unsequenced) == await queried(store)


def test_only_the_snapshot_notice_is_read() -> None:
    assert snapshot_of([]) is None
    assert snapshot_of(["some other notice"]) is None
    got = snapshot_of(["other", 'reactive-store snapshot 42 ["a b", "c"]'])
    assert got is not None and (got.ts, got.unsequenced) == (42, ("a b", "c"))
