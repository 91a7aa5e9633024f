"""The Postgres store of one deployment: pool, transactions, index scans, writes, commits.

The engine sees only `Store` and `Transaction`; asyncpg and SQL stay in this package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NamedTuple

import asyncpg

from reactive_store.errors import InternalError
from reactive_store.schema import BY_ID, Schema
from reactive_store.storage.ddl import PushReport, RowDecoder, push_schema
from reactive_store.storage.listener import Listener
from reactive_store.storage.names import Names
from reactive_store.storage.search import compact_stats
from reactive_store.storage.search_ddl import push_search_indexes

log = logging.getLogger(__name__)


class TransientConflict(Exception):
    """A serialization failure or deadlock: the whole transaction may be retried."""


class StorageError(InternalError):
    """The database failed in a way the client should not see the details of."""


class Row(NamedTuple):
    """A stored document: id, creation time, its fields as raw JSON, and the scanned key."""

    id: str
    creation_time: float
    doc: bytes
    key: bytes | None


# Retry on serialization failures, deadlocks and row-lock timeouts. Under SERIALIZABLE a
# transaction that waits for another's row lock nearly always fails once that one commits,
# so waiting buys nothing: sessions run with a short lock_timeout and retry instead (this
# also resolves deadlocks long before Postgres's deadlock_timeout, default 1 s, would).
_RETRYABLE = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
)
LOCK_TIMEOUT = "50ms"


def _jsonb_encode(data: bytes | str) -> bytes:
    return b"\x01" + (data.encode() if isinstance(data, str) else data)


def _jsonb_decode(data: bytes) -> bytes:
    return data[1:]


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: skip asyncpg's reset query, a round trip per transaction.

    Nothing here changes session state: no SET (lock_timeout is a connection setting),
    no LISTEN on pool connections, advisory locks are transaction-scoped, and a connection
    released mid-transaction is rolled back or terminated first (`_rollback`).
    """


def _json_encode(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _json_decode(data: bytes) -> bytes:
    return data


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Documents travel as raw JSON bytes both ways; the engine encodes and decodes them.
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "json", encoder=_json_encode, decoder=_json_decode, schema="pg_catalog",
        format="binary",
    )


def newest_commit_sql(names: Names) -> str:
    return f"SELECT coalesce(max(ts), 0) FROM {names.system('commits')}"


