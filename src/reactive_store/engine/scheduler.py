"""`ctx.scheduler`: scheduling functions to run later, durably, in `_scheduled_functions`.

From a mutation a job is written in the mutation's own transaction, so it exists if and
only if the mutation commits. Arguments are validated against the target's validators
when the job is scheduled; the target itself is looked up again when the job runs (after a
hot reload it runs the new code, and a deleted function fails the job with a clear error).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from reactive_store.app.registry import FunctionSpec, Kind, Registry
from reactive_store.engine.db import SystemTableWriter
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS
from reactive_store.errors import QueryError, ValidationError

T = TypeVar("T")
SystemWrite = Callable[[str, Callable[[SystemTableWriter], Awaitable[T]]], Awaitable[T]]


def job_document(functions: Registry, fn: Any, args: Any, when_ms: float,
                 cron: str | None = None) -> dict[str, Any]:
    """A pending job for `fn(args)` at `when_ms`, checked now against the target."""
    if not isinstance(when_ms, int | float) or isinstance(when_ms, bool) or not math.isfinite(
            when_ms):
        raise ValidationError(f"scheduler: time must be a finite number, got {when_ms!r}")
    spec: FunctionSpec = functions.resolve(fn, internal_ok=True)
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


async def cancel_job(jobs: SystemTableWriter, job_id: str) -> None:
    """Cancel a job that has not started yet (a running or finished one is left alone)."""
    job = await jobs.get(job_id)
    if job is None:
        raise QueryError(f"scheduler: no scheduled function with id {job_id!r}")
    if job["state"]["kind"] == "pending":
        await jobs.patch(job_id, {"state": {"kind": "canceled"},
                                  "completedTime": time.time() * 1000.0})


class Scheduler:
    """`ctx.scheduler` in a mutation: every call writes in the mutation's transaction."""

    def __init__(self, functions: Registry, jobs: SystemTableWriter, now_ms: float) -> None:
        self._functions = functions
        self._jobs = jobs
        self._now = now_ms

    async def run_after(self, seconds: float, fn: Any, args: dict[str, Any] | None = None
                        ) -> str:
        """Run `fn(args)` `seconds` from now; returns the job id."""
        return await self.run_at(self._now + _seconds(seconds) * 1000.0, fn, args)

    async def run_at(self, ms_since_epoch: float, fn: Any, args: dict[str, Any] | None = None
                     ) -> str:
        """Run `fn(args)` at a time in ms since the epoch (now if it has passed)."""
        doc = job_document(self._functions, fn, args, ms_since_epoch)
        return await self._jobs.insert(SCHEDULED_FUNCTIONS, doc)

    async def cancel(self, job_id: str) -> None:
        """Cancel a job that has not started yet (a running or finished one is left alone)."""
        await cancel_job(self._jobs, job_id)


class ActionScheduler:
    """`ctx.scheduler` in an action: each call is its own small transaction."""

    def __init__(self, functions: Callable[[], Registry], write: SystemWrite[Any]) -> None:
        self._functions = functions
        self._write = write

    async def run_after(self, seconds: float, fn: Any, args: dict[str, Any] | None = None
                        ) -> str:
        return await self.run_at(time.time() * 1000.0 + _seconds(seconds) * 1000.0, fn, args)

    async def run_at(self, ms_since_epoch: float, fn: Any, args: dict[str, Any] | None = None
                     ) -> str:
        doc = job_document(self._functions(), fn, args, ms_since_epoch)

        async def insert(jobs: SystemTableWriter) -> str:
            return await jobs.insert(SCHEDULED_FUNCTIONS, doc)

        job_id: str = await self._write("scheduler", insert)
        return job_id

    async def cancel(self, job_id: str) -> None:
        async def cancel(jobs: SystemTableWriter) -> None:
            await cancel_job(jobs, job_id)

        await self._write("scheduler", cancel)
