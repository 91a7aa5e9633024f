"""Due scheduled mutations claimed and run several to one transaction, each exactly once.

The runner's read-only scan picks the candidates, by id and row version (ctid); one
SERIALIZABLE transaction locks those still pending and due with a single statement (`FOR
UPDATE SKIP LOCKED`), runs each job's mutation and marks it succeeded, then commits: a job
costs its own statements, not a transaction of its own. Exactly once holds as for a single
job (`execution.py`): the row lock, the mutation's writes and the success mark share one
transaction, so they commit together or not at all.

Batches run side by side, each on its own stripe of the job table (the runner's
`batch_slots` stripes, default 4): a stripe is the heap pages whose number modulo the
stripe count is the stripe's, taken with a transaction-scoped advisory lock (a batch gives
up at once when its stripe is held). Two SERIALIZABLE transactions that read and rewrite
job rows on the same pages, or through the same index pages, form a read/write cycle and
one is rolled back: with 1,000 due jobs that was nearly every pair of concurrent batches
reading rows by id. A batch here reads and rewrites its rows by ctid only (TID scans:
storage/job_claims.py and storage/pending_writes.py), taking no more of its stripe's rows
than the server's predicate-lock budget covers (`LockBudget`): its predicate locks then
cover those heap pages and nothing another batch writes, and none of them conflict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reactive_store.app.registry import Kind
from reactive_store.engine.db import (
    DatabaseWriter,
    StoredVersion,
    SystemTableWriter,
    document_from_row,
)
from reactive_store.engine.engine import Engine, seed_of
from reactive_store.engine.environment import StaleEnvironment
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS, SYSTEM_TABLES
from reactive_store.jobs.execution import now_ms
from reactive_store.keys import TOP, encode_tuple
from reactive_store.observe.observer import ExecutionScope, source
from reactive_store.schema import BY_ID, all_indexes, id_key
from reactive_store.storage import Transaction, TransientConflict
from reactive_store.storage.job_claims import DueJob, lock_due, take_stripe
from reactive_store.storage.store import DatabaseUnavailable

PENDING = encode_tuple(["pending"])  # the `by_state` key prefix of pending jobs
# A batch stops starting jobs after this long: a slow job delays the others in its batch
# (and holds their row locks) for at most about this, plus its own time limit.
BUDGET_SECONDS = 0.2


class JobFailed(Exception):
    """One job of a batch raised: the batch is rolled back and that job runs on its own
    (`JobExecutor.run`, which records the failure as it always has)."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"scheduled job {job['_id']} failed in a batch")
        self.job = job


def due_range(now: float) -> tuple[bytes, bytes]:
    """The `by_state` keys of pending jobs scheduled at or before `now` (ms)."""
    return PENDING, encode_tuple(["pending", float(now)]) + TOP


