"""`ctx.scheduler`: scheduling functions to run later, durably, in `_scheduled_functions`.

From a mutation a job is written in the mutation's own transaction, so it exists if and
only if the mutation commits. Arguments are validated against the target's validators
when the job is scheduled; the target itself is looked up again when the job runs (after a
hot reload it runs the new code, and a deleted function fails the job with a clear error).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from reactive_store.app.registry import FunctionSpec, Kind
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS
from reactive_store.errors import QueryError, ValidationError

if TYPE_CHECKING:
    from reactive_store.engine.db import DatabaseWriter
    from reactive_store.engine.engine import Engine


def job_document(engine: Engine, fn: Any, args: Any, when_ms: float,
                 cron: str | None = None) -> dict[str, Any]:
    """A pending job for `fn(args)` at `when_ms`, checked now against the target."""
    if not isinstance(when_ms, int | float) or isinstance(when_ms, bool) or not math.isfinite(
            when_ms):
        raise ValidationError(f"scheduler: time must be a finite number, got {when_ms!r}")
    spec: FunctionSpec = engine.app.functions.resolve(fn, internal_ok=True)
    if spec.kind is Kind.QUERY:
        raise ValidationError(f"scheduler: {spec.path} is a query; only mutations and "
                              "actions can be scheduled")
    checked = spec.args.validate({} if args is None else args)
    doc: dict[str, Any] = {"name": spec.path, "kind": spec.kind.value, "args": checked,
                           "scheduledTime": float(when_ms), "state": {"kind": "pending"}}
    if cron is not None:
        doc["cron"] = cron
    return doc


def _seconds(delay: Any) -> float:
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not math.isfinite(delay):
        raise ValidationError(f"scheduler: delay must be a number of seconds, got {delay!r}")
    return max(0.0, float(delay))


class Scheduler:
    """`ctx.scheduler` in a mutation: every call writes in the mutation's transaction."""

    def __init__(self, engine: Engine, db: DatabaseWriter, now_ms: float) -> None:
        self._engine = engine
        self._db = db
        self._now = now_ms

    async def run_after(self, seconds: float, fn: Any, args: dict[str, Any] | None = None
                        ) -> str:
        """Run `fn(args)` `seconds` from now; returns the job id."""
        return await self.run_at(self._now + _seconds(seconds) * 1000.0, fn, args)

    async def run_at(self, ms_since_epoch: float, fn: Any, args: dict[str, Any] | None = None
                     ) -> str:
        """Run `fn(args)` at a time in ms since the epoch (now if it has passed)."""
        doc = job_document(self._engine, fn, args, ms_since_epoch)
        return await self._db._insert(SCHEDULED_FUNCTIONS, doc, system=True)

    async def cancel(self, job_id: str) -> None:
        """Cancel a job that has not started yet (a running or finished one is left alone)."""
        await cancel_job(self._db, job_id)


async def cancel_job(db: DatabaseWriter, job_id: str) -> None:
    job = await db.system.get(job_id)
    if job is None:
        raise QueryError(f"scheduler: no scheduled function with id {job_id!r}")
    if job["state"]["kind"] == "pending":
        await db._patch(job_id, {"state": {"kind": "canceled"},
                                 "completedTime": time.time() * 1000.0}, system=True)


class ActionScheduler:
    """`ctx.scheduler` in an action: each call is its own small transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def run_after(self, seconds: float, fn: Any, args: dict[str, Any] | None = None
                        ) -> str:
        return await self.run_at(time.time() * 1000.0 + _seconds(seconds) * 1000.0, fn, args)

    async def run_at(self, ms_since_epoch: float, fn: Any, args: dict[str, Any] | None = None
                     ) -> str:
        doc = job_document(self._engine, fn, args, ms_since_epoch)

        async def body(db: DatabaseWriter, tx: Any) -> tuple[Any, Any]:
            job_id = await db._insert(SCHEDULED_FUNCTIONS, doc, system=True)
            return job_id, job_id

        outcome = await self._engine.transact("scheduler", body)
        job_id: str = outcome.value
        return job_id

    async def cancel(self, job_id: str) -> None:
        async def body(db: DatabaseWriter, tx: Any) -> tuple[Any, Any]:
            await cancel_job(db, job_id)
            return None, None

        await self._engine.transact("scheduler", body)
