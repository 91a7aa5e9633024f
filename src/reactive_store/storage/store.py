"""The Postgres store of one deployment: pool, transactions, index scans, writes, commits.

The engine sees only `Store` and `Transaction`; asyncpg and SQL stay in this package, and so
do the driver's errors: whatever goes wrong reaches the engine as `TransientConflict` (retry
the transaction), `DatabaseUnavailable` (nothing was committed; retry once the database is
back), `CommitOutcomeUnknown` (the connection died after COMMIT was sent) or `StorageError`,
each with a message that names neither the database nor the driver. Details go to the log.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from reactive_store.schema import BY_ID, Schema
from reactive_store.storage.committing import commit, resolve_lost_commit
from reactive_store.storage.connections import (
    CONNECT_TIMEOUT,
    DRIVER,
    FAILURES,
    PlainTransaction,
    Throttle,
    application_name,
    discard,
    init_connection,
    lost,
    rollback,
)
from reactive_store.storage.ddl import PushReport, RowDecoder, push_schema
from reactive_store.storage.history import history_ddl
from reactive_store.storage.listener import Listener
from reactive_store.storage.maintenance import Maintenance
from reactive_store.storage.names import Names
from reactive_store.storage.pool import ConnectionPool
from reactive_store.storage.search_ddl import push_search_indexes
from reactive_store.storage.sequencer import CommitKey, Sequencer, SequencingFailed
from reactive_store.storage.transaction import (
    LOCK_TIMEOUT,
    RETRYABLE,
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    PruneReport,
    RecordedRequest,
    Row,
    Snapshot,
    StorageError,
    Transaction,
    TransientConflict,
    newest_commit_sql,
    request_hash,
    snapshot_of,
)

__all__ = ["CommitOutcomeUnknown", "DatabaseUnavailable", "PruneReport", "RecordedRequest", "Row",
           "SequencingFailed", "Snapshot", "StorageError", "Store", "Transaction",
           "TransientConflict", "request_hash"]

log = logging.getLogger(__name__)

TIMESTAMP_UNKNOWN = ("the mutation was committed, but the database could not be reached to "
                     "read its commit timestamp")
T = TypeVar("T")


class Store(Maintenance):
    """A deployment's data: one Postgres schema holding its tables and system tables.

    Connection handling: a pooled connection that died while idle (its backend terminated,
    the database restarted) is noticed when a transaction begins on it, dropped, and the
    next one is tried, so callers never see it. A connection lost inside a transaction is
    dropped (never rolled back, never handed out again) and reported as DatabaseUnavailable,
    or as CommitOutcomeUnknown when COMMIT was already sent after writes.

    Commit-log reads, history and pruning come from `Maintenance` (storage/maintenance.py).
    """

    def __init__(self, namespace: str = "app") -> None:
        self.names = Names(namespace)
        self.url = ""
        self.table_numbers: dict[str, int] = {}
        self.table_names: dict[int, str] = {}
        self.transactions = 0  # transactions started through this store, for /api/_stats
        self._unavailable = Throttle()
        self._connected: ConnectionPool | None = None
        self._attempts = 1
        # Gives committed transactions their timestamps, coalescing this process's calls.
        self.sequencer = Sequencer(self._sequence)
        self._ending: set[asyncio.Task[None]] = set()  # read-only COMMITs under way
        self._resolve = functools.partial(resolve_lost_commit, self._pooled, self.names)

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
        settings = {"lock_timeout": LOCK_TIMEOUT,
                    "application_name": application_name(self.names.namespace)}

        async def open_connection() -> asyncpg.Connection:
            conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT,
                                         server_settings=settings)
            try:
                await init_connection(conn)
            except BaseException:
                conn.terminate()
                raise
            return conn

        pool = ConnectionPool(open_connection, min_size=min_size, max_size=max_size)
        try:
            await pool.start()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError(f"cannot connect to the database: {exc}") from exc
        self._connected, self.url = pool, url
        # Every pooled connection may be dead at once (all backends terminated): try each.
        self._attempts = max_size + 1

    @property
    def _pool(self) -> ConnectionPool:
        if self._connected is None:
            raise StorageError("the store is not connected")
        return self._connected

    async def close(self) -> None:
        await asyncio.gather(*self._ending, return_exceptions=True)
        await self.sequencer.close()
        self.sequencer = Sequencer(self._sequence)
        if self._connected is not None:
            await self._connected.close()
            self._connected = None

    def pool_figures(self) -> dict[str, int]:
        """Connections open, idle and allowed (empty when not connected), for metrics."""
        pool = self._connected
        if pool is None:
            return {}
        return {"pool_size": pool.size, "pool_idle": pool.idle, "pool_max": pool.max_size}

    async def push_schema(self, schema: Schema, decode_row: RowDecoder,
                          progress: Callable[[str], None] | None = None,
                          preferred_numbers: Mapping[str, int] | None = None) -> PushReport:
        """Push `schema` (tables, indexes, search and vector indexes) in one transaction;
        `progress` hears about long backfills; new tables named in `preferred_numbers` get
        that number when it is free."""

        async def history_and_search(conn: asyncpg.Connection, report: PushReport) -> None:
            for statement in history_ddl(self.names):
                await conn.execute(statement)
            await push_search_indexes(conn, self.names, schema, decode_row, report, progress)

        conn = await self._acquire()
        try:
            report = await push_schema(conn, self.names, schema, decode_row,
                                     history_and_search, preferred_numbers)
        finally:
            self._pool.release(conn)
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

    async def _begin(self, options: dict[str, Any], with_snapshot: bool = False
                     ) -> tuple[Any, Any, Snapshot | None]:
        """A pooled connection with a transaction started on it; dead ones are skipped.
        With `with_snapshot`, BEGIN's message takes the transaction's snapshot too, and it is
        returned (None when the server did not send it back: `Transaction.snapshot` asks).

        BEGIN on a connection whose backend is gone fails (closed socket, or the driver
        still digesting the server's FATAL: "another operation is in progress") before
        anything of ours ran, so the next connection can be tried safely.
        """
        last: BaseException | None = None
        for _ in range(self._attempts):
            conn = await self._acquire()
            tx = PlainTransaction(conn, **options)
            snapshot = None
            try:
                if with_snapshot:
                    heard = await tx.start_hearing(
                        f"SELECT {self.names.system('snapshot_notice')}()")
                    snapshot = snapshot_of(heard)
                else:
                    await tx.start()
            except BaseException as exc:
                gone = isinstance(exc, Exception) and lost(exc, conn)
                discard(conn)
                self._pool.release(conn)
                if gone:
                    last = exc
                    continue
                if isinstance(exc, DRIVER):
                    log.error("cannot begin a transaction: %r", exc)
                    raise StorageError() from exc
                raise
            return conn, tx, snapshot
        self._unavailable.warn("database connections keep failing: %r", last)
        raise DatabaseUnavailable() from last

    async def _pooled(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run one idempotent statement outside a transaction, on a live connection."""
        last: BaseException | None = None
        for _ in range(self._attempts):
            conn = await self._acquire()
            try:
                return await op(conn)
            except RETRYABLE as exc:
                raise TransientConflict(str(exc)) from exc
            except FAILURES as exc:
                if not lost(exc, conn):
                    log.error("database error: %r", exc)
                    raise StorageError() from exc
                discard(conn)
                last = exc
            except asyncio.CancelledError:
                discard(conn)  # cancelled mid-statement: the connection's state is unknown
                raise
            finally:
                self._pool.release(conn)
        self._unavailable.warn("database connections keep failing: %r", last)
        raise DatabaseUnavailable() from last

    # -- transactions -----------------------------------------------------------------------
    @asynccontextmanager
    async def _transaction(self, buffer_updates: bool = False, snapshot: bool = False,
                           **options: Any) -> AsyncIterator[Transaction]:
        self.transactions += 1
        conn, tx, taken = await self._begin(options, snapshot)
        transaction = Transaction(conn, self.names, self._unavailable, tx, buffer_updates,
                                  taken)
        handed_off = False
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
            if options.get("readonly"):
                # What a read-only transaction read is settled by its snapshot; COMMIT only
                # ends it, so the caller does not wait for that round trip.
                task = asyncio.create_task(self._end_read(conn, tx, transaction))
                self._ending.add(task)
                task.add_done_callback(self._ending.discard)
                handed_off = True
                return
            await self._commit(conn, tx, transaction)
        finally:
            if not handed_off:
                self._pool.release(conn)

    async def _commit(self, conn: Any, tx: Any, transaction: Transaction) -> None:
        """COMMIT a write; one whose caller waits on the commit stream for its timestamp is
        sequenced in COMMIT's message when this process sequences nothing else, else by the
        next batched call (`Sequencer.carry`)."""
        if not transaction.sequence_soon:
            await commit(conn, tx, transaction, self._unavailable, self._resolve)
            return
        sequencer = self.sequencer  # `close` replaces it: the count stays with this one
        transaction.sequence_after = sequencer.carry()
        try:
            await commit(conn, tx, transaction, self._unavailable, self._resolve)
        finally:
            if transaction.sequence_after:
                sequencer.carried()
        if not transaction.sequence_after:
            self.sequencer.nudge(prompt=True)

    async def _end_read(self, conn: Any, tx: Any, transaction: Transaction) -> None:
        """COMMIT a finished read-only transaction, then hand its connection back."""
        try:
            await commit(conn, tx, transaction, self._unavailable, self._resolve)
        except StorageError as exc:  # a lost connection: nothing was at stake
            log.debug("ending a read-only transaction failed: %r", exc)
        finally:
            self._pool.release(conn)

    def read(self, snapshot: bool = False) -> AbstractAsyncContextManager[Transaction]:
        """A REPEATABLE READ, READ ONLY transaction: one snapshot for everything it reads.
        With `snapshot`, its first round trip also brings what `Transaction.snapshot`
        returns (a caller that starts with it saves a round trip)."""
        return self._transaction(isolation="repeatable_read", readonly=True, snapshot=snapshot)

    def write(self, buffered: bool = False, buffer_updates: bool = False
              ) -> AbstractAsyncContextManager[Transaction]:
        """A SERIALIZABLE transaction; TransientConflict means: run the whole thing again.

        With `buffered`, BEGIN waits for the first statement and inserts for the next
        statement or COMMIT (`Transaction.buffered`): the commit may then have no xid.
        With `buffer_updates` too, updates and deletes wait the same way.
        """
        return self._transaction(isolation="serializable", lazy=buffered,
                                 buffer_updates=buffer_updates)

    # -- single statements ------------------------------------------------------------------
    async def latest_ts(self) -> int:
        """The newest commit now, outside any transaction, once every commit visible now has
        its timestamp (`Transaction.snapshot` is what a transaction's snapshot includes)."""
        try:
            await self.sequencer.flush()
        except SequencingFailed as exc:
            raise DatabaseUnavailable() from exc
        sql = newest_commit_sql(self.names)
        ts: int = await self._pooled(lambda conn: conn.fetchval(sql))
        return ts

    async def commit_ts(self, commit: CommitKey) -> int:
        """The timestamp of a committed commit, by xid or by the client request (session id,
        request id) it recorded, once it has one."""
        try:
            return await self.sequencer.timestamp(commit)
        except SequencingFailed as exc:
            log.error("commit %s has no timestamp: %s", commit, exc)
            raise StorageError(TIMESTAMP_UNKNOWN) from exc

    async def _sequence(self, keys: list[CommitKey]) -> dict[CommitKey, int]:
        """Give every committed commit without a timestamp its timestamp (`_sequence` in
        storage/ddl.py); return the timestamps of the commits `keys` name."""
        xids = [k for k in keys if isinstance(k, int)]
        requests = [k for k in keys if not isinstance(k, int)]
        if not requests:
            sql = f"SELECT xid, ts FROM {self.names.system('sequence')}($1::bigint[])"
            rows = await self._pooled(lambda conn: conn.fetch(sql, xids))
            return {r[0]: r[1] for r in rows}
        sql = (f"SELECT xid, ts, session_id, request_id FROM "
               f"{self.names.system('sequence_requests')}($1::bigint[], $2::text[], "
               "$3::bigint[])")
        rows = await self._pooled(lambda conn: conn.fetch(
            sql, xids, [s for s, _ in requests], [r for _, r in requests]))
        return {r[0] if r[2] is None else (r[2], r[3]): r[1] for r in rows}

    def listener(self, on_payload: Callable[[str], None],
                 on_connected: Callable[[], Awaitable[None]]) -> Listener:
        """A LISTEN connection on this deployment's commit channel (start() it)."""
        return Listener(self.url, self.names.channel, on_payload, on_connected,
                        application_name=application_name(self.names.namespace, "listener"))

    async def drop(self) -> None:
        """Drop the whole deployment schema (tests and `reset` only)."""
        sql = f"DROP SCHEMA IF EXISTS {self.names.schema} CASCADE"
        await self._pooled(lambda conn: conn.execute(sql))

    @property
    def id_index(self) -> str:
        return BY_ID
