"""The Postgres store of one deployment: pool, transactions, index scans, writes, commits.

The engine sees only `Store` and `Transaction`; asyncpg and SQL stay in this package, and so
do the driver's errors: whatever goes wrong reaches the engine as `TransientConflict` (retry
the transaction), `DatabaseUnavailable` (nothing was committed; retry once the database is
back), `CommitOutcomeUnknown` (the connection died after COMMIT was sent) or `StorageError`,
each with a message that names neither the database nor the driver. Details go to the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import asyncpg
import orjson

from reactive_store.errors import InternalError
from reactive_store.schema import BY_ID, Schema
from reactive_store.storage.connections import (
    CONNECT_TIMEOUT,
    DRIVER,
    FAILURES,
    Throttle,
    application_name,
    closed,
    discard,
    init_connection,
    keep_session,
    lost,
    rollback,
)
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

    code = "StorageError"
    retryable = False
    client_safe = False  # True: `message` may be shown to clients as it is

    def __init__(self, message: str = "database error") -> None:
        super().__init__(message)


class DatabaseUnavailable(StorageError):
    """No connection to the database, or it was lost before COMMIT was sent.

    Postgres rolls back a transaction whose connection ends before COMMIT, so nothing of it
    was committed: the caller may run it again once the database is back (`retryable`).
    """

    code = "DatabaseUnavailable"
    retryable = True
    client_safe = True
    MESSAGE = "the database is unavailable; nothing was committed, try again shortly"

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


class CommitOutcomeUnknown(StorageError):
    """The connection was lost after COMMIT was sent: the writes may or may not be committed.

    Never retried blindly: a client request carries its (session, request id), so asking
    again after a reconnect replays the recorded result if the commit did happen.
    """

    code = "CommitOutcomeUnknown"
    client_safe = True
    MESSAGE = ("lost contact with the database while committing; the mutation may or may "
               "not have been applied")

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


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
PRUNE_BATCH = 10_000  # rows deleted per statement when pruning
T = TypeVar("T")

def request_hash(path: str, args: Any, identity: Any) -> str:
    """A digest of who called which function with which (Convex-encoded JSON) arguments.

    Recorded with a client request's result (`commit_writes`), so that a replay of the same
    (session id, request id) can be checked to be the same call (`find_request`).
    """
    payload = orjson.dumps([path, args, identity], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


class RecordedRequest(NamedTuple):
    """A committed client request: commit timestamp, encoded result, hash of the call."""

    ts: int
    result: str
    request_hash: str | None  # None for rows recorded before hashes were kept


@dataclass
class PruneReport:
    """How many rows one `Store.prune` deleted from each internal table."""

    commits: int = 0
    mutations: int = 0


def newest_commit_sql(names: Names) -> str:
    return f"SELECT coalesce(max(ts), 0) FROM {names.system('commits')}"


class Transaction:
    """One Postgres transaction. Calls are serialised, so a function may gather() them."""

    def __init__(self, conn: asyncpg.Connection, names: Names,
                 throttle: Throttle | None = None) -> None:
        self._conn = conn
        self._n = names
        self.names = names  # the deployment's SQL names (search modules find their tables)
        self._unavailable = throttle or Throttle()
        self._lock = asyncio.Lock()
        # Set on the first serialization failure or deadlock. Postgres has aborted the
        # transaction by then, so even if the function swallows the error, every later
        # call and the commit must report the conflict and let the engine retry.
        self.conflicted = False
        # Set when the connection died under a statement: the rest of the transaction fails
        # fast with DatabaseUnavailable and the connection is dropped, not rolled back.
        self.broken = False
        self.wrote = False  # a write was sent: a lost COMMIT has an unknown outcome

    async def _run(self, op: Callable[[], Any]) -> Any:
        async with self._lock:
            if self.conflicted:
                raise TransientConflict("transaction already conflicted")
            if self.broken:
                raise DatabaseUnavailable()
            try:
                return await op()
            except _RETRYABLE as exc:
                self.conflicted = True
                raise TransientConflict(str(exc)) from exc
            except FAILURES as exc:
                if lost(exc, self._conn):
                    self.broken = True
                    self._unavailable.warn("database connection lost in a transaction: %r", exc)
                    raise DatabaseUnavailable() from exc
                log.error("database error: %r", exc)
                raise StorageError() from exc

    async def _write(self, op: Callable[[], Any]) -> Any:
        self.wrote = True
        return await self._run(op)

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

    async def count(self, table: str, limit: int) -> int:
        """How many documents `table` holds, counting at most `limit` (the dashboard's
        figure; bounded so a huge table does not cost a full scan)."""
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {self._n.table(table)} LIMIT $1) AS t"
        found: int = await self._run(lambda: self._conn.fetchval(sql, limit))
        return found

    async def insert(
        self, table: str, doc_id: str, creation_time: float, doc: bytes, keys: dict[str, bytes]
    ) -> None:
        cols = [self._n.key_column(i) for i in keys]
        params = ", ".join(f"${i + 4}" for i in range(len(keys)))
        sql = (
            f"INSERT INTO {self._n.table(table)} (_id, _creation_time, doc, {', '.join(cols)}) "
            f"VALUES ($1, $2, $3, {params})"
        )
        await self._write(
            lambda: self._conn.execute(sql, doc_id, creation_time, doc, *keys.values()))

    async def update(self, table: str, doc_id: str, doc: bytes, keys: dict[str, bytes]) -> None:
        sets = ", ".join(f"{self._n.key_column(i)} = ${n + 3}" for n, i in enumerate(keys))
        sql = f"UPDATE {self._n.table(table)} SET doc = $2, {sets} WHERE _id = $1"
        await self._write(lambda: self._conn.execute(sql, doc_id, doc, *keys.values()))

    async def delete(self, table: str, doc_id: str) -> None:
        sql = f"DELETE FROM {self._n.table(table)} WHERE _id = $1"
        await self._write(lambda: self._conn.execute(sql, doc_id))

    async def commit_writes(
        self, writes: str, request: tuple[str, int] | None = None, result: str | None = None,
        request_hash: str | None = None,
    ) -> int:
        """Take this transaction's commit timestamp and log its writes; COMMIT must follow.

        With `request` (client session id, request id), the result is recorded with the
        commit, with `request_hash` (see `request_hash()`) naming the call it answers, so a
        replay of the same request returns it instead of running again. A record left by an
        earlier session that used the same id is replaced.
        """
        sql = f"SELECT {self._n.system('commit')}($1, $2, $3, $4, $5)"
        session, request_id = request if request is not None else (None, None)
        ts: int = await self._write(
            lambda: self._conn.fetchval(sql, writes, session, request_id, result, request_hash))
        return ts

    async def find_mutation(self, session: str, request_id: int) -> tuple[int, str] | None:
        """The commit timestamp and result of an already committed client request."""
        found = await self.find_request(session, request_id)
        return None if found is None else (found.ts, found.result)

    async def find_request(self, session: str, request_id: int) -> RecordedRequest | None:
        """An already committed client request: its timestamp, result and call hash."""
        sql = (f"SELECT ts, result, request_hash FROM {self._n.system('mutations')} "
               "WHERE session_id = $1 AND request_id = $2")
        rec = await self._run(lambda: self._conn.fetchrow(sql, session, request_id))
        return None if rec is None else RecordedRequest(rec[0], rec[1], rec[2])

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

    Connection handling: a pooled connection that died while idle (its backend terminated,
    the database restarted) is noticed when a transaction begins on it, dropped, and the
    next one is tried, so callers never see it. A connection lost inside a transaction is
    dropped (never rolled back, never handed out again) and reported as DatabaseUnavailable,
    or as CommitOutcomeUnknown when COMMIT was already sent after writes.
    """

    def __init__(self, namespace: str = "app") -> None:
        self.names = Names(namespace)
        self.url = ""
        self.table_numbers: dict[str, int] = {}
        self.table_names: dict[int, str] = {}
        self.transactions = 0  # transactions started through this store, for /api/_stats
        self._unavailable = Throttle()
        self._connected: asyncpg.Pool | None = None
        self._attempts = 1

    @classmethod
    async def open(
        cls, url: str, namespace: str = "app", *, min_size: int = 2, max_size: int = 10
    ) -> Store:
        store = cls(namespace)
        await store.connect(url, min_size=min_size, max_size=max_size)
        return store

    async def connect(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        """Open the pool (built unconnected: an embedded server's URL is known only once it
        runs)."""
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=init_connection,
                reset=keep_session, timeout=CONNECT_TIMEOUT,
                server_settings={"lock_timeout": LOCK_TIMEOUT,
                                 "application_name": application_name(self.names.namespace)},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError(f"cannot connect to the database: {exc}") from exc
        assert pool is not None
        self._connected, self.url = pool, url
        # Every pooled connection may be dead at once (all backends terminated): try each.
        self._attempts = pool.get_max_size() + 1

    @property
    def _pool(self) -> asyncpg.Pool:
        if self._connected is None:
            raise StorageError("the store is not connected")
        return self._connected

    async def close(self) -> None:
        if self._connected is not None:
            await self._connected.close()
            self._connected = None

    def pool_figures(self) -> dict[str, int]:
        """Connections open, idle and allowed (empty when not connected), for metrics."""
        pool = self._connected
        if pool is None:
            return {}
        return {"pool_size": pool.get_size(), "pool_idle": pool.get_idle_size(),
                "pool_max": pool.get_max_size()}

    async def push_schema(self, schema: Schema, decode_row: RowDecoder,
                          progress: Callable[[str], None] | None = None) -> PushReport:
        """Push `schema` (tables, indexes, search and vector indexes) in one transaction;
        `progress` hears about long backfills."""

        async def search_indexes(conn: asyncpg.Connection, report: PushReport) -> None:
            await push_search_indexes(conn, self.names, schema, decode_row, report, progress)

        conn = await self._acquire()
        try:
            report = await push_schema(conn, self.names, schema, decode_row, search_indexes)
        finally:
            await self._release(conn)
        self.table_numbers = dict(report.table_numbers)
        self.table_names = {n: t for t, n in self.table_numbers.items()}
        self.names.side_tables = dict(report.side_tables)
        return report

    # -- connections ----------------------------------------------------------------------
    async def _acquire(self) -> Any:
        try:
            return await self._pool.acquire()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, 55000 not accepting connections, 57P03, 53300...
            self._unavailable.warn("cannot connect to the database: %r", exc)
            raise DatabaseUnavailable() from exc

    async def _release(self, conn: Any) -> None:
        try:
            await self._pool.release(conn)
        except Exception as exc:  # the pool has dropped the connection by then
            log.debug("releasing a database connection failed: %r", exc)

    async def _begin(self, options: dict[str, Any]) -> tuple[Any, Any]:
        """A pooled connection with a transaction started on it; dead ones are skipped.

        BEGIN on a connection whose backend is gone fails (closed socket, or the driver
        still digesting the server's FATAL: "another operation is in progress") before
        anything of ours ran, so the next connection can be tried safely.
        """
        last: BaseException | None = None
        for _ in range(self._attempts):
            conn = await self._acquire()
            tx = conn.transaction(**options)
            try:
                await tx.start()
            except BaseException as exc:
                gone = isinstance(exc, Exception) and lost(exc, conn)
                discard(conn)
                await self._release(conn)
                if gone:
                    last = exc
                    continue
                if isinstance(exc, DRIVER):
                    log.error("cannot begin a transaction: %r", exc)
                    raise StorageError() from exc
                raise
            return conn, tx
        self._unavailable.warn("database connections keep failing: %r", last)
        raise DatabaseUnavailable() from last

    async def _pooled(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run one idempotent statement outside a transaction, on a live connection."""
        last: BaseException | None = None
        for _ in range(self._attempts):
            conn = await self._acquire()
            try:
                return await op(conn)
            except _RETRYABLE as exc:
                raise TransientConflict(str(exc)) from exc
            except FAILURES as exc:
                if not lost(exc, conn):
                    log.error("database error: %r", exc)
                    raise StorageError() from exc
                discard(conn)
                last = exc
            finally:
                await self._release(conn)
        self._unavailable.warn("database connections keep failing: %r", last)
        raise DatabaseUnavailable() from last

    # -- transactions -----------------------------------------------------------------------
    @asynccontextmanager
    async def _transaction(self, **options: Any) -> AsyncIterator[Transaction]:
        self.transactions += 1
        conn, tx = await self._begin(options)
        transaction = Transaction(conn, self.names, self._unavailable)
        try:
            try:
                yield transaction
                if transaction.conflicted:
                    raise TransientConflict("a statement of this transaction conflicted")
            except BaseException:
                await rollback(conn, tx, transaction.broken)
                if transaction.conflicted:
                    raise TransientConflict("a statement of this transaction conflicted") from None
                raise
            await _commit(conn, tx, transaction, self._unavailable)
        finally:
            await self._release(conn)

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """A REPEATABLE READ, READ ONLY transaction: one snapshot for everything it reads."""
        return self._transaction(isolation="repeatable_read", readonly=True)

    def write(self) -> AbstractAsyncContextManager[Transaction]:
        """A SERIALIZABLE transaction; TransientConflict means: run the whole thing again."""
        return self._transaction(isolation="serializable")

    # -- single statements ------------------------------------------------------------------
    async def latest_ts(self) -> int:
        """The newest commit now, outside any transaction (`Transaction.snapshot_ts` is the
        newest one a transaction's snapshot includes)."""
        sql = newest_commit_sql(self.names)
        ts: int = await self._pooled(lambda conn: conn.fetchval(sql))
        return ts

    def listener(self, on_payload: Callable[[str], None],
                 on_connected: Callable[[], Awaitable[None]]) -> Listener:
        """A LISTEN connection on this deployment's commit channel (start() it)."""
        return Listener(self.url, self.names.channel, on_payload, on_connected,
                        application_name=application_name(self.names.namespace, "listener"))

    async def commits_after(self, ts: int, limit: int = 10_000) -> list[tuple[int, str]]:
        """Logged commits with a timestamp above `ts`, oldest first."""
        sql = (f"SELECT ts, writes FROM {self.names.system('commits')} WHERE ts > $1 "
               "ORDER BY ts LIMIT $2")
        rows = await self._pooled(lambda conn: conn.fetch(sql, ts, limit))
        return [(r[0], r[1]) for r in rows]

    async def commit_at(self, ts: int) -> str | None:
        sql = f"SELECT writes FROM {self.names.system('commits')} WHERE ts = $1"
        writes: str | None = await self._pooled(lambda conn: conn.fetchval(sql, ts))
        return writes

    async def prune(self, commits_older_than_s: float, mutations_older_than_s: float
                    ) -> PruneReport:
        """Forget old commit-log and request-dedupe rows (the newest commit always stays).

        The commit log backs `query_at_ts` and listener catch-up; request records back the
        replay of a client's mutations after it reconnects. Rows go in batches of
        PRUNE_BATCH, oldest first, so a large backlog never makes one huge transaction.
        """
        n = self.names
        commits = n.system("commits")
        mutations = n.system("mutations")
        report = PruneReport()
        report.commits = await self._delete_batches(
            f"DELETE FROM {commits} WHERE ts IN (SELECT ts FROM {commits} WHERE committed_at < "
            f"now() - make_interval(secs => $1) AND ts < (SELECT max(ts) FROM {commits}) "
            f"ORDER BY ts LIMIT {PRUNE_BATCH})", commits_older_than_s)
        report.mutations = await self._delete_batches(
            f"DELETE FROM {mutations} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {mutations} "
            f"WHERE committed_at < now() - make_interval(secs => $1) LIMIT {PRUNE_BATCH}))",
            mutations_older_than_s)
        return report

    async def _delete_batches(self, sql: str, *args: Any) -> int:
        total = 0
        while True:
            status: str = await self._pooled(lambda conn: conn.execute(sql, *args))
            deleted = int(status.rsplit(" ", 1)[-1])
            total += deleted
            if deleted < PRUNE_BATCH:
                return total

    async def compact_search_stats(self) -> None:
        """Fold each search index's statistics deltas (a row per write) into a row per
        filter values, so a search sums few rows (`storage/search.py`)."""
        for side in list(self.names.side_tables.values()):
            if side.kind == "search":
                await compact_stats(self._pool, side)

    async def drop(self) -> None:
        """Drop the whole deployment schema (tests and `reset` only)."""
        sql = f"DROP SCHEMA IF EXISTS {self.names.schema} CASCADE"
        await self._pooled(lambda conn: conn.execute(sql))

    @property
    def id_index(self) -> str:
        return BY_ID


async def _commit(conn: Any, tx: Any, transaction: Transaction, throttle: Throttle) -> None:
    """COMMIT, classifying failures: conflict, nothing committed, or outcome unknown."""
    if transaction.broken or closed(conn):
        discard(conn)  # COMMIT was never sent; the server rolled back
        raise DatabaseUnavailable()
    try:
        await tx.commit()
    except _RETRYABLE as exc:
        raise TransientConflict(str(exc)) from exc
    except FAILURES as exc:
        if not lost(exc, conn):
            log.error("commit refused: %r", exc)  # the server said no: nothing committed
            raise StorageError() from exc
        discard(conn)
        if transaction.wrote:
            log.error("database connection lost during COMMIT; outcome unknown: %r", exc)
            raise CommitOutcomeUnknown() from exc
        throttle.warn("database connection lost during a read-only COMMIT: %r", exc)
        raise DatabaseUnavailable() from exc
    except BaseException:
        discard(conn)  # cancelled mid-COMMIT: the connection's state is unknown
        raise
