"""The commit step: logged with COMMIT in one message when the transaction id is known from
the first write, by its own statement otherwise; values sent as SQL literals arrive exact."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.schema import Schema, TableDefinition
from reactive_store.storage.connections import sql_literal
from reactive_store.storage.store import Store
from reactive_store.validators import v
from tests.support import new_namespace

AWKWARD = ["plain", "it's", "back\\slash", "\\'", "E'x'", "$$", "quote''s", "日本語 ✓",
           "line\nbreak", "tab\there", ""]


def keys(doc_id: str) -> dict[str, bytes]:
    """The creation-time index key (the id is the primary key; any distinct bytes do)."""
    return {"by_creation_time": doc_id.encode()}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, new_namespace(), min_size=1, max_size=2)
    table = TableDefinition(v.object({"n": v.float64()}))
    await store.push_schema(Schema({"items": table}), document_from_row)
    yield store
    await store.drop()
    await store.close()


async def test_literals_arrive_exactly(store: Store) -> None:
    async with store.read() as tx:
        for text in AWKWARD:
            assert (await tx.fetch(f"SELECT {sql_literal(text)}"))[0][0] == text
        assert (await tx.fetch(f"SELECT {sql_literal(None)}::text"))[0][0] is None
        assert (await tx.fetch(f"SELECT {sql_literal(-7)}"))[0][0] == -7


def test_a_nul_character_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sql_literal("a\x00b")


@pytest.mark.parametrize("text", AWKWARD)
async def test_a_recorded_request_travels_with_commit(store: Store, text: str) -> None:
    async with store.write() as tx:
        await tx.insert("items", "id1", 1.0, b'{"n": 1}', keys("id1"))
        assert tx.xid is not None  # read from the insert itself
        xid = await tx.commit_writes("{}", (f"session {text}", 3), f'"{text}"', f"hash {text}")
        assert xid == tx.xid and tx.commit_step
    ts = await store.commit_ts(xid)
    async with store.read() as tx:
        found = await tx.find_request(f"session {text}", 3)
    assert found is not None
    assert (found.ts, found.xid, found.result, found.request_hash) == (
        ts, xid, f'"{text}"', f"hash {text}")


@pytest.mark.parametrize("text", AWKWARD)
async def test_a_commit_without_a_request_logs_its_row_with_commit(store: Store, text: str
                                                                   ) -> None:
    async with store.write() as tx:
        await tx.insert("items", "id1", 1.0, b'{"n": 1}', keys("id1"))
        xid = await tx.commit_writes(f"writes {text}")
        assert xid == tx.xid and tx.commit_step.startswith("INSERT INTO ")
    ts = await store.commit_ts(xid)
    async with store.read() as tx:
        assert await tx.commits_between(ts - 1, ts) == [(ts, f"writes {text}")]


async def test_without_a_document_write_the_step_is_a_statement_of_its_own(
        store: Store) -> None:
    async with store.write() as tx:
        await tx.execute(f"SELECT 1 FROM {store.names.table('items')}")
        xid = await tx.commit_writes("{}", ("s", 1), '"r"')
        assert tx.commit_step == "" and xid > 0
    assert await store.commit_ts(xid) == await store.latest_ts()


async def test_a_refused_commit_step_leaves_the_connection_usable(store: Store) -> None:
    """The step fails before COMMIT runs: nothing is committed, and the connection is rolled
    back before it goes back to the pool."""
    with pytest.raises(Exception, match="database error"):
        async with store.write() as tx:
            await tx.insert("items", "id2", 1.0, b'{"n": 2}', keys("id2"))
            await tx.commit_writes("{}")
            tx.commit_step = "SELECT 1/0"
    async with store.read() as tx:
        assert await tx.get("items", "id2") is None
        assert await tx.get_many("items", ["id1"]) == []
