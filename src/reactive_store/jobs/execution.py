"""Running one due job: a mutation exactly once, an action at most once.

Exactly once for mutations: a job is locked (FOR UPDATE SKIP LOCKED) inside the very
transaction that runs its mutation and records its success, so another process either skips
it or, having read it pending before, fails serialization and sees it done. At most once for
actions: the job is marked inProgress in one transaction, the action runs outside any, and
its outcome is recorded in another; an action that fails is not retried by us.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from reactive_store import values
from reactive_store.engine.db import DatabaseWriter, SystemTableWriter, document_from_row
from reactive_store.engine.engine import Engine, MutationHooks, Outcome
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS
from reactive_store.errors import FunctionNotFound
from reactive_store.failures import error_body
from reactive_store.observe.observer import source
from reactive_store.storage import Transaction
from reactive_store.storage.store import CommitOutcomeUnknown, DatabaseUnavailable

log = logging.getLogger(__name__)


def now_ms() -> float:
    return time.time() * 1000.0


async def claim(tx: Transaction, job_id: str) -> dict[str, Any] | None:
    """The job, locked until the end of `tx`, if it is still pending and no one holds it."""
    row = await tx.lock(SCHEDULED_FUNCTIONS, job_id)
    if row is None:
        return None  # another process holds it
    job = document_from_row(row.id, row.creation_time, row.doc)
    return job if job["state"]["kind"] == "pending" else None


class JobExecutor:
    """Runs scheduled functions through the engine and records each one's outcome."""

    def __init__(self, engine: Engine, on_lag: Callable[[float], None] | None = None) -> None:
        self.engine = engine
        self.on_lag = on_lag  # seconds from a job's scheduled time to its start (metrics)

    async def run(self, job: dict[str, Any]) -> None:
        """Run one due job (as scanned); failures are recorded on the job, never raised."""
        if self.on_lag is not None:
            self.on_lag((now_ms() - float(job["scheduledTime"])) / 1000.0)
        with source("Cron" if job.get("cron") else "Scheduler", admin=False):
            if job["kind"] == "mutation":
                await self._run_mutation(job["_id"], job["name"], job["args"])
            else:
                await self._run_action(job["_id"])

    async def _run_mutation(self, job_id: str, name: str, args: Any) -> None:
        claimed: dict[str, Any] = {}

        async def before(db: DatabaseWriter, tx: Transaction) -> Outcome | None:
            job = await claim(tx, job_id)
            if job is None:
                return Outcome(None, None)
            claimed["job"] = job
            return None

        async def after(db: DatabaseWriter, value: Any) -> None:
            await SystemTableWriter(db).patch(
                job_id, {"state": {"kind": "success"}, "result": value,
                         "completedTime": now_ms()}, current=claimed["job"])

        try:
            await self.engine.run_mutation(name, args, None, internal_ok=True, seed=job_id,
                                           hooks=MutationHooks(before=before, after=after),
                                           timestamp=False)
        except (DatabaseUnavailable, CommitOutcomeUnknown):
            # Not the job's fault: it stays pending (or, had it committed, is done already,
            # its success recorded in the same transaction) and runs when the database is back.
            log.warning("scheduled mutation %s was cut off by the database; it stays due", job_id)
        except Exception as exc:
            await self._finish(job_id, None, exc, expect="pending")

    async def _run_action(self, job_id: str) -> None:
        async def mark_started(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any] | Outcome:
            job = await claim(tx, job_id)
            if job is None:
                return Outcome(None, None)
            await SystemTableWriter(db).patch(job_id, {"state": {"kind": "inProgress"}},
                                              current=job)
            return job, None

        job = (await self.engine.transact(f"scheduled {job_id}", mark_started)).value
        if job is None:
            return
        try:
            outcome = await self.engine.run_action(job["name"], job["args"], None,
                                                   internal_ok=True)
        except Exception as exc:
            await self._finish(job_id, None, exc, expect="inProgress")
        else:
            await self._finish(job_id, outcome.value, None, expect="inProgress")

    async def _finish(self, job_id: str, value: Any, error: BaseException | None,
                      expect: str) -> None:
        message: str | None = None
        if isinstance(error, FunctionNotFound):
            message = f"the scheduled function no longer exists: {error.message}"
        elif error is not None:
            message = str(error_body(error)["errorMessage"])

        async def record(jobs: SystemTableWriter) -> None:
            job = await jobs.get(job_id)
            if job is None or job["state"]["kind"] != expect:
                return
            fields: dict[str, Any] = {"completedTime": now_ms()}
            if message is None:
                fields |= {"state": {"kind": "success"},
                           "result": values.decode(values.encode(value))}
            else:
                fields["state"] = {"kind": "failed", "error": message}
            await jobs.patch(job_id, fields)

        await self.engine.write_system(f"scheduled {job_id}", record)
