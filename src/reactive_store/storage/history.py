"""The before-image log (`_history`): what each commit's documents were before it, so a query
can read as of an earlier timestamp; and the horizon, the oldest timestamp readable so.

One row per document a commit wrote: `(xid, table, id, creation_time, before)`, `before`
NULL for a document the commit inserted, keyed like the commit-log row by the transaction
id, so it is written inside the mutation, before the commit has a timestamp; its timestamp
is its commit row's (`_commits.ts`, NULL until sequenced). The version of a document at `T`
is the before-image of the earliest commit after `T` that wrote it (commits not yet
sequenced come after every sequenced one, in transaction-id order, as `_sequence` will
number them), or the current row when no commit after `T` did. The horizon row holds the
oldest `T` for which every such row is still here.
"""

from __future__ import annotations

from typing import NamedTuple

from reactive_store.storage.commit_log_ddl import unsequenced_sql
from reactive_store.storage.connections import sql_literal
from reactive_store.storage.names import Names
from reactive_store.storage.transaction import Row, Transaction

XID = "pg_current_xact_id()::text::bigint"


class BeforeImage(NamedTuple):
    """A document as it was before a commit wrote it; `doc` None when it did not exist."""

    table: str
    id: str
    creation_time: float | None
    doc: bytes | None


def history_ddl(n: Names) -> list[str]:
    """The log and its horizon (created by schema push, under its lock)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {n.system('history')} (
            xid bigint NOT NULL, tbl text NOT NULL, id text COLLATE "C" NOT NULL,
            creation_time double precision, before json, PRIMARY KEY (xid, tbl, id))""",
        f"""CREATE TABLE IF NOT EXISTS {n.system('history_horizon')} (
            id integer PRIMARY KEY CHECK (id = 1), ts bigint NOT NULL)""",
    ]


def start_sql(n: Names, keep: bool) -> str:
    """Run once when a process starts. Keeping history: the horizon is the newest commit
    when it began (earlier commits left no before-images), unless it is already kept. Not
    keeping: the horizon goes, since commits from now on leave no before-images, and no
    past timestamp is readable until history is kept again."""
    horizon = n.system("history_horizon")
    if not keep:
        return f"DELETE FROM {horizon}"
    return (f"INSERT INTO {horizon} (id, ts) SELECT 1, coalesce(max(ts), 0) FROM "
            f"{n.system('commits')} ON CONFLICT (id) DO NOTHING")


def follow_pruned_commits_sql(n: Names, gone: str) -> str:
    """A CTE clause for the commit-log prune: the horizon rises to the newest commit pruned
    (`gone`: the deleted rows), since before-images need their commit's timestamp."""
    return (f"UPDATE {n.system('history_horizon')} SET ts = greatest(ts, "
            f"(SELECT max(ts) FROM {gone})) WHERE id = 1")


def raise_horizon_sql(n: Names) -> str:
    """Move the horizon up to the newest commit older than `$1` seconds; returns the horizon
    (no row: history is off, and every row may go)."""
    commits, horizon = n.system("commits"), n.system("history_horizon")
    return (f"UPDATE {horizon} SET ts = greatest(ts, coalesce((SELECT max(ts) FROM {commits} "
            f"WHERE ts <= ((extract(epoch FROM clock_timestamp()) - $1) * 1e9)::bigint), ts)) "
            "WHERE id = 1 RETURNING ts")


def prune_sql(n: Names, batch: int, everything: bool) -> str:
    """Delete up to `batch` rows of commits at or below the horizon `$1`, or whose commit
    the log no longer has (`everything`: all rows, history is off). A query reading at the
    horizon or later needs none of them, and one that began earlier still sees them in its
    snapshot."""
    history, commits = n.system("history"), n.system("commits")
    rows = (f"SELECT ctid FROM {history} LIMIT {batch}" if everything else
            f"SELECT h.ctid FROM {history} h LEFT JOIN {commits} c ON c.xid = h.xid "
            f"WHERE c.xid IS NULL OR c.ts <= $1 LIMIT {batch}")
    return (f"WITH gone AS (DELETE FROM {history} WHERE ctid = ANY(ARRAY({rows})) "
            "RETURNING 1) SELECT count(*) FROM gone")


