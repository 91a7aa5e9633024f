"""Deleting finished scheduled functions once their retention (Convex: 7 days) has passed."""

from __future__ import annotations

from reactive_store.engine.db import SystemTableWriter
from reactive_store.engine.engine import Engine
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS
from reactive_store.jobs.execution import now_ms

FINISHED = ("success", "failed", "canceled")
BATCH = 500


class JobRetention:
    """Prunes `_scheduled_functions` in small transactions through the engine, so live
    queries over it see the deletions like any other write."""

    def __init__(self, engine: Engine, retention_s: float) -> None:
        self.engine = engine
        self.retention_s = retention_s

    async def prune(self) -> int:
        """Delete jobs that finished and were due before the cutoff; return how many."""
        cutoff = now_ms() - self.retention_s * 1000.0
        deleted = 0
        for state in FINISHED:
            while True:
                removed, scanned = await self._prune_batch(state, cutoff)
                deleted += removed
                if removed == 0 or scanned < BATCH:
                    break
        return deleted

    async def _prune_batch(self, state: str, cutoff: float) -> tuple[int, int]:
        async def body(jobs: SystemTableWriter) -> tuple[int, int]:
            old = await jobs.query(SCHEDULED_FUNCTIONS).with_index(
                "by_state", lambda q: q.eq("state.kind", state).lt("scheduledTime", cutoff)
            ).take(BATCH)
            removed = 0
            for job in old:
                if float(job.get("completedTime", 0.0)) < cutoff:
                    await jobs.delete(job["_id"])
                    removed += 1
            return removed, len(old)

        return await self.engine.write_system("job retention", body)
