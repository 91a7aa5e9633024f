"""The job runner: finds due scheduled functions and crons, in every server process.

It scans for due work, starts each job on the `JobExecutor` with bounded concurrency, fires
due crons through the `CronTable`, and sleeps until the next due time or a commit that
wrote a pending job or a cron.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from reactive_store.app.crons import Crons
from reactive_store.engine.db import DatabaseReader
from reactive_store.engine.engine import Engine
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.system_tables import CRON_JOBS, SCHEDULED_FUNCTIONS
from reactive_store.jobs.cron_table import CronTable
from reactive_store.jobs.execution import JobExecutor, now_ms
from reactive_store.keys import encode_tuple

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 30.0
COALESCE_SECONDS = 0.005
BATCH = 128
_PENDING = encode_tuple(["pending"])


class JobRunner:
    """Claims and runs due jobs with bounded concurrency; wakes on commits that touch them."""

    def __init__(self, engine: Engine, *, concurrency: int = 8,
                 on_lag: Callable[[float], None] | None = None) -> None:
        self.executor = JobExecutor(engine, on_lag)
        self.crons = CronTable(engine)
        self._engine = engine
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def on_commit(self, ts: int, writes: WriteSet) -> None:
        # Only a commit that added a pending job or touched a cron can make more work due.
        # Finishing a job writes its old pending key and its new finished key; a commit with
        # more pending keys than others added (or rescheduled) at least one job.
        keys = writes.keys.get((SCHEDULED_FUNCTIONS, "by_state"), ())
        pending = sum(key.startswith(_PENDING) for key in keys)
        if pending > len(keys) - pending or any(table == CRON_JOBS for table, _ in writes.keys):
            self._wake.set()

    @property
    def running(self) -> int:
        """Jobs this process is running now."""
        return len(self._running)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming; let running jobs finish (bounded); the rest stay pending."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                wait = await self._tick()
            except Exception:
                log.exception("the job runner failed; trying again shortly")
                wait = 1.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            await asyncio.sleep(COALESCE_SECONDS)  # one scan for a burst of commits

    async def _tick(self) -> float:
        """Start due jobs up to the free capacity, fire due crons; return how long to sleep
        (until the next due time, or until a running job finishes and frees a slot)."""
        now = now_ms()
        # Twice the concurrency in flight: a job finishing finds the next one already
        # claimed-ready, without tasks queueing by the hundred behind the semaphore.
        free = 2 * self._concurrency - len(self._running)
        due, next_job, crons, next_cron = await self._engine.read(
            lambda db: self._scan(db, now, len(self._running) + free if free > 0 else 0))
        due = [job for job in due if job["_id"] not in self._running][:max(free, 0)]
        # Every process scans the same index order: shuffled, two processes mostly start
        # different jobs instead of racing for the same rows (SKIP LOCKED sorts it out).
        random.shuffle(due)
        for job in due:
            task = asyncio.create_task(self._run_job(job))
            self._running[job["_id"]] = task
            task.add_done_callback(self._forget(job["_id"]))
        for cron_id in crons:
            await self.crons.fire(cron_id)
        if crons:
            return 0.0
        upcoming = [t for t in (next_job, next_cron) if t is not None]
        if not upcoming:
            return IDLE_POLL_SECONDS
        soonest: float = min(upcoming)
        return max(0.0, min(IDLE_POLL_SECONDS, (soonest - now_ms()) / 1000.0))

    def _forget(self, job_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)
            if len(self._running) <= self._concurrency:
                self._wake.set()  # half the places are free: claim the next due jobs

        return forget

    @staticmethod
    async def _scan(db: DatabaseReader, now: float, wanted: int
                    ) -> tuple[list[dict[str, Any]], float | None, list[str], float | None]:
        # Jobs running here stay pending (and first in the index) until they finish, so
        # `wanted` counts them too; the caller drops them.
        due = await db.system.query(SCHEDULED_FUNCTIONS).with_index(
            "by_state", lambda q: q.eq("state.kind", "pending").lte("scheduledTime", now)
        ).take(min(wanted, 4 * BATCH)) if wanted > 0 else []
        later = await db.system.query(SCHEDULED_FUNCTIONS).with_index(
            "by_state", lambda q: q.eq("state.kind", "pending").gt("scheduledTime", now)).first()
        crons = await db.system.query(CRON_JOBS).with_index(
            "by_next_run", lambda q: q.lte("nextRun", now)).take(BATCH)
        next_cron = await db.system.query(CRON_JOBS).with_index(
            "by_next_run", lambda q: q.gt("nextRun", now)).first()
        return (due, None if later is None else float(later["scheduledTime"]),
                [c["_id"] for c in crons],
                None if next_cron is None else float(next_cron["nextRun"]))

    async def _run_job(self, job: dict[str, Any]) -> None:
        async with self._slots:
            try:
                await self.executor.run(job)
            except Exception:
                log.exception("scheduled job %s could not be run", job["_id"])

    async def sync_crons(self, crons: Crons | None) -> None:
        """Make `_cron_jobs` match the declared crons (at start and on every reload)."""
        await self.crons.sync(crons)
