"""Issue 12 items 5 and 6, storage side: request records carry a call hash, a reused session
id replaces its old record, old deployments are migrated, and pruning bounds the tables."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.schema import Schema
from reactive_store.storage import maintenance
from reactive_store.storage.ddl import system_ddl
from reactive_store.storage.store import RecordedRequest, Store, request_hash
from tests.support import new_namespace


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, new_namespace(), min_size=1, max_size=2)
    await store.push_schema(Schema({}), document_from_row)
    yield store
    await store.drop()
    await store.close()


async def record(store: Store, session: str, request_id: int, result: str,
                 digest: str | None) -> tuple[int, int]:
    """Commit a request record; return its commit's timestamp and transaction id."""
    async with store.write() as tx:
        xid = await tx.commit_writes("{}", (session, request_id), result, digest)
    return await store.commit_ts(xid), xid


async def find(store: Store, session: str, request_id: int) -> RecordedRequest | None:
    async with store.read() as tx:
        return await tx.find_request(session, request_id)


def test_request_hash_binds_identity_path_and_args() -> None:
    base = request_hash("notes:add", {"body": "x", "list": "a"}, {"subject": "u1"})
    assert base == request_hash("notes:add", {"list": "a", "body": "x"}, {"subject": "u1"})
    assert len({base,
                request_hash("notes:remove", {"body": "x", "list": "a"}, {"subject": "u1"}),
                request_hash("notes:add", {"body": "y", "list": "a"}, {"subject": "u1"}),
                request_hash("notes:add", {"body": "x", "list": "a"}, {"subject": "u2"}),
                request_hash("notes:add", {"body": "x", "list": "a"}, None)}) == 5


async def test_recorded_request_carries_its_hash(store: Store) -> None:
    digest = request_hash("notes:add", {"body": "x"}, None)
    ts, xid = await record(store, "s1", 0, '"r1"', digest)
    assert await find(store, "s1", 0) == RecordedRequest(ts, xid, '"r1"', digest)
    assert await find(store, "s1", 1) is None


async def test_a_reused_session_id_replaces_the_old_record(store: Store) -> None:
    """A fresh session (connectionCount 0) reusing an id: no duplicate-key failure."""
    await record(store, "s1", 0, '"first"', "h1")
    ts, xid = await record(store, "s1", 0, '"second"', "h2")
    assert await find(store, "s1", 0) == RecordedRequest(ts, xid, '"second"', "h2")


async def test_old_deployment_is_migrated(database_url: str) -> None:
    """A deployment created before request hashes: column added, old function replaced, and
    a caller of the 4-argument function (a server not yet upgraded) still commits."""
    namespace = new_namespace()
    store = await Store.open(database_url, namespace, min_size=1, max_size=1)
    try:
        async with store.write() as tx:
            conn = tx._conn
            schema = store.names.schema
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(
                f"CREATE TABLE {store.names.system('mutations')} (session_id text NOT NULL, "
                "request_id bigint NOT NULL, ts bigint NOT NULL, result text NOT NULL, "
                "committed_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (session_id, request_id))")
            await conn.execute(
                f"INSERT INTO {store.names.system('mutations')} VALUES ('old', 0, 1, '\"r\"')")
            await conn.execute(
                f"CREATE FUNCTION {store.names.system('commit')}(writes text, session_id text "
                "DEFAULT NULL, request_id bigint DEFAULT NULL, result text DEFAULT NULL) "
                "RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'")
        await store.push_schema(Schema({}), document_from_row)
        assert await find(store, "old", 0) == RecordedRequest(1, None, '"r"', None)
        async with store.write() as tx:
            ts = await tx._conn.fetchval(
                f"SELECT {store.names.system('commit')}($1, $2, $3, $4)", "{}", "s", 5, '"x"')
        assert ts > 0
        assert await find(store, "s", 5) == RecordedRequest(ts, None, '"x"', None)
    finally:
        await store.drop()
        await store.close()


async def test_prune_bounds_the_internal_tables(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 3)  # several batches
    for i in range(8):
        await record(store, "s", i, "null", None)
    newest = await store.latest_ts()
    kept = await store.prune(3600, 3600)
    assert (kept.commits, kept.mutations) == (0, 0)
    report = await store.prune(0, 0)
    assert (report.commits, report.mutations) == (7, 8)
    assert await store.latest_ts() == newest  # the newest commit always stays
    assert await store.commits_after(0) == [(newest, "{}")]
    assert await find(store, "s", 7) is None


async def test_a_request_keeps_its_timestamp_when_its_commit_is_pruned(store: Store) -> None:
    first = await record(store, "s", 0, '"a"', None)
    await record(store, "s", 1, '"b"', None)
    report = await store.prune(0, 3600)
    assert report.commits == 1 and report.mutations == 0
    assert await find(store, "s", 0) == RecordedRequest(*first, '"a"', None)


async def test_a_push_takes_no_lock_on_the_commit_log(store: Store) -> None:
    """Every process pushes its schema at start (and `dev` on every reload), in one
    transaction: the commit log's migration must not lock out commits meanwhile."""
    log_tables = (store.names.system("commits"), store.names.system("mutations"))
    async with store.write() as tx:
        for statement in system_ddl(store.names):
            await tx.execute(statement)
        held = await tx.fetch(
            "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = ANY("
            "ARRAY[$1::regclass, $2::regclass]) AND mode <> 'AccessShareLock'", *log_tables)
        assert held == []


async def test_a_commit_log_keyed_by_timestamp_is_migrated(database_url: str) -> None:
    """A deployment from before timestamps were given after COMMIT keeps its commits, and
    its timestamps go on from the newest one."""
    store = await Store.open(database_url, new_namespace(), min_size=1, max_size=1)
    try:
        async with store.write() as tx:
            await tx.execute(f"CREATE SCHEMA {store.names.schema}")
            await tx.execute(
                f"CREATE TABLE {store.names.system('commits')} (ts bigint PRIMARY KEY, "
                "writes text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now())")
            await tx.execute(f"INSERT INTO {store.names.system('commits')} (ts, writes) "
                             f"VALUES ({2**62}, '{{}}')")
            await tx.execute(f"CREATE SEQUENCE {store.names.system('ts_seq')}")
            await tx.execute(f"SELECT setval('{store.names.system('ts_seq')}', {2**62})")
        await store.push_schema(Schema({}), document_from_row)
        assert await store.commits_after(0) == [(2**62, "{}")]
        ts, _ = await record(store, "s", 0, '"r"', None)
        assert ts > 2**62 and await store.latest_ts() == ts
    finally:
        await store.drop()
        await store.close()
