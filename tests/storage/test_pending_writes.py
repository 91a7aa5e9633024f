"""Buffered writes grouped into few statements: grouped only when no document is written
twice, and then with the same outcome as one statement each (real Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reactive_store.storage.pending_writes import TID_ONLY, PendingWrites
from reactive_store.storage.store import Store
from tests.storage.test_buffered_writes import INDEX, items_store, keys, put

T = '"ns"."items"'
K = '"k_by_creation_time"'


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with items_store(database_url) as store:
        yield store


def statements(pending: PendingWrites) -> list[str]:
    return pending.take_sql().split("; ")


def test_distinct_documents_take_one_statement_per_kind_and_table() -> None:
    pending = PendingWrites()
    for n in range(3):
        pending.insert(T, ("_id", "_creation_time", "doc", K), (f"i{n}", 1.0, "{}", b"k"))
        pending.update('"ns"."jobs"', f"j{n}", '{"s": 1}', {K: b"k"})
    pending.delete(T, "gone1")
    pending.delete(T, "gone2")
    sql = statements(pending)
    assert len(sql) == 3
    assert sql[0].startswith(f"INSERT INTO {T} (_id, _creation_time, doc, {K}) VALUES (")
    assert sql[0].count("), (") == 2
    assert sql[1].startswith('UPDATE "ns"."jobs" AS t SET doc = v.doc::json, ')
    assert "FROM (VALUES (E'j0'" in sql[1] and 'WHERE t._id = v._id COLLATE "C"' in sql[1]
    assert sql[2] == f"DELETE FROM {T} WHERE _id IN (E'gone1', E'gone2')"
    assert not pending and pending.take_sql() == ""


def test_a_document_written_twice_keeps_every_write_in_order() -> None:
    pending = PendingWrites()
    pending.insert(T, ("_id", "_creation_time", "doc", K), ("a", 1.0, "{}", b"k"))
    pending.insert(T, ("_id", "_creation_time", "doc", K), ("b", 1.0, "{}", b"k"))
    pending.update(T, "a", '{"n": 2}', {K: b"k2"})
    pending.delete(T, "a")
    sql = statements(pending)
    assert [s.split(" ", 1)[0] for s in sql] == ["INSERT", "INSERT", "UPDATE", "DELETE"]
    assert sql[2] == (f"UPDATE {T} SET doc = E'{{\"n\": 2}}', {K} = E'\\\\x6b32'::bytea "
                      "WHERE _id = E'a'")
    assert sql[3] == f"DELETE FROM {T} WHERE _id = E'a'"


def test_the_same_id_in_two_tables_is_two_documents() -> None:
    pending = PendingWrites()
    pending.update(T, "x", "{}", {})
    pending.update('"ns"."other"', "x", "{}", {})
    sql = statements(pending)
    assert len(sql) == 2 and all(" AS t SET " in s for s in sql)  # grouped: distinct


def test_other_column_lists_are_other_statements() -> None:
    pending = PendingWrites()
    pending.update(T, "a", "{}", {K: b"1"})
    pending.update(T, "b", "{}", {})
    pending.update(T, "c", "{}", {K: b"2"})
    sql = statements(pending)
    assert len(sql) == 2 and "v.doc::json, " in sql[0] and f"{K} = v.{K}" in sql[0]
    assert sql[1].startswith(f"UPDATE {T} AS t SET doc = v.doc::json FROM (VALUES (E'b'")


async def test_grouped_writes_leave_what_one_statement_each_would(store: Store) -> None:
    for n in range(6):
        await put(store, f"old{n}", n)
    async with store.write(buffered=True, buffer_updates=True) as tx:
        for n in range(4):
            await tx.insert("items", f"new{n}", 10.0 + n, b'{"n": %d}' % n, keys(b"new%d" % n))
            await tx.update("items", f"old{n}", b'{"n": %d}' % (100 + n), keys(b"moved%d" % n))
        await tx.delete("items", "old4")
        await tx.delete("items", "old5")
        await tx.commit_writes("{}")
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 100)}
    assert set(rows) == {*(f"new{n}" for n in range(4)), *(f"old{n}" for n in range(4))}
    for n in range(4):
        assert rows[f"new{n}"].doc == b'{"n": %d}' % n and rows[f"new{n}"].key == b"new%d" % n
        assert rows[f"new{n}"].creation_time == 10.0 + n
        assert rows[f"old{n}"].doc == b'{"n": %d}' % (100 + n)
        assert rows[f"old{n}"].key == b"moved%d" % n


async def test_writes_to_one_document_apply_in_order(store: Store) -> None:
    await put(store, "twice", 1)
    async with store.write(buffered=True, buffer_updates=True) as tx:
        await tx.update("items", "twice", b'{"n": 2}', keys(b"k2"))
        await tx.update("items", "twice", b'{"n": 3}', keys(b"k3"))
        await tx.insert("items", "brief", 1.0, b'{"n": 1}', keys(b"brief"))
        await tx.update("items", "brief", b'{"n": 9}', keys(b"brief9"))
        await tx.delete("items", "brief")
        await tx.commit_writes("{}")
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 10)}
    assert set(rows) == {"twice"}
    assert rows["twice"].doc == b'{"n": 3}' and rows["twice"].key == b"k3"


async def test_a_grouped_insert_that_collides_commits_nothing(store: Store) -> None:
    """One row of a multi-row INSERT is refused: none of the transaction is written."""
    from reactive_store.storage.store import StorageError

    await put(store, "taken", 1)
    with pytest.raises(StorageError):
        async with store.write(buffered=True, buffer_updates=True) as tx:
            await tx.insert("items", "fresh", 1.0, b'{"n": 1}', keys(b"fresh"))
            await tx.insert("items", "taken", 1.0, b'{"n": 2}', keys(b"taken2"))
            await tx.commit_writes("{}")
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 10)}
    assert set(rows) == {"taken"} and rows["taken"].doc == b'{"n": 1}'


def test_updates_by_ctid_reach_their_rows_by_tid_scans_alone() -> None:
    pending = PendingWrites()
    pending.update(T, "a", "{}", {K: b"1"}, tid="(3,7)")
    pending.update(T, "b", "{}", {K: b"2"}, tid="(4,1)")
    pending.update(T, "c", "{}", {K: b"3"})  # by id: its own statement
    sql = statements(pending)
    offs = [s for s in sql if s.startswith("SET LOCAL")]
    assert [s.split()[2] for s in offs] == list(TID_ONLY)
    assert all(s.endswith("= off") for s in offs)
    update = next(s for s in sql if "v.tid::tid" in s)
    assert "FROM (VALUES (E'(3,7)', E'a', " in update
    assert 'WHERE t.ctid = v.tid::tid AND t._id = v._id COLLATE "C"' in update
    assert sql.index(update) > sql.index(offs[-1])
    assert [s for s in sql if s.startswith("RESET")] == [f"RESET {n}" for n in TID_ONLY]
    pending.update(T, "a", "{}", {K: b"1"}, tid="(3,7)")
    pending.update(T, "a", "{}", {K: b"2"})  # written twice: one statement each, in order
    sql = statements(pending)
    assert sql == [f"UPDATE {T} SET doc = E'{{}}', {K} = E'\\\\x31'::bytea "
                   "WHERE ctid = E'(3,7)'::tid AND _id = E'a'",
                   f"UPDATE {T} SET doc = E'{{}}', {K} = E'\\\\x32'::bytea WHERE _id = E'a'"]


async def test_an_update_by_ctid_changes_that_row_version_only(store: Store) -> None:
    for n in range(3):
        await put(store, f"row{n}", n)
    async with store.write() as tx:
        tids = dict(await tx.fetch(f"SELECT _id, ctid::text FROM {store.names.table('items')}"))
    async with store.write(buffered=True, buffer_updates=True) as tx:
        await tx.update("items", "row0", b'{"n": 10}', keys(b"r0"), tid=tids["row0"])
        await tx.update("items", "row1", b'{"n": 11}', keys(b"r1"), tid=tids["row1"])
        # A ctid that no longer holds that document (or any): nothing is written.
        await tx.update("items", "row2", b'{"n": 12}', keys(b"r2"), tid=tids["row0"])
        await tx.commit_writes("{}")
    async with store.write() as tx:  # not buffered: the statement form with parameters
        await tx.update("items", "row2", b'{"n": 22}', keys(b"r22"), tid=tids["row2"])
        await tx.commit_writes("{}")
    async with store.read() as tx:
        rows = {r.id: r for r in await tx.scan("items", INDEX, b"", None, False, 10)}
    assert {i: (r.doc, r.key) for i, r in rows.items()} == {
        "row0": (b'{"n": 10}', b"r0"), "row1": (b'{"n": 11}', b"r1"),
        "row2": (b'{"n": 22}', b"r22")}
