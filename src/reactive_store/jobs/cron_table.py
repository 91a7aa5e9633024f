"""`_cron_jobs` kept in step with the declared crons, and due crons turned into jobs."""

from __future__ import annotations

import logging
from typing import Any

from reactive_store.app.crons import Crons
from reactive_store.engine.db import DatabaseWriter, SystemTableWriter
from reactive_store.engine.engine import Engine
from reactive_store.engine.scheduler import job_document
from reactive_store.engine.system_tables import CRON_JOBS, SCHEDULED_FUNCTIONS
from reactive_store.jobs.execution import now_ms
from reactive_store.storage import Transaction

log = logging.getLogger(__name__)


class CronTable:
    """The stored state of every cron: schedule, target, next and last run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def sync(self, crons: Crons | None) -> None:
        """Make `_cron_jobs` match the declared crons (at start and on every reload)."""
        declared = crons.jobs if crons is not None else {}
        functions = self.engine.app.functions

        async def body(jobs: SystemTableWriter) -> None:
            stored = {c["name"]: c for c in await jobs.query(CRON_JOBS).collect()}
            for name, job in declared.items():
                doc = job_document(functions, job.fn, job.args, 0.0)
                fields = {"name": name, "schedule": job.schedule, "function": doc["name"],
                          "args": doc["args"]}
                old = stored.pop(name, None)
                if old is None:
                    await jobs.insert(CRON_JOBS, {**fields, "nextRun": job.next_run(now_ms())})
                elif any(old[k] != v for k, v in fields.items()):
                    await jobs.patch(old["_id"], {**fields, "nextRun": job.next_run(now_ms())})
            for old in stored.values():
                await jobs.delete(old["_id"])

        await self.engine.write_system("crons", body)

    async def fire(self, cron_id: str) -> None:
        """Schedule one due cron run, once across processes, and move it to its next tick.

        A cron that was due several times while no server ran fires once, not once per
        missed tick: its next run is the first tick after now.
        """
        engine = self.engine

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            if await tx.lock(CRON_JOBS, cron_id) is None:
                return None, None
            jobs = SystemTableWriter(db)
            cron = await jobs.get(cron_id)
            now = now_ms()
            if cron is None or cron["nextRun"] > now:
                return None, None
            declared = engine.app.crons.jobs.get(cron["name"]) if engine.app.crons else None
            if declared is None:
                return None, None
            job = job_document(engine.app.functions, cron["function"], cron["args"], now,
                               cron=cron["name"])
            await jobs.insert(SCHEDULED_FUNCTIONS, job)
            await jobs.patch(cron_id, {"nextRun": declared.next_run(now), "lastRun": now})
            return None, None

        try:
            await engine.transact(f"cron {cron_id}", body)
        except Exception:
            log.exception("cron %s could not be scheduled", cron_id)
