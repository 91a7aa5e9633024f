"""The job runner: runs due scheduled functions and crons, in every server process.

Exactly once for mutations: a job is locked (FOR UPDATE SKIP LOCKED) inside the very
transaction that runs its mutation and records its success, so another process either skips
it or, having read it pending before, fails serialization and sees it done. At most once for
actions: the job is marked inProgress in one transaction, the action runs outside any, and
its outcome is recorded in another; an action that fails is not retried by us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from reactive_store import values
from reactive_store.app.crons import Crons
from reactive_store.app.registry import Kind
from reactive_store.engine.db import DatabaseReader, DatabaseWriter
from reactive_store.engine.engine import Engine, Outcome
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.scheduler import job_document
from reactive_store.engine.system_tables import CRON_JOBS, SCHEDULED_FUNCTIONS
from reactive_store.errors import FunctionNotFound
from reactive_store.keys import encode_tuple
from reactive_store.storage import Transaction
from reactive_store.sync.protocol import error_body

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 30.0
COALESCE_SECONDS = 0.005
BATCH = 128
_PENDING = encode_tuple(["pending"])


def _now() -> float:
    return time.time() * 1000.0


class JobRunner:
    """Claims and runs due jobs with bounded concurrency; wakes on commits that touch them."""

    def __init__(self, engine: Engine, *, concurrency: int = 8) -> None:
        self.engine = engine
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def on_commit(self, ts: int, writes: WriteSet) -> None:
        # Only a commit that wrote a pending job's key (a new or rescheduled job; finishing
        # one writes its old pending key too, which is harmless) or a cron can change what
        # is due; jobs finishing would otherwise wake the loop once each.
        pending = writes.keys.get((SCHEDULED_FUNCTIONS, "by_state"), ())
        if any(key.startswith(_PENDING) for key in pending) or any(
                table == CRON_JOBS for table, _ in writes.keys):
            self._wake.set()

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
        """Start every due job and cron; return how long to sleep before the next one."""
        now = _now()
        due, next_job, crons, next_cron = await self.engine.read(
            lambda db: self._scan(db, now))
        for job in due:
            if job["_id"] not in self._running and len(self._running) < 4 * BATCH:
                task = asyncio.create_task(self._run_job(job["_id"], job["kind"]))
                self._running[job["_id"]] = task
                task.add_done_callback(self._forget(job["_id"]))
        for cron_id in crons:
            await self._fire_cron(cron_id)
        upcoming = [t for t in (next_job, next_cron) if t is not None]
        if len(due) >= BATCH or crons:
            return 0.0
        if not upcoming:
            return IDLE_POLL_SECONDS
        soonest: float = min(upcoming)
        return max(0.0, min(IDLE_POLL_SECONDS, (soonest - _now()) / 1000.0))

    def _forget(self, job_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)

        return forget

    @staticmethod
    async def _scan(db: DatabaseReader, now: float
                    ) -> tuple[list[dict[str, Any]], float | None, list[str], float | None]:
        jobs = db.system.query(SCHEDULED_FUNCTIONS)
        due = await jobs.with_index("by_state", lambda q: q.eq("state.kind", "pending")
                                    .lte("scheduledTime", now)).take(BATCH)
        later = await db.system.query(SCHEDULED_FUNCTIONS).with_index(
            "by_state", lambda q: q.eq("state.kind", "pending").gt("scheduledTime", now)).first()
        crons = await db.system.query(CRON_JOBS).with_index(
            "by_next_run", lambda q: q.lte("nextRun", now)).take(BATCH)
        next_cron = await db.system.query(CRON_JOBS).with_index(
            "by_next_run", lambda q: q.gt("nextRun", now)).first()
        return (due, None if later is None else float(later["scheduledTime"]),
                [c["_id"] for c in crons],
                None if next_cron is None else float(next_cron["nextRun"]))

    # -- running jobs ---------------------------------------------------------------------
    async def _run_job(self, job_id: str, kind: str) -> None:
        async with self._slots:
            try:
                if kind == "mutation":
                    await self._run_mutation_job(job_id)
                else:
                    await self._run_action_job(job_id)
            except Exception:
                log.exception("scheduled job %s could not be run", job_id)

    async def _claim(self, db: DatabaseWriter, tx: Transaction, job_id: str
                     ) -> dict[str, Any] | None:
        row = await tx.lock(SCHEDULED_FUNCTIONS, job_id)
        if row is None:
            return None  # another process holds it
        job = db._decode(row)
        return job if job["state"]["kind"] == "pending" else None

    async def _run_mutation_job(self, job_id: str) -> None:
        engine = self.engine

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any] | Outcome:
            job = await self._claim(db, tx, job_id)
            if job is None:
                return Outcome(None, None)
            spec = engine.app.functions.resolve(job["name"], kind=Kind.MUTATION,
                                                internal_ok=True)
            checked = spec.args.validate(job["args"])
            value, encoded = await engine._call(spec, engine.mutation_ctx(db, None), checked)
            await db._patch(job_id, {"state": {"kind": "success"}, "result": value,
                                     "completedTime": _now()}, system=True, current=job)
            return value, encoded

        try:
            await engine.transact(f"scheduled {job_id}", body)
        except Exception as exc:
            await self._finish(job_id, None, exc, expect="pending")

    async def _run_action_job(self, job_id: str) -> None:
        engine = self.engine

        async def claim(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any] | Outcome:
            job = await self._claim(db, tx, job_id)
            if job is None:
                return Outcome(None, None)
            await db._patch(job_id, {"state": {"kind": "inProgress"}}, system=True, current=job)
            return job, None

        claimed = await engine.transact(f"scheduled {job_id}", claim)
        job = claimed.value
        if job is None:
            return
        try:
            spec = engine.app.functions.resolve(job["name"], kind=Kind.ACTION, internal_ok=True)
            outcome = await engine.run_action(spec, job["args"], None, internal_ok=True)
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

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            job = await db.system.get(job_id)
            if job is None or job["state"]["kind"] != expect:
                return None, None
            fields: dict[str, Any] = {"completedTime": _now()}
            if message is None:
                fields |= {"state": {"kind": "success"}, "result": values.decode(
                    values.encode(value))}
            else:
                fields["state"] = {"kind": "failed", "error": message}
            await db._patch(job_id, fields, system=True)
            return None, None

        await self.engine.transact(f"scheduled {job_id}", body)

    # -- crons ------------------------------------------------------------------------------
    async def sync_crons(self, crons: Crons | None) -> None:
        """Make `_cron_jobs` match the declared crons (at start and on every reload)."""
        declared = crons.jobs if crons is not None else {}
        engine = self.engine

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            stored = {c["name"]: c for c in await db.system.query(CRON_JOBS).collect()}
            for name, job in declared.items():
                doc = job_document(engine, job.fn, job.args, 0.0)
                fields = {"name": name, "schedule": job.schedule, "function": doc["name"],
                          "args": doc["args"]}
                old = stored.pop(name, None)
                if old is None:
                    await db._insert(CRON_JOBS, {**fields, "nextRun": job.next_run(_now())},
                                     system=True)
                elif any(old[k] != v for k, v in fields.items()):
                    await db._patch(old["_id"], {**fields, "nextRun": job.next_run(_now())},
                                    system=True)
            for old in stored.values():
                await db._delete_system(old["_id"])
            return None, None

        await engine.transact("crons", body)

    async def _fire_cron(self, cron_id: str) -> None:
        """Schedule one due cron run, once across processes, and move it to its next tick.

        A cron that was due several times while no server ran fires once, not once per
        missed tick: its next run is the first tick after now.
        """
        engine = self.engine

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            if await tx.lock(CRON_JOBS, cron_id) is None:
                return None, None
            cron = await db.system.get(cron_id)
            now = _now()
            if cron is None or cron["nextRun"] > now:
                return None, None
            declared = engine.app.crons.jobs.get(cron["name"]) if engine.app.crons else None
            if declared is None:
                return None, None
            job = job_document(engine, cron["function"], cron["args"], now, cron=cron["name"])
            await db._insert(SCHEDULED_FUNCTIONS, job, system=True)
            await db._patch(cron_id, {"nextRun": declared.next_run(now), "lastRun": now},
                            system=True)
            return None, None

        try:
            await engine.transact(f"cron {cron_id}", body)
        except Exception:
            log.exception("cron %s could not be scheduled", cron_id)