async def record(tx: Transaction, images: list[BeforeImage]) -> None:
    """Log a commit's before-images in its own transaction. They travel with COMMIT, in the
    commit step's message (no round trip of their own), when the commit step does."""
    if not images:
        return
    history = tx.names.system("history")
    if tx.commit_step:
        rows = ", ".join(
            f"({XID}, {sql_literal(i.table)}, {sql_literal(i.id)}, "
            f"{'NULL' if i.creation_time is None else repr(float(i.creation_time))}, "
            f"{'NULL' if i.doc is None else sql_literal(i.doc.decode())}::json)"
            for i in images)
        tx.commit_step += f"; INSERT INTO {history} VALUES {rows}"
        return
    await tx.execute(
        f"INSERT INTO {history} SELECT {XID}, * FROM unnest($1::text[], $2::text[], "
        "$3::float8[], $4::json[])", [i.table for i in images], [i.id for i in images],
        [i.creation_time for i in images], [i.doc for i in images])


async def horizon(tx: Transaction) -> int | None:
    """The oldest readable timestamp in this snapshot; None when history is not kept."""
    rows = await tx.fetch(f"SELECT ts FROM {tx.names.system('history_horizon')} WHERE id = 1")
    return None if not rows else int(rows[0][0])


async def without_jit(tx: Transaction) -> None:
    """No JIT compilation for the rest of this transaction. A log whose statistics lag
    (a burst of commits since the last ANALYZE) makes the lateral probe look costly
    enough to compile, which takes 8 ms to save nothing on a 2 ms statement."""
    await tx.execute("SET LOCAL jit = off")


async def versions_at(tx: Transaction, table: str, ts: int, limit: int) -> list[BeforeImage]:
    """The documents of `table` that commits after `ts` wrote (sequenced or not), as they
    were at `ts` (at most `limit` of them)."""
    # The commits after `ts` come from the index on ts and the partial index on the
    # unsequenced ones, and each finds its rows through the primary key (xid, tbl, id):
    # the cost follows the commits after `ts`, never the size of the whole log. OFFSET 0
    # keeps the planner from flattening the lateral probe into a hash join over the whole
    # table (7 ms instead of 0.9 ms for 500 commits over a 50,000-row log).
    commits, unsequenced = tx.names.system("commits"), unsequenced_sql(tx.names)
    sql = (f"SELECT DISTINCT ON (h.id) h.id, h.creation_time, h.before FROM "
           f"(SELECT xid, ts FROM {commits} WHERE ts > $1 UNION ALL SELECT xid, NULL::bigint "
           f"FROM {commits} c WHERE {unsequenced}) c CROSS JOIN LATERAL (SELECT id, "
           f"creation_time, before FROM {tx.names.system('history')} h "
           "WHERE h.xid = c.xid AND h.tbl = $2 "
           "OFFSET 0) h ORDER BY h.id, c.ts NULLS LAST, c.xid LIMIT $3")
    rows = await tx.fetch(sql, ts, table, limit)
    return [BeforeImage(table, r[0], r[1], r[2]) for r in rows]


async def oldest_logged_commit(tx: Transaction) -> int | None:
    """The oldest commit the commit log still holds (older ones were pruned)."""
    rows = await tx.fetch(f"SELECT min(ts) FROM {tx.names.system('commits')}")
    return None if rows[0][0] is None else int(rows[0][0])


async def scan_except(tx: Transaction, table: str, index: str, lo: bytes, hi: bytes | None,
                      desc: bool, limit: int, skip: list[str]) -> list[Row]:
    """`Transaction.scan`, leaving out the documents whose ids are in `skip`."""
    if not skip:
        return await tx.scan(table, index, lo, hi, desc, limit)
    col = tx.names.key_column(index)
    where = f"{col} >= $1 AND NOT (_id = ANY($3::text[]))" + (
        "" if hi is None else f" AND {col} < $4")
    sql = (f"SELECT _id, _creation_time, doc, {col} FROM {tx.names.table(table)} WHERE {where} "
           f"ORDER BY {col} {'DESC' if desc else 'ASC'} LIMIT $2")
    args = (lo, limit, skip) if hi is None else (lo, limit, skip, hi)
    return [Row(r[0], r[1], r[2], r[3]) for r in await tx.fetch(sql, *args)]
