"""A read-only transaction's COMMIT is sent after its caller has moved on: what it read was
settled by its snapshot. The connection goes back to the pool once COMMIT is done, a lost
connection there surfaces nowhere, and closing the store waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.schema import Schema
from reactive_store.storage.store import Store
from tests.db_faults import ScratchDatabase


@pytest.fixture
async def store(scratch: ScratchDatabase) -> AsyncIterator[Store]:
    store = await Store.open(scratch.url, "reads", min_size=1, max_size=1)
    await store.push_schema(Schema({}), document_from_row)
    yield store
    await store.close()


async def test_the_reader_does_not_wait_for_commit_and_the_connection_comes_back(
        store: Store) -> None:
    async with store.read() as tx:
        first = await tx.snapshot()
    assert store._ending, "COMMIT should still be under way"
    # One connection in the pool: the next read waits for that COMMIT, then gets it.
    async with store.read() as tx:
        assert (await tx.snapshot()).ts == first.ts
    await asyncio.gather(*store._ending)
    assert store.pool_figures()["pool_idle"] == 1


async def test_a_connection_lost_before_the_commit_is_dropped_quietly(
        store: Store, scratch: ScratchDatabase) -> None:
    async with store.read() as tx:
        await tx.snapshot()
        await scratch.terminate()
        await asyncio.sleep(0.1)  # the termination notice arrives
    await asyncio.gather(*store._ending)  # nothing raised
    async with store.read() as tx:
        assert (await tx.snapshot()).ts >= 0


async def test_closing_the_store_waits_for_commits_under_way(
        scratch: ScratchDatabase) -> None:
    store = await Store.open(scratch.url, "reads_close", min_size=1, max_size=1)
    await store.push_schema(Schema({}), document_from_row)
    async with store.read() as tx:
        await tx.snapshot()
    ending = set(store._ending)
    await store.close()
    assert ending and all(task.done() for task in ending)
