"""The before-image log on its own: rows keyed by transaction id take their commit's
timestamp, the horizon begins, stops and rises with pruning (its own and the commit log's),
and pruning goes in batches, never below what is readable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.schema import Schema
from reactive_store.storage import maintenance
from reactive_store.storage.history import BeforeImage, horizon, record, versions_at
from reactive_store.storage.store import Store
from tests.support import new_namespace


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, new_namespace(), min_size=1, max_size=2)
    await store.push_schema(Schema({}), document_from_row)
    yield store
    await store.drop()
    await store.close()


async def commit(store: Store, *images: BeforeImage, request: tuple[str, int] | None = None
                 ) -> int:
    """A commit of `images` (no document rows: the log is what is tested), and its
    timestamp once sequenced."""
    async with store.write() as tx:
        xid = await tx.commit_writes("{}", request, "null", "hash")
        await record(tx, list(images))
    return await store.commit_ts(xid)


async def oldest(store: Store) -> int | None:
    async with store.read() as tx:
        return await horizon(tx)


async def versions(store: Store, table: str, ts: int) -> list[BeforeImage]:
    async with store.read() as tx:
        return await versions_at(tx, table, ts, 100)


def image(doc_id: str, doc: bytes | None, table: str = "t") -> BeforeImage:
    return BeforeImage(table, doc_id, None if doc is None else 1.0, doc)


async def test_rows_take_their_commits_timestamp(store: Store) -> None:
    first = await commit(store, image("a", None), image("b", b'{"v":1}'), request=("s", 1))
    assert await store.latest_ts() == first
    async with store.read() as tx:
        recorded = await tx.find_request("s", 1)
    assert recorded is not None and recorded.ts == first
    second = await commit(store, image("a", b'{"v":2}'), image("b", None))
    assert second > first
    # At `first - 1`: the earliest later before-image of each document wins.
    assert sorted(await versions(store, "t", first - 1)) == [image("a", None),
                                                              image("b", b'{"v":1}')]
    assert sorted(await versions(store, "t", first)) == [image("a", b'{"v":2}'),
                                                          image("b", None)]
    assert await versions(store, "t", second) == []
    assert await versions(store, "other", 0) == []


async def test_the_horizon_begins_at_the_newest_commit_and_stops_with_history(
        store: Store) -> None:
    assert await oldest(store) is None  # nothing started it yet
    ts = await commit(store, image("a", None))
    await store.start_history(True)
    assert await oldest(store) == ts
    later = await commit(store, image("b", None))
    await store.start_history(True)  # kept already: it stays where it began
    assert await oldest(store) == ts
    await store.start_history(False)
    assert await oldest(store) is None
    await store.start_history(True)
    assert await oldest(store) == later


async def test_pruning_raises_the_horizon_to_the_newest_old_commit_then_deletes(
        store: Store) -> None:
    await store.start_history(True)
    stamps = [await commit(store, image(f"d{i}", None)) for i in range(3)]
    report = await store.prune(900, 3600, 3600.0)  # nothing is an hour old
    assert report.history == 0 and await oldest(store) == 0
    report = await store.prune(900, 3600, 0.0)  # everything is old
    assert report.history == 3 and await oldest(store) == stamps[-1]
    newer = await commit(store, image("e", None))
    assert (await store.prune(900, 3600, 3600.0)).history == 0
    assert await oldest(store) == stamps[-1]  # never moved past what was deleted
    assert [i.id for i in await versions(store, "t", stamps[-1])] == ["e"]
    assert newer > stamps[-1]


async def test_pruning_with_history_off_deletes_every_row_in_batches(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 2)
    await store.start_history(True)
    for i in range(5):
        await commit(store, image(f"d{i}", None))
    await store.start_history(False)
    report = await store.prune(900, 3600, 3600.0)
    assert report.history == 5 and await oldest(store) is None
    assert await versions(store, "t", 0) == []


async def test_versions_are_read_up_to_a_limit(store: Store) -> None:
    before = await store.latest_ts()
    await commit(store, *[image(f"d{i}", None) for i in range(5)])
    async with store.read() as tx:
        assert len(await versions_at(tx, "t", before, 3)) == 3


async def test_a_commit_not_yet_sequenced_comes_after_every_sequenced_one(
        store: Store) -> None:
    first = await commit(store, image("a", b'{"v":1}'))
    async with store.write() as tx:
        await tx.commit_writes("{}")
        await record(tx, [image("a", b'{"v":2}'), image("b", None)])
    # Its commit row has no timestamp yet: still a commit after `first` to a reader.
    async with store.read() as tx:
        snapshot = await tx.snapshot()
        found = sorted(await versions_at(tx, "t", first, 10))
    assert snapshot.unsequenced  # nothing sequences a bare Store's commits on its own
    assert found == [image("a", b'{"v":2}'), image("b", None)]
    assert sorted(await versions(store, "t", first - 1)) == [image("a", b'{"v":1}'),
                                                             image("b", None)]


async def test_pruning_the_commit_log_raises_the_horizon_past_what_it_prunes(
        store: Store) -> None:
    await store.start_history(True)
    stamps = [await commit(store, image(f"d{i}", None)) for i in range(3)]
    # History kept an hour, the commit log asked for none: commits stay as long as their
    # before-images need them.
    assert (await store.prune(0.0, 3600, 3600.0)).commits == 0
    assert await oldest(store) == 0
    # With history off the commit log goes as asked, and the horizon follows it.
    report = await store.prune(0.0, 3600, 0.0)
    assert report.commits == 2 and await oldest(store) == stamps[-1]
    assert report.history == 3