class Transaction:
    """One Postgres transaction. Calls are serialised, so a function may gather() them."""

    def __init__(self, conn: asyncpg.Connection, names: Names) -> None:
        self._conn = conn
        self._n = names
        self.names = names  # the deployment's SQL names (search modules find their tables)
        self._lock = asyncio.Lock()
        # Set on the first serialization failure or deadlock. Postgres has aborted the
        # transaction by then, so even if the function swallows the error, every later
        # call and the commit must report the conflict and let the engine retry.
        self.conflicted = False

    async def _run(self, op: Callable[[], Any]) -> Any:
        async with self._lock:
            if self.conflicted:
                raise TransientConflict("transaction already conflicted")
            try:
                return await op()
            except _RETRYABLE as exc:
                self.conflicted = True
                raise TransientConflict(str(exc)) from exc
            except asyncpg.PostgresError as exc:
                log.error("database error: %s", exc)
                raise StorageError("database error") from exc

    async def get(self, table: str, doc_id: str) -> Row | None:
        sql = f"SELECT _id, _creation_time, doc FROM {self._n.table(table)} WHERE _id = $1"
        rec = await self._run(lambda: self._conn.fetchrow(sql, doc_id))
        return None if rec is None else Row(rec[0], rec[1], rec[2], None)

    async def get_many(self, table: str, doc_ids: list[str]) -> list[Row]:
        """The rows with these ids that exist, in no particular order."""
        sql = (f"SELECT _id, _creation_time, doc FROM {self._n.table(table)} "
               "WHERE _id = ANY($1::text[])")
        recs = await self._run(lambda: self._conn.fetch(sql, doc_ids))
        return [Row(r[0], r[1], r[2], None) for r in recs]

    async def execute(self, sql: str, *args: Any) -> None:
        """One statement of another storage module (search, vectors), in this transaction."""
        await self._run(lambda: self._conn.execute(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows of one query of another storage module, in this transaction."""
        rows: list[Any] = await self._run(lambda: self._conn.fetch(sql, *args))
        return rows

    async def lock(self, table: str, doc_id: str) -> Row | None:
        """The row, locked FOR UPDATE until the end of the transaction; None when it is
        missing or another transaction holds it (SKIP LOCKED: workers never wait)."""
        sql = (f"SELECT _id, _creation_time, doc FROM {self._n.table(table)} WHERE _id = $1 "
               "FOR UPDATE SKIP LOCKED")
        rec = await self._run(lambda: self._conn.fetchrow(sql, doc_id))
        return None if rec is None else Row(rec[0], rec[1], rec[2], None)

    async def scan(
        self, table: str, index: str, lo: bytes, hi: bytes | None, desc: bool, limit: int
    ) -> list[Row]:
        """Rows whose `index` key k has lo <= k < hi, in key order (or reverse), at most limit."""
        col = self._n.key_column(index)
        where = f"{col} >= $1" + ("" if hi is None else f" AND {col} < $3")
        sql = (
            f"SELECT _id, _creation_time, doc, {col} FROM {self._n.table(table)} WHERE {where} "
            f"ORDER BY {col} {'DESC' if desc else 'ASC'} LIMIT $2"
        )
        args = (lo, limit) if hi is None else (lo, limit, hi)
        recs = await self._run(lambda: self._conn.fetch(sql, *args))
        return [Row(r[0], r[1], r[2], r[3]) for r in recs]

    async def insert(
        self, table: str, doc_id: str, creation_time: float, doc: bytes, keys: dict[str, bytes]
    ) -> None:
        cols = [self._n.key_column(i) for i in keys]
        params = ", ".join(f"${i + 4}" for i in range(len(keys)))
        sql = (
            f"INSERT INTO {self._n.table(table)} (_id, _creation_time, doc, {', '.join(cols)}) "
            f"VALUES ($1, $2, $3, {params})"
        )
        await self._run(lambda: self._conn.execute(sql, doc_id, creation_time, doc, *keys.values()))

    async def update(self, table: str, doc_id: str, doc: bytes, keys: dict[str, bytes]) -> None:
        sets = ", ".join(f"{self._n.key_column(i)} = ${n + 3}" for n, i in enumerate(keys))
        sql = f"UPDATE {self._n.table(table)} SET doc = $2, {sets} WHERE _id = $1"
        await self._run(lambda: self._conn.execute(sql, doc_id, doc, *keys.values()))

    async def delete(self, table: str, doc_id: str) -> None:
        sql = f"DELETE FROM {self._n.table(table)} WHERE _id = $1"
        await self._run(lambda: self._conn.execute(sql, doc_id))

    async def commit_writes(
        self, writes: str, request: tuple[str, int] | None = None, result: str | None = None
    ) -> int:
        """Take this transaction's commit timestamp and log its writes; COMMIT must follow.

        With `request` (client session id, request id), the result is recorded with the
        commit, so that a replay of the same request returns it instead of running again.
        """
        sql = f"SELECT {self._n.system('commit')}($1, $2, $3, $4)"
        session, request_id = request if request is not None else (None, None)
        ts: int = await self._run(
            lambda: self._conn.fetchval(sql, writes, session, request_id, result))
        return ts

    async def find_mutation(self, session: str, request_id: int) -> tuple[int, str] | None:
        """The commit timestamp and result of an already committed client request."""
        sql = (f"SELECT ts, result FROM {self._n.system('mutations')} "
               "WHERE session_id = $1 AND request_id = $2")
        rec = await self._run(lambda: self._conn.fetchrow(sql, session, request_id))
        return None if rec is None else (rec[0], rec[1])

    async def snapshot_ts(self) -> int:
        """The newest commit this transaction's snapshot includes (commits form a prefix)."""
        sql = newest_commit_sql(self._n)
        ts: int = await self._run(lambda: self._conn.fetchval(sql))
        return ts

    async def commits_between(self, after: int, upto: int) -> list[tuple[int, str]]:
        """The logged writes of commits with after < ts <= upto, in ts order."""
        sql = (
            f"SELECT ts, writes FROM {self._n.system('commits')} "
            "WHERE ts > $1 AND ts <= $2 ORDER BY ts"
        )
        recs = await self._run(lambda: self._conn.fetch(sql, after, upto))
        return [(r[0], r[1]) for r in recs]


class Store:
    """A deployment's data: one Postgres schema holding its tables and system tables.

    Built unconnected (the URL of an embedded server is known only once it runs);
    `connect()` opens the pool, `close()` closes it.
    """

    def __init__(self, namespace: str = "app") -> None:
        self.names = Names(namespace)
        self.url = ""
        self.table_numbers: dict[str, int] = {}
        self.table_names: dict[int, str] = {}
        self.transactions = 0  # transactions started through this store, for /api/_stats
        self._connected: asyncpg.Pool | None = None

    @classmethod
    async def open(
        cls, url: str, namespace: str = "app", *, min_size: int = 2, max_size: int = 10
    ) -> Store:
        store = cls(namespace)
        await store.connect(url, min_size=min_size, max_size=max_size)
        return store

    async def connect(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init_connection,
                reset=_keep_session,
                server_settings={"lock_timeout": LOCK_TIMEOUT},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot connect to the database: {exc}") from exc
        assert pool is not None
        self._connected, self.url = pool, url

    @property
    def _pool(self) -> asyncpg.Pool:
        if self._connected is None:
            raise StorageError("the store is not connected")
        return self._connected

    async def close(self) -> None:
        if self._connected is not None:
            await self._connected.close()
            self._connected = None

    async def push_schema(self, schema: Schema, decode_row: RowDecoder,
                          progress: Callable[[str], None] | None = None) -> PushReport:
        """Push `schema` (tables, indexes, search and vector indexes) in one transaction;
        `progress` hears about long backfills."""

        async def search_indexes(conn: asyncpg.Connection, report: PushReport) -> None:
            await push_search_indexes(conn, self.names, schema, decode_row, report, progress)

        async with self._pool.acquire() as conn:
            report = await push_schema(conn, self.names, schema, decode_row, search_indexes)
        self.table_numbers = dict(report.table_numbers)
        self.table_names = {n: t for t, n in self.table_numbers.items()}
        self.names.side_tables = dict(report.side_tables)
        return report

    @asynccontextmanager
    async def _transaction(self, **options: Any) -> AsyncIterator[Transaction]:
        self.transactions += 1
        async with self._pool.acquire() as conn:
            tx = conn.transaction(**options)
            await tx.start()
            transaction = Transaction(conn, self.names)
            try:
                yield transaction
                if transaction.conflicted:
                    raise TransientConflict("a statement of this transaction conflicted")
            except BaseException:
                await _rollback(conn, tx)
                if transaction.conflicted:
                    raise TransientConflict("a statement of this transaction conflicted") from None
                raise
            try:
                await tx.commit()
            except _RETRYABLE as exc:
                raise TransientConflict(str(exc)) from exc
            except asyncpg.PostgresError as exc:
                raise StorageError(f"commit failed: {exc}") from exc

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """A REPEATABLE READ, READ ONLY transaction: one snapshot for everything it reads."""
        return self._transaction(isolation="repeatable_read", readonly=True)

    def write(self) -> AbstractAsyncContextManager[Transaction]:
        """A SERIALIZABLE transaction; TransientConflict means: run the whole thing again."""
        return self._transaction(isolation="serializable")

    async def latest_ts(self) -> int:
        """The newest commit now, outside any transaction (`Transaction.snapshot_ts` is the
        newest one a transaction's snapshot includes)."""
        ts: int = await self._pool.fetchval(newest_commit_sql(self.names))
        return ts

    def listener(self, on_payload: Callable[[str], None],
                 on_connected: Callable[[], Awaitable[None]]) -> Listener:
        """A LISTEN connection on this deployment's commit channel (start() it)."""
        return Listener(self.url, self.names.channel, on_payload, on_connected)

    async def commits_after(self, ts: int, limit: int = 10_000) -> list[tuple[int, str]]:
        """Logged commits with a timestamp above `ts`, oldest first."""
        sql = (f"SELECT ts, writes FROM {self.names.system('commits')} WHERE ts > $1 "
               "ORDER BY ts LIMIT $2")
        return [(r[0], r[1]) for r in await self._pool.fetch(sql, ts, limit)]

    async def commit_at(self, ts: int) -> str | None:
        sql = f"SELECT writes FROM {self.names.system('commits')} WHERE ts = $1"
        writes: str | None = await self._pool.fetchval(sql, ts)
        return writes

    async def prune(self, commits_older_than_s: float, mutations_older_than_s: float) -> None:
        """Forget old commit-log and request-dedupe rows (the newest commit always stays)."""
        n = self.names
        await self._pool.execute(
            f"DELETE FROM {n.system('commits')} WHERE committed_at < now() - make_interval("
            f"secs => $1) AND ts < (SELECT max(ts) FROM {n.system('commits')})",
            commits_older_than_s)
        await self._pool.execute(
            f"DELETE FROM {n.system('mutations')} WHERE committed_at < now() - make_interval("
            "secs => $1)", mutations_older_than_s)

    async def compact_search_stats(self) -> None:
        """Fold each search index's statistics deltas (a row per write) into a row per
        filter values, so a search sums few rows (`storage/search.py`)."""
        for side in list(self.names.side_tables.values()):
            if side.kind == "search":
                await compact_stats(self._pool, side)

    async def drop(self) -> None:
        """Drop the whole deployment schema (tests and `reset` only)."""
        await self._pool.execute(f"DROP SCHEMA IF EXISTS {self.names.schema} CASCADE")

    @property
    def id_index(self) -> str:
        return BY_ID


async def _rollback(conn: asyncpg.Connection, tx: Any) -> None:
    # After a cancelled query the connection can be mid-protocol; if ROLLBACK cannot run
    # promptly, drop the connection (the server rolls back) and let the pool replace it.
    try:
        await asyncio.wait_for(tx.rollback(), timeout=5)
    except Exception:
        conn.terminate()
