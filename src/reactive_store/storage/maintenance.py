"""The store's commit log and history outside transactions: read back, started, pruned.

`Maintenance` is a mixin of `Store`: every statement runs through the store's `_pooled`
(one idempotent statement on a live connection).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from reactive_store.storage.history import (
    follow_pruned_commits_sql,
    prune_sql,
    raise_horizon_sql,
    start_sql,
)
from reactive_store.storage.names import Names
from reactive_store.storage.search import compact_stats
from reactive_store.storage.transaction import PruneReport

PRUNE_BATCH = 10_000  # rows deleted per statement when pruning
T = TypeVar("T")


class Maintenance:
    """Commit-log reads, history on or off, pruning and search-statistics compaction."""

    names: Names

    async def _pooled(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run one idempotent statement outside a transaction (`Store._pooled`)."""
        raise NotImplementedError

    async def start_history(self, keep: bool) -> None:
        """Begin keeping before-images (the horizon is now, unless they were kept
        already), or stop: then no past timestamp is readable (`storage/history.py`)."""
        sql = start_sql(self.names, keep)
        await self._pooled(lambda conn: conn.execute(sql))

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

    async def prune(self, commits_older_than_s: float, mutations_older_than_s: float,
                    history_older_than_s: float = 0.0) -> PruneReport:
        """Forget old commit-log, request-dedupe and before-image rows (the newest commit
        always stays).

        The commit log backs listener catch-up (and `query_at_ts` while no history is
        kept); request records back the replay of a client's mutations after it
        reconnects; before-images back `query_at_ts` (kept `history_older_than_s`, all of
        them dropped while history is off). Rows go in batches of PRUNE_BATCH, oldest
        first, so a large backlog never makes one huge transaction.
        """
        n = self.names
        commits = n.system("commits")
        mutations = n.system("mutations")
        report = PruneReport()
        # A request record whose commit goes keeps that commit's timestamp; before-images
        # need theirs, so the commit log is kept as long as they are, and the history's
        # horizon rises past every commit that goes.
        report.commits = await self._delete_batches(
            f"WITH gone AS (DELETE FROM {commits} WHERE ts IN (SELECT ts FROM {commits} "
            f"WHERE committed_at < now() - make_interval(secs => $1) AND ts < (SELECT max(ts) "
            f"FROM {commits}) ORDER BY ts LIMIT {PRUNE_BATCH}) RETURNING xid, ts), "
            f"kept AS (UPDATE {mutations} m SET ts = gone.ts FROM gone "
            "WHERE m.ts IS NULL AND m.xid = gone.xid), "
            f"horizon AS ({follow_pruned_commits_sql(n, 'gone')}) SELECT count(*) FROM gone",
            max(commits_older_than_s, history_older_than_s))
        report.mutations = await self._delete_batches(
            f"WITH gone AS (DELETE FROM {mutations} WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
            f"{mutations} WHERE committed_at < now() - make_interval(secs => $1) "
            f"LIMIT {PRUNE_BATCH})) RETURNING 1) SELECT count(*) FROM gone",
            mutations_older_than_s)
        report.history = await self._prune_history(history_older_than_s)
        return report

    async def _prune_history(self, older_than_s: float) -> int:
        # The horizon moves first, in its own statement: a query that reads it afterwards
        # needs none of the rows deleted next, and one whose snapshot came before it still
        # sees them (MVCC).
        raise_sql = raise_horizon_sql(self.names)
        horizon = await self._pooled(lambda conn: conn.fetchval(raise_sql, older_than_s))
        if horizon is None:
            return await self._delete_batches(prune_sql(self.names, PRUNE_BATCH, True))
        return await self._delete_batches(prune_sql(self.names, PRUNE_BATCH, False), horizon)

    async def _delete_batches(self, sql: str, *args: Any) -> int:
        total = 0
        while True:
            deleted: int = await self._pooled(lambda conn: conn.fetchval(sql, *args))
            total += deleted
            if deleted < PRUNE_BATCH:
                return total

    async def compact_search_stats(self) -> None:
        """Fold each search index's statistics deltas (a row per write) into a row per
        filter values, so a search sums few rows (`storage/search.py`)."""
        for side in list(self.names.side_tables.values()):
            if side.kind == "search":
                await self._pooled(functools.partial(compact_stats, side=side))
