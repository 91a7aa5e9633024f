"""The SQL of scheduled jobs: the scan for due ones, a deployment-wide batch slot, id locks.

The scan runs in the runner's read-only snapshot (`jobs/runner.py`). The slot and the row
locks are taken inside the batch's own SERIALIZABLE transaction (`jobs/batch.py`), so they
are held until it commits or rolls back, and nothing outlives a dead process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from reactive_store.storage.transaction import Row, Transaction


async def take_slot(tx: Transaction, slots: int) -> bool:
    """Take the first free one of `slots` batch slots (transaction-scoped advisory locks
    (job_lock, slot)) till the end of `tx`; False, at once, when all are taken."""
    rows = await tx.fetch("SELECT s FROM generate_series(0, $2 - 1) AS s "
                          "WHERE pg_try_advisory_xact_lock($1, s) LIMIT 1",
                          tx.names.job_lock, slots)
    return bool(rows)


class LockedJob(NamedTuple):
    """A job row locked for its batch, with its index keys as stored (by index name)."""

    row: Row
    keys: dict[str, bytes]


async def lock_due(tx: Transaction, table: str, job_ids: list[str], lo: bytes, hi: bytes,
                   indexes: Sequence[str] = ()) -> list[LockedJob]:
    """Lock the jobs of `table` with ids in `job_ids` whose `by_state` key lies in [lo, hi)
    (pending and due), skipping rows another transaction holds (never waiting); in key
    order, which is due order. Each comes with its stored keys of `indexes`."""
    sql_table, key = tx.names.table(table), tx.names.key_column("by_state")
    columns = "".join(f", {tx.names.key_column(index)}" for index in indexes)
    recs = await tx.fetch(
        f"SELECT _id, _creation_time, doc{columns} FROM {sql_table} WHERE _id = ANY($1::text[]) "
        f"AND {key} >= $2 AND {key} < $3 ORDER BY {key} FOR UPDATE SKIP LOCKED",
        job_ids, lo, hi)
    return [LockedJob(Row(r[0], r[1], r[2], None), dict(zip(indexes, r[3:], strict=True)))
            for r in recs]


async def due_jobs(tx: Transaction, table: str, lo: bytes, hi: bytes, limit: int
                   ) -> tuple[list[str], list[Row]]:
    """The first `limit` jobs of `table` whose `by_state` key lies in [lo, hi) (pending and
    due), in due order: the ids of scheduled mutations (a batch reads them again under its
    lock), and the rows of the others (actions, which run from what was scanned)."""
    sql_table, key = tx.names.table(table), tx.names.key_column("by_state")
    recs = await tx.fetch(
        f"SELECT _id, _creation_time, CASE WHEN doc->>'kind' = 'mutation' THEN NULL "
        f"ELSE doc END FROM {sql_table} WHERE {key} >= $1 AND {key} < $2 ORDER BY {key} "
        f"LIMIT $3", lo, hi, limit)
    mutations = [r[0] for r in recs if r[2] is None]
    return mutations, [Row(r[0], r[1], r[2], None) for r in recs if r[2] is not None]
