"""One Postgres transaction, and the errors storage reports (none names the driver)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import orjson

from reactive_store.errors import InternalError
from reactive_store.storage.commit_log_ddl import SNAPSHOT_NOTICE, snapshot_sql
from reactive_store.storage.connections import (
    FAILURES,
    PlainTransaction,
    Throttle,
    lost,
    sql_literal,
)
from reactive_store.storage.names import Names
from reactive_store.storage.pending_writes import PendingWrites

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
RETRYABLE = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
)
LOCK_TIMEOUT = "50ms"

def request_hash(path: str, args: Any, identity: Any) -> str:
    """A digest of who called which function with which (Convex-encoded JSON) arguments.

    Recorded with a client request's result (`commit_writes`), so that a replay of the same
    (session id, request id) can be checked to be the same call (`find_request`).
    """
    payload = orjson.dumps([path, args, identity], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


class RecordedRequest(NamedTuple):
    """A committed client request: its commit (timestamp, or transaction id while the commit
    has none yet), encoded result, hash of the call."""

    ts: int | None
    xid: int | None
    result: str
    request_hash: str | None  # None for rows recorded before hashes were kept


class Snapshot(NamedTuple):
    """A transaction's view of the commit log.

    Commits become visible in any order, and get their timestamps after COMMIT, so a
    snapshot may include committed commits that have no timestamp yet (`unsequenced`); they
    will get timestamps above `ts`. A result that read inside one of their write sets is not
    the state at `ts` (see docs/architecture.md, "Commit ordering").
    """

    ts: int
    unsequenced: tuple[str, ...]


@dataclass
class PruneReport:
    """How many rows one `Store.prune` deleted from each internal table."""

    commits: int = 0
    mutations: int = 0
    history: int = 0


def snapshot_of(notices: list[str]) -> Snapshot | None:
    """The snapshot `_snapshot_notice` sent back as a NOTICE, if it is among `notices`."""
    for text in notices:
        if text.startswith(SNAPSHOT_NOTICE):
            ts, _, unsequenced = text[len(SNAPSHOT_NOTICE):].partition(" ")
            return Snapshot(int(ts), tuple(orjson.loads(unsequenced)))
    return None


def newest_commit_sql(names: Names) -> str:
    return f"SELECT coalesce(max(ts), 0) FROM {names.system('commits')}"


class Transaction:
    """One Postgres transaction. Calls are serialised, so a function may gather() them."""

    def __init__(self, conn: asyncpg.Connection, names: Names,
                 throttle: Throttle | None = None, plain: PlainTransaction | None = None,
                 buffer_updates: bool = False, snapshot: Snapshot | None = None) -> None:
        self._conn = conn
        self._snapshot = snapshot  # taken with BEGIN (`Store.read(snapshot=True)`)
        self._plain = plain
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
        # The transaction id, read from the first document write (RETURNING), so that the
        # commit step can be sent with COMMIT (`commit_step`) without reading its result.
        self.xid: int | None = None
        self.commit_step = ""  # statements sent in COMMIT's message (`Store`)
        # Inserts not sent yet (SQL with literal values): they go out in the next
        # statement's message, or in COMMIT's. An insert reads nothing and returns nothing,
        # so a transaction whose writes are all inserts is one message, BEGIN to COMMIT;
        # every other statement sends them first, so it sees them. The price: no xid.
        # Buffering goes with a lazy BEGIN (`Store.write(buffered=True)`).
        self.buffered = plain is not None and plain.lazy
        # Updates and deletes too, when nobody will look for the commit by a document it
        # inserted (engine: a caller that waits for no timestamp). A batch of scheduled jobs,
        # each an insert and its job's update, is then one message, not one per job.
        self.buffer_updates = self.buffered and buffer_updates
        self._pending = PendingWrites()
        self.first_insert: tuple[str, str] | None = None  # (table, id), buffered
        self.logged_writes: str | None = None  # the write set `commit_writes` logged
        # The caller will learn the timestamp from the commit stream, so the commit must be
        # sequenced soon: in COMMIT's message (`sequence_after`, no round trip of its own) or
        # by the next batched call; the store chooses (`Store._commit`).
        self.sequence_soon = False
        self.sequence_after = False

    async def _run(self, op: Callable[[], Any]) -> Any:
        async with self._lock:
            if self.conflicted:
                raise TransientConflict("transaction already conflicted")
            if self.broken:
                raise DatabaseUnavailable()
            try:
                if self._plain is not None and (self._pending or not self._plain.begun):
                    await self._plain.start_with(self._pending.take_sql())
                return await op()
            except RETRYABLE as exc:
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

    async def _write_row(self, sql: str, *args: Any) -> None:
        """One document write; the first one also reads the transaction id."""
        if self.xid is not None:
            await self._write(lambda: self._conn.execute(sql, *args))
            return
        returning = f"{sql} RETURNING pg_current_xact_id()::text::bigint"
        self.xid = await self._write(lambda: self._conn.fetchval(returning, *args))

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
        columns = ("_id", "_creation_time", "doc", *map(self._n.key_column, keys))
        if self.buffered and self.xid is None:
            self.wrote = True
            if self.first_insert is None:
                self.first_insert = (table, doc_id)
            self._pending.insert(self._n.table(table), columns,
                                 (doc_id, creation_time, doc.decode(), *keys.values()))
            return
        into = f"INSERT INTO {self._n.table(table)} ({', '.join(columns)}) VALUES"
        params = ", ".join(f"${i + 1}" for i in range(3 + len(keys)))
        await self._write_row(f"{into} ({params})", doc_id, creation_time, doc, *keys.values())

    async def update(self, table: str, doc_id: str, doc: bytes, keys: dict[str, bytes],
                     tid: str | None = None) -> None:
        """Write a new version of a document; `tid` is the ctid of the version this
        transaction read (and locked), to reach it by a TID scan (storage/pending_writes.py)."""
        if self._buffering_updates():
            self._pending.update(self._n.table(table), doc_id, doc.decode(),
                                 {self._n.key_column(i): k for i, k in keys.items()}, tid)
            return
        sets = ", ".join(f"{self._n.key_column(i)} = ${n + 3}" for n, i in enumerate(keys))
        where = "_id = $1" if tid is None else f"ctid = ${len(keys) + 3}::text::tid AND _id = $1"
        sql = f"UPDATE {self._n.table(table)} SET doc = $2, {sets} WHERE {where}"
        await self._write_row(sql, doc_id, doc, *keys.values(), *([] if tid is None else [tid]))

    async def delete(self, table: str, doc_id: str) -> None:
        if self._buffering_updates():
            self._pending.delete(self._n.table(table), doc_id)
            return
        sql = f"DELETE FROM {self._n.table(table)} WHERE _id = $1"
        await self._write_row(sql, doc_id)

    def _buffering_updates(self) -> bool:
        if self.buffer_updates and self.xid is None:
            self.wrote = True
            return True
        return False

    async def commit_writes(
        self, writes: str, request: tuple[str, int] | None = None, result: str | None = None,
        request_hash: str | None = None,
    ) -> int | None:
        """Log this transaction's writes, keyed by its transaction id, which is returned
        (None when only buffered inserts wrote: the commit is then known by its request);
        COMMIT must follow, then the store's sequencer gives the commit its timestamp.

        With `request` (client session id, request id), the result is recorded with the
        commit, with `request_hash` (see `request_hash()`) naming the call it answers, so a
        replay of the same request returns it instead of running again. A record left by an
        earlier session that used the same id is replaced.
        """
        session, request_id = request if request is not None else (None, None)
        self.logged_writes = writes
        if self.xid is not None or self.buffered:
            # Sent with COMMIT, in one message: one round trip less. Without a request the
            # row is all `_record_commit` writes, inserted here without the function call
            # (about a tenth of Postgres's work for a single-insert mutation).
            if request is None:
                self.commit_step = (
                    f"INSERT INTO {self._n.system('commits')} (xid, writes) "
                    f"VALUES (pg_current_xact_id()::text::bigint, {sql_literal(writes)})")
                return self.xid
            args = ", ".join(sql_literal(a) for a in (writes, session, request_id, result,
                                                     request_hash))
            self.commit_step = f"SELECT {self._n.system('record_commit')}({args})"
            return self.xid
        sql = f"SELECT {self._n.system('record_commit')}($1, $2, $3, $4, $5)"
        xid: int = await self._write(
            lambda: self._conn.fetchval(sql, writes, session, request_id, result, request_hash))
        return xid

    def final_statements(self) -> str:
        """What travels in COMMIT's message: the buffered inserts, then the commit step."""
        return "; ".join(s for s in (self._pending.take_sql(), self.commit_step) if s)

    async def find_request(self, session: str, request_id: int) -> RecordedRequest | None:
        """An already committed client request: its commit, result and call hash."""
        sql = (f"SELECT coalesce(m.ts, c.ts), m.xid, m.result, m.request_hash "
               f"FROM {self._n.system('mutations')} m "
               f"LEFT JOIN {self._n.system('commits')} c ON c.xid = m.xid "
               "WHERE m.session_id = $1 AND m.request_id = $2")
        rec = await self._run(lambda: self._conn.fetchrow(sql, session, request_id))
        return None if rec is None else RecordedRequest(rec[0], rec[1], rec[2], rec[3])

    async def snapshot(self) -> Snapshot:
        """What this transaction's snapshot holds of the commit log: the newest timestamp,
        and the writes of commits it sees that have no timestamp yet."""
        if self._snapshot is not None:
            return self._snapshot
        rec = await self._run(lambda: self._conn.fetchrow(snapshot_sql(self._n)))
        return Snapshot(rec[0], tuple(rec[1]))

    async def commits_between(self, after: int, upto: int) -> list[tuple[int, str]]:
        """The logged writes of commits with after < ts <= upto, in ts order."""
        sql = (
            f"SELECT ts, writes FROM {self._n.system('commits')} "
            "WHERE ts > $1 AND ts <= $2 ORDER BY ts"
        )
        recs = await self._run(lambda: self._conn.fetch(sql, after, upto))
        return [(r[0], r[1]) for r in recs]
