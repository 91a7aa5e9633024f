"""The SQL of scheduled jobs: the scan for due ones, stripes of the job table, row locks.

The scan runs in the runner's read-only snapshot (`jobs/runner.py`) and names each due
mutation by its id and the ctid of its row. The stripe and the row locks are taken inside
the batch's own SERIALIZABLE transaction (`jobs/batch.py`), so they are held until it
commits or rolls back, and nothing outlives a dead process. Rows are read by TID scans only:
a batch's predicate locks then cover the heap pages of its own stripe and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from reactive_store.storage.pending_writes import TID_ONLY_OFF, TID_ONLY_ON
from reactive_store.storage.transaction import Row, Transaction


class DueJob(NamedTuple):
    """A due scheduled mutation as scanned: its id, the ctid of its row then, and when it
    is due (ms since the epoch)."""

    id: str
    tid: str  # "(block,offset)"
    due: float = 0.0

    @property
    def block(self) -> int:
        """The heap page its row was on (stripes are made of pages)."""
        return int(self.tid[1:self.tid.index(",")])


class LockBudget(NamedTuple):
    """How a batch's reads of the job table turn into predicate locks on this server.

    Postgres turns more than `per_page` tuple locks of one page into a page lock
    (max_pred_locks_per_page), and more than a threshold of tuple and page locks of one
    table into a lock of the whole table (max_pred_locks_per_relation, or when negative
    max_pred_locks_per_transaction divided by its absolute value), which every other
    batch's writes would meet. A batch keeps to three quarters of that threshold (`locks`).
    The defaults: 2 a page, 32 a table, so 24."""

    per_page: int = 2
    locks: int = 24

    def added(self, rows_read: int) -> int:
        """The predicate locks reading one more row of a heap page adds, when `rows_read`
        of its rows are read already: past `per_page`, one page lock replaces them."""
        if rows_read < self.per_page:
            return 1
        return 1 - self.per_page if rows_read == self.per_page else 0


async def lock_budget(tx: Transaction) -> LockBudget:
    """The server's predicate-lock thresholds, as a batch's budget."""
    per_page, per_relation, per_transaction = (await tx.fetch(
        "SELECT current_setting('max_pred_locks_per_page')::int, "
        "current_setting('max_pred_locks_per_relation')::int, "
        "current_setting('max_pred_locks_per_transaction')::int"))[0]
    table = per_relation if per_relation >= 0 else per_transaction // -per_relation
    return LockBudget(per_page, max(1, table * 3 // 4))


def stripe_of(job: DueJob, stripes: int) -> int:
    """The stripe a job belongs to: stripes share out the job table's heap pages."""
    return job.block % stripes


async def take_stripe(tx: Transaction, stripe: int) -> bool:
    """Take stripe `stripe` (a transaction-scoped advisory lock (job_lock, stripe)) till the
    end of `tx`; False, at once, when another batch holds it."""
    taken: bool = (await tx.fetch("SELECT pg_try_advisory_xact_lock($1, $2)",
                                  tx.names.job_lock, stripe))[0][0]
    return taken


class LockedJob(NamedTuple):
    """A job row locked for its batch, with its index keys as stored (by index name) and
    the ctid of the version locked."""

    row: Row
    keys: dict[str, bytes]
    tid: str


async def lock_due(tx: Transaction, table: str, jobs: Sequence[DueJob], lo: bytes, hi: bytes,
                   indexes: Sequence[str] = ()) -> list[LockedJob]:
    """Lock the rows `jobs` name (by ctid) that still hold those jobs with a `by_state` key
    in [lo, hi) (pending and due), skipping rows another transaction holds (never waiting);
    in key order, which is due order. Each comes with its stored keys of `indexes`.

    Only a TID scan reads them (the planner settings say so for this statement), so the
    predicate locks taken cover the pages of these rows alone."""
    sql_table, key = tx.names.table(table), tx.names.key_column("by_state")
    columns = "".join(f", {tx.names.key_column(index)}" for index in indexes)
    await tx.execute(TID_ONLY_ON)
    recs = await tx.fetch(
        f"SELECT ctid::text, _id, _creation_time, doc{columns} FROM {sql_table} "
        f"WHERE ctid = ANY($1::text[]::tid[]) AND _id = ANY($2::text[]) "
        f"AND {key} >= $3 AND {key} < $4 ORDER BY {key} FOR UPDATE SKIP LOCKED",
        [job.tid for job in jobs], [job.id for job in jobs], lo, hi)
    await tx.execute(TID_ONLY_OFF)
    return [LockedJob(Row(r[1], r[2], r[3], None), dict(zip(indexes, r[4:], strict=True)), r[0])
            for r in recs]


async def due_jobs(tx: Transaction, table: str, lo: bytes, hi: bytes, limit: int
                   ) -> tuple[list[DueJob], list[Row]]:
    """The first `limit` jobs of `table` whose `by_state` key lies in [lo, hi) (pending and
    due), in due order: the scheduled mutations by id and ctid (a batch reads them again
    under its lock), and the rows of the others (actions, which run from what was scanned)."""
    sql_table, key = tx.names.table(table), tx.names.key_column("by_state")
    recs = await tx.fetch(
        f"SELECT _id, _creation_time, CASE WHEN doc->>'kind' = 'mutation' THEN NULL "
        f"ELSE doc END, ctid::text, (doc->>'scheduledTime')::float8 FROM {sql_table} "
        f"WHERE {key} >= $1 AND {key} < $2 ORDER BY {key} LIMIT $3", lo, hi, limit)
    mutations = [DueJob(r[0], r[3], r[4]) for r in recs if r[2] is None]
    return mutations, [Row(r[0], r[1], r[2], None) for r in recs if r[2] is not None]