@dataclass
class _Attempt:
    """What one attempt of a batch transaction claimed and ran (reset on every retry)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)  # claimed, in due order
    ran: int = 0  # the first `ran` of them ran; the rest stay pending (time budget)
    scopes: list[ExecutionScope] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)


@dataclass
class BatchResult:
    """What a committed batch did: the jobs it ran, and the ones it left pending (not
    reached within the time budget; all of them when every slot was busy)."""

    ran: int
    left: list[str]
    busy: bool = False


class MutationBatch:
    """Claims and runs batches of due mutation jobs for one process's runner."""

    def __init__(self, engine: Engine, on_lag: Callable[[float], None] | None = None,
                 budget_seconds: float = BUDGET_SECONDS) -> None:
        self.engine = engine
        self.on_lag = on_lag
        self.budget_seconds = budget_seconds
        self.last_claimed: list[dict[str, Any]] = []  # the last attempt's jobs
        # Read with each locked job: its success mark then encodes no old key again.
        self._indexes = list(all_indexes(SYSTEM_TABLES[SCHEDULED_FUNCTIONS]))

    async def run(self, jobs: list[DueJob], stripe: int = 0) -> BatchResult:
        """Take `stripe` (all of `jobs` lie in it), lock those of `jobs` still pending and
        due that no one else holds, run them in one transaction and commit. Once the batch
        has run for `budget_seconds`, the jobs not yet started are left pending (the result
        names them).

        Raises JobFailed (nothing committed) when one of them raised; TransientConflict
        retries happen inside (`Engine.transact`), which raises ConflictError past them."""
        attempt = _Attempt()
        clock = asyncio.get_running_loop().time

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            nonlocal attempt
            attempt = _Attempt()
            if not await take_stripe(tx, stripe):
                return None, None  # another batch is running on this stripe
            locked = await lock_due(tx, SCHEDULED_FUNCTIONS, jobs, *due_range(now_ms()),
                                    indexes=self._indexes)
            attempt.jobs = [document_from_row(job.row.id, job.row.creation_time, job.row.doc)
                            for job in locked]
            self.last_claimed = attempt.jobs
            stop = clock() + self.budget_seconds
            for job, lock in zip(attempt.jobs, locked, strict=True):
                if attempt.ran and clock() > stop:
                    break
                stored = StoredVersion(lock.row.doc, lock.keys, lock.tid)
                await self._run_one(db, tx, job, stored, attempt)
                attempt.ran += 1
            return attempt.ran, None

        outcome = await self.engine.transact("scheduled batch", body)
        if outcome.value is None:
            return BatchResult(0, [job.id for job in jobs], busy=True)
        for scope in attempt.scopes:
            scope.run.retries = outcome.retries
            scope.record()
        if self.on_lag is not None:
            for lag in attempt.lags:
                self.on_lag(lag)
        return BatchResult(attempt.ran, [job["_id"] for job in attempt.jobs[attempt.ran:]])

    async def _run_one(self, db: DatabaseWriter, tx: Transaction, job: dict[str, Any],
                       stored: StoredVersion, attempt: _Attempt) -> None:
        engine = self.engine
        attempt.lags.append((now_ms() - float(job["scheduledTime"])) / 1000.0)
        writer = engine.writer(tx)
        with source("Cron" if job.get("cron") else "Scheduler", admin=False):
            scope = engine.observer.execution(job["name"], "mutation", None, deferred=True)
            try:
                with scope:
                    spec, checked = engine.prepare(job["name"], job["args"], Kind.MUTATION,
                                                   internal_ok=True)
                    ctx = engine.mutation_ctx(writer, None, seed_of(str(spec.path),
                                                                    job["_id"]), {})
                    value, _ = await engine.call(spec, ctx, checked)
            except StaleEnvironment:
                raise JobFailed(job) from None  # the single path re-runs with fresh values
            except (TransientConflict, DatabaseUnavailable):
                raise  # the whole batch runs again
            except Exception as exc:
                # Rolled back with the batch; had the job broken the transaction by a
                # conflict, storage turns this into TransientConflict and the batch reruns.
                raise JobFailed(job) from exc
        if _wrote(db, job["_id"]) or _wrote(writer, job["_id"]):
            # A job of the batch wrote it: its ctid names a dead version now.
            stored = StoredVersion(stored.raw, stored.keys)
        await SystemTableWriter(writer).patch(
            job["_id"], {"state": {"kind": "success"}, "result": value,
                         "completedTime": now_ms()}, current=job, stored=stored)
        merge(db, writer)
        attempt.scopes.append(scope)


def _wrote(db: DatabaseWriter, job_id: str) -> bool:
    return id_key(job_id) in db.writes.keys.get((SCHEDULED_FUNCTIONS, BY_ID), ())


def merge(into: DatabaseWriter, one: DatabaseWriter) -> None:
    """Add one job's writes (and before-images) to the transaction's, which are committed."""
    for ref, keys in one.writes.keys.items():
        into.writes.keys.setdefault(ref, set()).update(keys)
    if into.before is not None and one.before:
        for key, image in one.before.items():
            into.before.setdefault(key, image)  # an earlier job's image is the older one
