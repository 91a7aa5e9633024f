"""Reads as of an earlier commit timestamp `T`: the current rows, overlaid with the versions
the before-image log (`storage/history.py`) gives for documents written after `T`.

The set of documents at `T` in an index range is the union of two disjoint sets: current
rows no commit after `T` wrote (their version at `T` is the current one), and the versions
at `T` of the documents commits after `T` did write (absent when one inserted them). Both
come from the query's one snapshot, so they agree with each other. A scan merges them in
index-key order, the keys of past versions computed as writes compute them (`keys.py`).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from reactive_store.engine.intervals import Interval
from reactive_store.engine.reads import TransactionReads, document_from_row
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.errors import BadRequest, LimitExceeded, QueryError
from reactive_store.limits import Limits
from reactive_store.schema import Schema, TableDefinition, all_indexes
from reactive_store.storage import Row, Transaction
from reactive_store.storage.history import (
    horizon,
    oldest_logged_commit,
    scan_except,
    versions_at,
    without_jit,
)
from reactive_store.storage.transaction import Snapshot
from reactive_store.types import Document

HISTORY_VARIABLE = "REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S"


@dataclass
class PastTable:
    """One table's documents that commits after `T` wrote, as they were at `T`.

    `stored` maps every such id to its stored form at `T` (creation time, JSON; None: it
    did not exist then), decoded afresh for every read, as current rows are, so a function
    that edits a document it got never changes what a later read returns. `by_index` holds,
    per index, the present ones' (key at `T`, id) in key order, built on the first scan of
    that index.
    """

    stored: dict[str, tuple[float, bytes] | None]
    by_index: dict[str, list[tuple[bytes, str]]] = field(default_factory=dict)

    def document(self, doc_id: str) -> Document | None:
        found = self.stored[doc_id]
        return None if found is None else document_from_row(doc_id, *found)

    def size(self, doc_id: str) -> int:
        found = self.stored[doc_id]
        return 0 if found is None else len(found[1])

    def in_range(self, definition: TableDefinition, index: str, lo: bytes, hi: bytes | None
                 ) -> list[tuple[bytes, str]]:
        """(key, id) of the past versions whose `index` key k has lo <= k < hi, in order."""
        keyed = self.by_index.get(index)
        if keyed is None:
            key_of = all_indexes(definition)[index].key
            keyed = sorted((key_of(doc), doc_id) for doc_id in self.stored
                           if (doc := self.document(doc_id)) is not None)
            self.by_index[index] = keyed
        start = bisect_left(keyed, lo, key=lambda pair: pair[0])
        end = len(keyed) if hi is None else bisect_left(keyed, hi, key=lambda pair: pair[0])
        return keyed[start:end]


class PastVersions:
    """The versions at `ts` of what commits after it wrote, loaded per table on first use and
    shared by every attempt of one query (they read one snapshot)."""

    def __init__(self, tx: Transaction, ts: int, limit: int) -> None:
        self.tx = tx
        self.ts = ts
        self.limit = limit  # documents changed since `ts` one table may have to be read
        self._tables: dict[str, PastTable] = {}

    async def table(self, table: str) -> PastTable:
        found = self._tables.get(table)
        if found is None:
            images = await versions_at(self.tx, table, self.ts, self.limit + 1)
            if len(images) > self.limit:
                raise LimitExceeded(
                    f"more than {self.limit} documents of table {table!r} changed after "
                    f"timestamp {self.ts}: too many to read it as it was then (the limit of "
                    "documents read); query a more recent timestamp")
            found = self._tables[table] = PastTable({
                i.id: None if i.doc is None or i.creation_time is None else (
                    i.creation_time, i.doc) for i in images})
        return found


class PastReads(TransactionReads):
    """The `IndexReader` of a query at a past timestamp: reads what was there at `past.ts`,
    recording the same read set a query at that time would have."""

    def __init__(self, tx: Transaction, schema: Schema, table_names: dict[int, str],
                 limits: Limits, past: PastVersions, journal: str | None = None) -> None:
        super().__init__(tx, schema, table_names, limits, journal)
        self.past = past
        self._counted: set[str] = set()  # tables whose past versions count as read

    async def _table(self, table: str) -> PastTable:
        """The table's past versions; loading them counts as reading them, once."""
        past = await self.past.table(table)
        if table not in self._counted:
            self._counted.add(table)
            self.usage.documents_read(len(past.stored), sum(
                len(found[1]) for found in past.stored.values() if found is not None))
        return past

    async def scan(self, table: str, index: str, lo: bytes, hi: bytes | None, desc: bool,
                   limit: int) -> list[tuple[bytes, Document, int]]:
        self.usage.range_read()
        past = await self._table(table)
        rows = await scan_except(self.tx, table, index, lo, hi, desc, limit,
                                 list(past.stored))
        then = past.in_range(self.schema.tables[table], index, lo, hi)
        then = (then[::-1] if desc else then)[:limit]
        # Both lists hold at most `limit` of their own set's first keys, so the first
        # `limit` of the merge are the first `limit` of the union.
        merged: list[tuple[bytes, Row | str]] = [*then]
        merged += [(row.key, row) for row in rows if row.key is not None]
        merged.sort(key=lambda entry: entry[0], reverse=desc)
        self.usage.documents_read(len(rows), sum(len(r.doc) for r in rows))
        out: list[tuple[bytes, Document, int]] = []
        for key, source in merged[:limit]:
            if isinstance(source, str):
                doc, size = past.document(source), past.size(source)
            else:
                doc = document_from_row(source.id, source.creation_time, source.doc)
                size = len(source.doc)
            assert doc is not None  # in_range holds only documents present at `T`
            out.append((key, doc, size))
        return out

    async def get(self, doc_id: str, table: str) -> Document | None:
        past = await self._table(table)
        if doc_id not in past.stored:
            return await super().get(doc_id, table)
        self.record_get(table, doc_id)
        self.usage.range_read()
        return past.document(doc_id)

    def record_interval(self, table: str, index: str, interval: Interval) -> None:
        # Every text and vector search records its reads before it runs: refuse it here,
        # before it reads the derived tables, which hold only the current state.
        raise QueryError(
            f"text and vector search read only the current index ({table}.{index.split('#')[0]}):"
            f" they cannot run at a past timestamp ({self.past.ts}); query at the newest "
            "timestamp instead")



