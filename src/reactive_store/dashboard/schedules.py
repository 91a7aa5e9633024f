"""The Schedules page's system functions: scheduled functions by state, cancel, and crons.

All of it reads the system tables `_scheduled_functions` and `_cron_jobs` through
`ctx.db.system`, so it is live: a job that starts, finishes or is canceled, and a cron that
fires, re-run the page's queries. Cancel is the scheduler's own `cancel` in a mutation:
only a job that has not started can be canceled.
"""

from __future__ import annotations

from typing import Any

from reactive_store.app.registry import FunctionSpec, internal_mutation, internal_query
from reactive_store.dashboard.readable import preview, to_text
from reactive_store.deployment import Deployment
from reactive_store.engine.db import SystemTableWriter
from reactive_store.engine.scheduler import cancel_job
from reactive_store.engine.system_tables import CRON_JOBS, JOB_STATES, SCHEDULED_FUNCTIONS
from reactive_store.errors import ConvexError, ReactiveStoreError
from reactive_store.validators import v

MAX_ROWS = 500
HISTORY = 10  # runs shown per cron


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    state = job["state"]
    return {"id": job["_id"], "name": job["name"], "kind": job["kind"],
            "state": state["kind"], "error": state.get("error"),
            "scheduledTime": job["scheduledTime"], "completedTime": job.get("completedTime"),
            "creationTime": job["_creationTime"], "cron": job.get("cron"),
            "args": preview(job["args"]), "argsJson": to_text(job["args"]),
            "result": None if "result" not in job else preview(job["result"])}


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    @internal_query(args={"state": v.optional(v.string()), "limit": v.optional(v.float64())})
    async def jobs(ctx: Any, state: str | None = None, limit: float | None = None
                   ) -> list[dict[str, Any]]:
        """Scheduled functions, in one state (soonest first) or all (newest first)."""
        n = max(1, min(int(limit or 100), MAX_ROWS))
        table = ctx.db.system.query(SCHEDULED_FUNCTIONS)
        if state:
            if state not in JOB_STATES:
                raise ConvexError(f"state must be one of {', '.join(JOB_STATES)}, not "
                                  f"{state!r}")
            order = "asc" if state == "pending" else "desc"
            found = await table.with_index("by_state", lambda q: q.eq("state.kind", state)
                                           ).order(order).take(n)
        else:
            found = await table.order("desc").take(n)
        return [job_row(job) for job in found]

    @internal_mutation(args={"id": v.string()})
    async def cancel(ctx: Any, id: str) -> str:
        """Cancel a pending job; say what state it is in (a started job is left alone)."""
        jobs = SystemTableWriter(ctx.db)
        try:
            job = await jobs.get(id)
        except ReactiveStoreError as exc:
            raise ConvexError(f"cannot cancel {id!r}: {exc.message}") from None
        if job is None:
            raise ConvexError(f"cannot cancel {id!r}: there is no such scheduled function")
        state: str = job["state"]["kind"]
        if state != "pending":
            raise ConvexError(f"the job is {state} already: only a pending job can be "
                              "canceled")
        await cancel_job(jobs, id)
        return "canceled"

    @internal_query(args={})
    async def crons(ctx: Any) -> list[dict[str, Any]]:
        """Every cron with its schedule, last and next run, and its recent runs."""
        out = []
        for cron in await ctx.db.system.query(CRON_JOBS).with_index("by_name").collect():
            runs = await ctx.db.system.query(SCHEDULED_FUNCTIONS).with_index(
                "by_cron", lambda q, name=cron["name"]: q.eq("cron", name)
            ).order("desc").take(HISTORY)
            out.append({"id": cron["_id"], "name": cron["name"],
                        "schedule": cron["schedule"], "function": cron["function"],
                        "args": preview(cron["args"]), "nextRun": cron["nextRun"],
                        "lastRun": cron.get("lastRun"), "history": [job_row(j) for j in runs]})
        return out

    return {"jobs": jobs, "cancel": cancel, "crons": crons}
