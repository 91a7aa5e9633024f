"""The job runner: finds due scheduled functions and crons, in every server process.

It scans for due work, starts batch workers for due mutations (`MutationBatch`, each batch
on one stripe of the job table) and tasks for due actions (`JobExecutor`), both bounded,
fires due crons through the `CronTable`, and sleeps until the next due time or a commit that
wrote a pending job or a cron.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from reactive_store.app.crons import Crons
from reactive_store.engine.db import DatabaseReader, document_from_row
from reactive_store.engine.engine import Engine
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.system_tables import CRON_JOBS, SCHEDULED_FUNCTIONS
from reactive_store.errors import ConflictError
from reactive_store.jobs.batch import PENDING, JobFailed, MutationBatch, due_range
from reactive_store.jobs.cron_table import CronTable
from reactive_store.jobs.execution import JobExecutor, now_ms
from reactive_store.storage.job_claims import (
    DueJob,
    LockBudget,
    due_jobs,
    lock_budget,
    stripe_of,
)
from reactive_store.storage.store import CommitOutcomeUnknown, DatabaseUnavailable

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 30.0
# The runner wakes this long before the next job is due and scans then, so the batch can
# start at the due time itself rather than a scan later.
SCAN_AHEAD_MS = 5.0
COALESCE_SECONDS = 0.005
RECHECK_SECONDS = 0.25  # while due jobs are pending that this process could not claim
BATCH = 128
# Due jobs one scan names at most: enough for every stripe's next batches, since jobs in
# batches stay pending (and first in the index) until their batches commit.
SCAN_LIMIT = 4096
# Batches one process runs at once, each on its own stripe: two let one batch's COMMIT
# (Postgres's work) overlap the next batch's functions (this process's work); more stripes
# than this leave the rest to the other processes.
PROCESS_BATCHES = 2


class JobRunner:
    """Runs due jobs with bounded concurrency; wakes on commits that touch them.

    Mutation jobs are run by batch workers, each a loop of one transaction per batch of up
    to `batch_size` jobs (`batch.py`) from one stripe of the job table; `batch_slots`
    stripes, so at most that many batches at once in the whole deployment (at most
    PROCESS_BATCHES of them in one process). Action jobs run one by one, at most
    `concurrency` at a time (`execution.py`).
    """

    def __init__(self, engine: Engine, *, concurrency: int = 8, batch_size: int = 512,
                 batch_slots: int = 4, on_lag: Callable[[float], None] | None = None) -> None:
        if min(concurrency, batch_size, batch_slots) < 1:
            raise ValueError(f"job runner: concurrency, batch size and batch slots must be "
                             f"at least 1, got {concurrency}, {batch_size} and {batch_slots}")
        self.executor = JobExecutor(engine, on_lag)
        self.batches = MutationBatch(engine, on_lag)
        self.crons = CronTable(engine)
        self._engine = engine
        self._concurrency = concurrency
        self._batch_slots = batch_slots  # the job table's stripes (batch.py)
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)  # actions running at once
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}  # action jobs, by job id
        self._workers: set[asyncio.Task[None]] = set()  # batch loops; PROCESS_BATCHES at most
        # Due mutation jobs found by a scan, by stripe, in the order this process will try
        # them: a scan adds those not here yet, a worker takes the first `batch_size` of a
        # stripe, and an id leaves `_mine` once its batch has ended (committed, rolled back
        # or left it).
        self._queues: dict[int, deque[DueJob]] = {}
        self._mine: set[str] = set()  # queued or in a batch of this process
        self._active: set[int] = set()  # stripes a worker of this process is running
        self._held: set[int] = set()  # stripes found held by another process since the scan
        self._in_batches = 0  # mutation jobs in batches not yet ended
        self._batch_ended = False  # a batch ran since the last scan
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ahead: float | None = None  # the due time an early wake-up is for (ms)
        self._budget: LockBudget | None = None  # the server's, read at the first scan

    def on_commit(self, ts: int, writes: WriteSet) -> None:
        # Only a commit that added a pending job or touched a cron can make more work due.
        # Finishing a job writes its old pending key and its new finished key; a commit with
        # more pending keys than others added (or rescheduled) at least one job. While jobs
        # wait here on stripes another process held, any commit of job states may be that
        # process's batch ending: look again then, not at the next recheck.
        keys = writes.keys.get((SCHEDULED_FUNCTIONS, "by_state"), ())
        pending = sum(key.startswith(PENDING) for key in keys)
        if (pending > len(keys) - pending or (keys and self._held)
                or any(table == CRON_JOBS for table, _ in writes.keys)):
            self._wake.set()

    @property
    def running(self) -> int:
        """Jobs this process is running now."""
        return len(self._running) + self._in_batches

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming; let running jobs finish (bounded); the rest stay pending."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        running = [*self._running.values(), *self._workers]
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
            if wait > 0 and not await self._woken_within(wait):
                continue  # a due time came: no burst of commits to wait out
            if self._batch_ended:
                self._batch_ended = False
                continue  # more may be due at once: scan now
            await asyncio.sleep(COALESCE_SECONDS)  # one scan for a burst of commits

    async def _woken_within(self, seconds: float) -> bool:
        """Wait for a wake-up (a commit, a finished batch) for at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
                return True
        return False

    async def _tick(self) -> float:
        """Start batch workers for due mutations and tasks for due actions up to the free
        capacity, fire due crons; return how long to sleep (until the next due time, or
        until a worker or an action finishes)."""
        now = now_ms()
        # Woken ahead of a due time: mutations due by then are queued now (their batch
        # waits for it, `_work`); actions and crons only once due.
        until = now
        if self._ahead is not None and self._ahead - now <= 2 * SCAN_AHEAD_MS:
            until = max(now, self._ahead)
        self._ahead = None
        # Twice the concurrency of actions in flight: one finishing finds the next one
        # ready, without tasks queueing by the hundred behind the semaphore.
        free = 2 * self._concurrency - len(self._running)
        wanted = self._batch_slots * self._batch_size * 2 + len(self._running) + max(free, 0)
        if self._budget is None:
            self._budget = await self._engine.read(lambda db: lock_budget(db.reads.tx))
        due, actions, next_job, crons, next_cron = await self._engine.read(
            lambda db: self._scan(db, now, wanted, until))
        for found in due:
            if found.id not in self._mine:
                self._queues.setdefault(stripe_of(found, self._batch_slots), deque()).append(found)
                self._mine.add(found.id)
        self._held.clear()
        workers = min(min(PROCESS_BATCHES, self._batch_slots) - len(self._workers),
                      len(self._free_stripes()))
        for _ in range(workers):
            task = asyncio.create_task(self._work())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        early = [float(job["scheduledTime"]) for job in actions if job["scheduledTime"] > now]
        actions = [job for job in actions
                   if job["_id"] not in self._running and job["scheduledTime"] <= now]
        # Every process scans the same index order: shuffled, two processes mostly take
        # different actions instead of racing for the same rows.
        random.shuffle(actions)
        for job in actions[:max(free, 0)]:
            task = asyncio.create_task(self._run_action(job))
            self._running[job["_id"]] = task
            task.add_done_callback(self._forget(job["_id"]))
        for cron_id in crons:
            await self.crons.fire(cron_id)
        if crons:
            return 0.0
        # Due jobs still pending after a scan may be held by another process (which may
        # die holding them) or by a batch that failed: look again soon.
        upcoming = [t for t in (next_job, next_cron, *early) if t is not None]
        idle = RECHECK_SECONDS if due or actions else IDLE_POLL_SECONDS
        if not upcoming:
            return idle
        soonest: float = min(upcoming)
        wait = soonest - now_ms()
        if soonest == next_job and wait > SCAN_AHEAD_MS:
            self._ahead, wait = soonest, wait - SCAN_AHEAD_MS
        return max(0.0, min(idle, wait / 1000.0))

    def _free_stripes(self) -> list[int]:
        """Stripes with queued jobs that no worker here runs and no other process held."""
        return [stripe for stripe, queue in self._queues.items()
                if queue and stripe not in self._active and stripe not in self._held]

    def _take(self, stripe: int) -> list[DueJob]:
        """The next batch of a stripe: at most `batch_size` jobs, and with more than one
        stripe no more rows than the server's predicate-lock budget covers (batch.py)."""
        budget = self._budget or LockBudget()
        queue = self._queues[stripe]
        jobs: list[DueJob] = []
        rows: dict[int, int] = {}  # rows taken, by heap page
        locks = 0
        while queue and len(jobs) < self._batch_size:
            block = queue[0].block
            added = budget.added(rows.get(block, 0))
            if self._batch_slots > 1 and locks + added > budget.locks:
                break
            locks += added
            rows[block] = rows.get(block, 0) + 1
            jobs.append(queue.popleft())
        return jobs

    async def _work(self) -> None:
        """Run batches of queued mutation jobs, a stripe at a time, until no stripe is free
        (or the runner stops).

        A job that raised in a batch, and every job of a batch that kept conflicting, runs
        on its own (`JobExecutor`: its outcome recorded as always)."""
        ran = 0
        while not self._stopping:
            free = self._free_stripes()
            if not free:
                break
            # Every process scans the same jobs: a random stripe, so that two processes
            # mostly start on different ones instead of racing for the same lock.
            stripe = random.choice(free)
            jobs = self._take(stripe)
            self._active.add(stripe)
            self._in_batches += len(jobs)
            back: list[DueJob] = []  # still pending, to try next
            try:
                # Queued by a scan ahead of their due time: start right at the first one's
                # (any due later are left out by the lock, and found by the next scan).
                wait = min(job.due for job in jobs) - now_ms()
                if wait > 0:
                    await asyncio.sleep(wait / 1000.0 + 0.0002)
                result = await self.batches.run(jobs, stripe)
                ran += result.ran
                left = set(result.left)
                back = [job for job in jobs if job.id in left]
                if result.busy:
                    self._held.add(stripe)  # another process's batch: look again later
            except JobFailed as failed:
                await self._run_single(failed.job)
                back = [job for job in jobs if job.id != failed.job["_id"]]
            except ConflictError:
                # Conflicts with other work on every attempt: each job on its own instead,
                # so that only the one that keeps conflicting ends up recorded failed.
                for job in self.batches.last_claimed:
                    await self._run_single(job)
            except (DatabaseUnavailable, CommitOutcomeUnknown):
                # Nothing of it committed, or all of it did: either way no job is lost or
                # repeated; the next scan finds what is still pending.
                log.warning("a batch of scheduled mutations was cut off by the database")
                break
            except Exception:
                log.exception("a batch of scheduled mutations could not be run")
                break
            finally:
                self._active.discard(stripe)
                self._in_batches -= len(jobs)
                self._mine.difference_update(job.id for job in jobs)
            self._queues[stripe].extendleft(reversed(back))
            self._mine.update(job.id for job in back)
        if ran:
            self._batch_ended = True  # rescan: more may be due, or due soon
            self._wake.set()

    async def _run_single(self, job: dict[str, Any]) -> None:
        try:
            await self.executor.run(job)
        except Exception:
            log.exception("scheduled job %s could not be run", job["_id"])

    def _forget(self, job_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)
            if len(self._running) == self._concurrency:
                self._wake.set()  # half the places are free: start the next due actions

        return forget

    @staticmethod
    async def _scan(db: DatabaseReader, now: float, wanted: int, until: float) -> tuple[
            list[DueJob], list[dict[str, Any]], float | None, list[str], float | None]:
        """Jobs due by `until` (mutations by id, actions as documents), the next due time
        after it, crons due by `now` and the next cron's time, from one snapshot."""
        # Jobs running here stay pending (and first in the index) until they finish, so
        # `wanted` counts them too; the caller drops them. Only the actions' documents are
        # decoded: hundreds of due mutations cost a scan of ids (a batch locks and reads them).
        due, rows = await due_jobs(db.reads.tx, SCHEDULED_FUNCTIONS, *due_range(until),
                                   min(wanted, SCAN_LIMIT)) if wanted > 0 else ([], [])
        actions = [document_from_row(row.id, row.creation_time, row.doc) for row in rows]
        later = await db.system.query(SCHEDULED_FUNCTIONS).with_index(
            "by_state", lambda q: q.eq("state.kind", "pending").gt("scheduledTime", until)
        ).first()
        crons = await db.system.query(CRON_JOBS).with_index(
            "by_next_run", lambda q: q.lte("nextRun", now)).take(BATCH)
        next_cron = await db.system.query(CRON_JOBS).with_index(
            "by_next_run", lambda q: q.gt("nextRun", now)).first()
        return (due, actions, None if later is None else float(later["scheduledTime"]),
                [c["_id"] for c in crons],
                None if next_cron is None else float(next_cron["nextRun"]))

    async def _run_action(self, job: dict[str, Any]) -> None:
        async with self._slots:
            await self._run_single(job)

    async def sync_crons(self, crons: Crons | None) -> None:
        """Make `_cron_jobs` match the declared crons (at start and on every reload)."""
        await self.crons.sync(crons)