async def past_at(tx: Transaction, snapshot: Snapshot, at_ts: int, history_seconds: float,
                  limit: int) -> PastVersions | None:
    """The versions a query at `at_ts` reads through (None: it reads the snapshot as it
    is, exact when `at_ts` is its newest commit and it holds no unsequenced ones, else to
    be proved by `prove_unchanged` while no history is kept); refused in the future or
    before the history."""
    if at_ts > snapshot.ts:
        raise BadRequest(f"timestamp {at_ts} is in the future: the newest commit is "
                         f"{snapshot.ts}", "InvalidTimestamp")
    if at_ts == snapshot.ts and not snapshot.unsequenced:
        return None
    oldest = await horizon(tx)
    if oldest is None:
        return None
    if at_ts < oldest:
        raise BadRequest(
            f"timestamp {at_ts} is older than the query history: the oldest readable "
            f"timestamp is {oldest} (history is kept for {history_seconds:g} s, "
            f"{HISTORY_VARIABLE})", "InvalidTimestamp")
    # Commits the snapshot holds without a timestamp yet will be numbered above its
    # newest one: to a read at `at_ts` they are later commits like any other.
    await without_jit(tx)
    return PastVersions(tx, at_ts, limit)


async def prove_unchanged(tx: Transaction, path: str, reads: ReadSet,
                          between: tuple[int, int], history_seconds: float) -> None:
    """Without history: a result at `between[1]` is the one at `between[0]` if no commit in
    between wrote inside its read set; otherwise refuse, saying why no history helps."""
    at_ts, ts = between
    why = (f"query history is off (set {HISTORY_VARIABLE} above 0 to read any recent "
           "timestamp)" if history_seconds <= 0 else "no query history is kept for this "
           "deployment now (a server process runs with it off)")
    oldest = await oldest_logged_commit(tx)
    if oldest is not None and at_ts < oldest:
        # Commits between `at_ts` and `oldest` may have been pruned: nothing proves them
        # harmless.
        raise QueryError(f"{path}: timestamp {at_ts} is older than the commit log (its "
                         f"oldest commit is {oldest}), and {why}; query again at a newer "
                         "timestamp")
    for commit_ts, text in await tx.commits_between(at_ts, ts):
        if reads.overlaps(WriteSet.from_text(text)):
            raise QueryError(f"{path}: what it reads changed at {commit_ts}, after the "
                             f"requested timestamp {at_ts}, and {why}; query again at a "
                             "newer timestamp")
