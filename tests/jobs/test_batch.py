"""Scheduled mutations run in batches on real Postgres: one transaction, each job once."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from reactive_store import values
from reactive_store.deployment import Deployment, Settings
from reactive_store.engine.db import (
    DatabaseWriter,
    StoredVersion,
    SystemTableWriter,
    document_from_row,
)
from reactive_store.engine.engine import Engine, EngineConfig
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS, SYSTEM_TABLES
from reactive_store.errors import ValidationError, WriteError
from reactive_store.jobs.batch import PENDING, JobFailed, MutationBatch, due_range
from reactive_store.jobs.execution import now_ms
from reactive_store.jobs.runner import JobRunner
from reactive_store.keys import encode_tuple
from reactive_store.schema import all_indexes, index_keys
from reactive_store.storage import Transaction
from reactive_store.storage.job_claims import (
    DueJob,
    LockBudget,
    LockedJob,
    due_jobs,
    lock_budget,
    lock_due,
    stripe_of,
)
from tests.db_faults import scratch_database
from tests.e2e.servers import drop_namespace
from tests.support import new_namespace, until, write_app

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "events": define_table({"tag": v.string()}).index("by_tag", ["tag"]),
})
"""
FUNCTIONS = """
import asyncio
from reactive_store import internal_action, internal_mutation, mutation, query, v
from reactive_store.storage import TransientConflict

@internal_mutation(args={"tag": v.string()})
async def record(ctx, tag):
    if tag.startswith("slow"):
        await asyncio.sleep(0.05)
    if tag.startswith("bad"):
        raise RuntimeError(f"no {tag}")
    if tag.startswith("clash"):
        raise TransientConflict("always in someone's way")
    await ctx.db.insert("events", {"tag": tag})
    return tag.upper()

@mutation(args={"tags": v.array(v.string()), "delay": v.float64()})
async def schedule(ctx, tags, delay):
    return [await ctx.scheduler.run_after(delay, record, {"tag": tag}) for tag in tags]

@internal_action(args={})
async def ping(ctx):
    return "pong"

@mutation(args={})
async def schedule_ping(ctx):
    return await ctx.scheduler.run_after(0, ping, {})

@mutation(args={"id": v.string()})
async def cancel(ctx, id):
    await ctx.scheduler.cancel(id)

@internal_mutation(args={"id": v.string()})
async def cancel_other(ctx, id):
    await ctx.scheduler.cancel(id)

@mutation(args={"id": v.string()})
async def schedule_cancel(ctx, id):
    return await ctx.scheduler.run_after(0, cancel_other, {"id": id})

@query(args={"id": v.string()})
async def job(ctx, id):
    return await ctx.db.system.get(id)

@query(args={})
async def tags(ctx):
    return sorted(e["tag"] for e in await ctx.db.query("events").collect())
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {"schema/__init__.py": SCHEMA,
                                        "functions/work.py": FUNCTIONS})


async def quiet_engine(app: Path, database_url: str, config: EngineConfig
                       ) -> AsyncIterator[Engine]:
    """A deployment that runs no jobs by itself: the tests drive batches by hand."""
    deployment = Deployment(Settings(app_dir=app, database_url=database_url,
                                     namespace=new_namespace(), run_jobs=False, engine=config))
    engine = await deployment.start()
    try:
        yield engine
    finally:
        await deployment.stop()
        await drop_namespace(database_url, deployment.settings.namespace)


@pytest.fixture
async def quiet(app: Path, database_url: str) -> AsyncIterator[Engine]:
    async for engine in quiet_engine(app, database_url, EngineConfig()):
        yield engine


@pytest.fixture
async def one_attempt(app: Path, database_url: str) -> AsyncIterator[Engine]:
    """As `quiet`, with one attempt a transaction: a conflict raises instead of retrying."""
    async for engine in quiet_engine(app, database_url, EngineConfig(max_attempts=1)):
        yield engine


async def schedule(engine: Engine, *tags: str, delay: float = 0.0) -> list[str]:
    ids: list[str] = (await engine.run_mutation(
        "work:schedule", {"tags": list(tags), "delay": delay})).value
    return ids


async def due(engine: Engine, ids: list[str]) -> list[DueJob]:
    """The jobs as the runner's scan names them: by id and the ctid of their row now."""
    table = engine.store.names.table(SCHEDULED_FUNCTIONS)
    async with engine.store.write() as tx:
        rows = await tx.fetch(f"SELECT _id, ctid::text FROM {table} WHERE _id = ANY($1)", ids)
    tids = {row[0]: row[1] for row in rows}
    return [DueJob(job_id, tids[job_id]) for job_id in ids]


async def state(engine: Engine, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await engine.run_query("work:job", {"id": job_id})).value
    return job


async def tags(engine: Engine) -> list[str]:
    found: list[str] = (await engine.run_query("work:tags", {})).value
    return found


async def test_a_batch_runs_its_due_jobs_once_in_one_transaction(quiet: Engine) -> None:
    ids = await schedule(quiet, "a", "b", "c")
    batch = MutationBatch(quiet)
    jobs = await due(quiet, ids)
    before = quiet.store.transactions
    result = await batch.run(jobs)
    assert (result.ran, result.left, result.busy) == (3, [], False)
    assert quiet.store.transactions - before == 1
    for job_id, tag in zip(ids, "abc", strict=True):
        job = await state(quiet, job_id)
        assert job["state"] == {"kind": "success"} and job["result"] == tag.upper()
    assert (await batch.run(await due(quiet, ids))).ran == 0  # done: never claimed again
    assert await tags(quiet) == ["a", "b", "c"]
    runs = [ex for ex in quiet.observer.log if ex.path == "work:record"]
    assert len(runs) == 3 and {ex.caller for ex in runs} == {"Scheduler"}


async def test_a_failing_job_rolls_its_batch_back_and_is_named(quiet: Engine) -> None:
    ids = await schedule(quiet, "a", "bad-one", "c")
    with pytest.raises(JobFailed) as failed:
        await MutationBatch(quiet).run(await due(quiet, ids))
    assert failed.value.job["_id"] == ids[1]
    assert [(await state(quiet, i))["state"]["kind"] for i in ids] == ["pending"] * 3
    assert await tags(quiet) == []
    assert not [ex for ex in quiet.observer.log if ex.path == "work:record"]


async def test_jobs_not_due_canceled_or_held_elsewhere_are_not_claimed(
    quiet: Engine, database_url: str
) -> None:
    later = await schedule(quiet, "later", delay=3600)
    canceled, held, free = await schedule(quiet, "canceled", "held", "free")
    await quiet.run_mutation("work:cancel", {"id": canceled})
    table = quiet.store.names.table(SCHEDULED_FUNCTIONS)
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            await other.execute(f"SELECT 1 FROM {table} WHERE _id = $1 FOR UPDATE", held)
            result = await MutationBatch(quiet).run(
                await due(quiet, [*later, canceled, held, free]))
            assert (result.ran, result.left) == (1, [])
    finally:
        await other.close()
    assert await tags(quiet) == ["free"]
    assert (await MutationBatch(quiet).run(await due(quiet, [held]))).ran == 1
    assert (await state(quiet, canceled))["state"] == {"kind": "canceled"}
    assert (await state(quiet, later[0]))["state"] == {"kind": "pending"}


async def test_the_due_scan_names_mutations_and_reads_actions_in_due_order(
    quiet: Engine
) -> None:
    first = await schedule(quiet, "a", "b")
    ping: str = (await quiet.run_mutation("work:schedule_ping", {})).value
    await schedule(quiet, "later", delay=3600)
    last = await schedule(quiet, "c")

    async def scan(limit: int) -> tuple[list[str], list[dict[str, Any]]]:
        jobs, rows = await quiet.read(lambda db: due_jobs(
            db.reads.tx, SCHEDULED_FUNCTIONS, *due_range(now_ms()), limit))
        # Named by their rows, with their due times.
        named = await due(quiet, [job.id for job in jobs])
        assert [(job.id, job.tid) for job in jobs] == [(job.id, job.tid) for job in named]
        assert [job.due for job in jobs] == [(await state(quiet, job.id))["scheduledTime"]
                                             for job in jobs]
        return ([job.id for job in jobs],
                [document_from_row(row.id, row.creation_time, row.doc) for row in rows])

    assert await scan(10) == ([*first, *last], [await state(quiet, ping)])
    assert await scan(2) == (first, [])  # the limit counts every kind, in due order
    await MutationBatch(quiet).run(await due(quiet, first))
    assert await scan(10) == (last, [await state(quiet, ping)])  # done: no longer due


async def test_a_locked_job_comes_as_encoding_it_again_would_store_it(quiet: Engine) -> None:
    """A batch hands each job's stored JSON and index keys to its success mark instead of
    encoding the document again: they must be exactly what encoding would give."""
    ids = await schedule(quiet, "a", "b")
    await quiet.run_mutation("work:schedule_ping", {})
    definition = SYSTEM_TABLES[SCHEDULED_FUNCTIONS]
    async with quiet.store.write() as tx:
        locked = await lock_due(tx, SCHEDULED_FUNCTIONS, await due(quiet, ids),
                                *due_range(now_ms()), indexes=list(all_indexes(definition)))
    assert [job.row.id for job in locked] == ids
    for job in locked:
        doc = document_from_row(job.row.id, job.row.creation_time, job.row.doc)
        assert job.keys == index_keys(definition, doc)
        fields = {k: value for k, value in doc.items() if not k.startswith("_")}
        assert job.row.doc == orjson.dumps(values.encode(fields, SCHEDULED_FUNCTIONS))


DONE = {"state": {"kind": "success"}, "result": {"n": 2**40, "raw": b"\x00", "list": [1.5]},
        "completedTime": 1234.5}


async def lock_one(tx: Transaction, jobs: list[DueJob]) -> tuple[LockedJob, dict[str, Any]]:
    """Lock the one due job of `jobs` as a batch does; the lock's row and its document."""
    [job] = await lock_due(tx, SCHEDULED_FUNCTIONS, jobs, *due_range(now_ms()),
                           indexes=list(all_indexes(SYSTEM_TABLES[SCHEDULED_FUNCTIONS])))
    return job, document_from_row(job.row.id, job.row.creation_time, job.row.doc)


async def mark_done(engine: Engine, job_id: str, fields: dict[str, Any], from_stored: bool
                    ) -> list[tuple[object, set[bytes]]]:
    """Patch one job with `fields` in a transaction of its own, from the version its lock
    read (the batch's way) or the general way; returns the commit's write set."""
    jobs = await due(engine, [job_id])

    async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
        job, doc = await lock_one(tx, jobs)
        stored = StoredVersion(job.row.doc, job.keys, job.tid) if from_stored else None
        await SystemTableWriter(db).patch(job_id, fields, current=doc, stored=stored)
        return sorted((ref, keys) for ref, keys in db.writes.keys.items()), None

    writes: list[tuple[object, set[bytes]]] = (await engine.transact("mark", body)).value
    return writes


async def test_a_job_marked_from_its_stored_version_is_stored_as_a_full_patch_would_be(
        quiet: Engine) -> None:
    # The batch's success mark validates and encodes only the fields it sets.
    by_stored, by_patch = await schedule(quiet, "a", "b")
    writes = [await mark_done(quiet, by_stored, DONE, True),
              await mark_done(quiet, by_patch, DONE, False)]
    one, other = (await state(quiet, by_stored)), (await state(quiet, by_patch))
    assert {k: v for k, v in one.items() if k not in ("_id", "_creationTime", "args")} == {
        k: v for k, v in other.items() if k not in ("_id", "_creationTime", "args")}
    assert one["result"] == {"n": 2**40, "raw": b"\x00", "list": [1.5]}
    assert [ref for ref, _ in writes[0]] == [ref for ref, _ in writes[1]]
    assert [len(keys) for _, keys in writes[0]] == [len(keys) for _, keys in writes[1]]
    async with quiet.store.write() as tx:  # the stored rows: JSON and every key column
        definition = SYSTEM_TABLES[SCHEDULED_FUNCTIONS]
        for job_id in (by_stored, by_patch):
            rows = await tx.fetch(
                f"SELECT _id, _creation_time, doc FROM {tx.names.table(SCHEDULED_FUNCTIONS)} "
                "WHERE _id = $1", job_id)
            doc = document_from_row(rows[0][0], rows[0][1], rows[0][2])
            fields = {k: value for k, value in doc.items() if not k.startswith("_")}
            assert rows[0][2] == orjson.dumps(values.encode(fields, SCHEDULED_FUNCTIONS))
            [locked] = await lock_due(tx, SCHEDULED_FUNCTIONS, await due(quiet, [job_id]),
                                      b"", b"\xff",
                                      indexes=list(all_indexes(definition)))
            assert locked.keys == index_keys(definition, doc)


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"nonsense": 1}, WriteError, "_scheduled_functions has no field 'nonsense'"),
    ({"state": values.UNSET}, WriteError, "has no field 'state' to set"),
    ({"completedTime": "soon"}, ValidationError,
     "_scheduled_functions.completedTime: expected float64, got string"),
    ({"state": {"kind": "later"}}, ValidationError, "_scheduled_functions.state.kind"),
    ({"result": {"$bad": 1}}, ValidationError, "_scheduled_functions.result"),
])
async def test_a_bad_mark_from_the_stored_version_is_refused_and_writes_nothing(
        quiet: Engine, fields: dict[str, Any], error: type[Exception], message: str) -> None:
    [job_id] = await schedule(quiet, "a")
    before = await state(quiet, job_id)
    with pytest.raises(error, match=message):
        await mark_done(quiet, job_id, fields, True)
    assert await state(quiet, job_id) == before


async def test_a_stored_version_of_another_document_is_refused(quiet: Engine) -> None:
    first, second = await schedule(quiet, "a", "b")
    jobs = await due(quiet, [first])

    async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
        job, doc = await lock_one(tx, jobs)
        await SystemTableWriter(db).patch(second, DONE, current=doc,
                                          stored=StoredVersion(job.row.doc, job.keys))
        return None, None

    with pytest.raises(WriteError, match="not of document"):
        await quiet.transact("mark", body)
    assert (await state(quiet, second))["state"] == {"kind": "pending"}


async def test_canceling_a_job_its_batch_holds_waits_and_leaves_it_done(quiet: Engine) -> None:
    ids = await schedule(quiet, "slow-a", "slow-b", "slow-c")
    batch = MutationBatch(quiet)
    running = asyncio.create_task(batch.run(await due(quiet, ids)))
    await until(lambda: asyncio.sleep(0.005, len(batch.last_claimed) == 3))
    await quiet.run_mutation("work:cancel", {"id": ids[2]})  # waits for the batch's lock
    assert running.done() and (await running).ran == 3
    assert [(await state(quiet, i))["state"]["kind"] for i in ids] == ["success"] * 3
    assert await tags(quiet) == ["slow-a", "slow-b", "slow-c"]


async def test_a_batch_waits_its_turn_when_its_stripe_is_busy(
    quiet: Engine, database_url: str
) -> None:
    ids = await schedule(quiet, "a", "b")
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1, 0)", quiet.store.names.job_lock)
            result = await MutationBatch(quiet).run(await due(quiet, ids), stripe=0)
            assert (result.ran, result.left, result.busy) == (0, ids, True)
            other_stripe = await MutationBatch(quiet).run(await due(quiet, ids), stripe=1)
            assert (other_stripe.ran, other_stripe.busy) == (2, False)
    finally:
        await other.close()
    assert await tags(quiet) == ["a", "b"]


class Meeting(MutationBatch):
    """A batch that, its rows locked, waits before its first job until `count` batches
    have locked theirs: so they surely overlap from their reads to their commits."""

    def __init__(self, engine: Engine, met: list[int], both: asyncio.Event, count: int
                 ) -> None:
        super().__init__(engine)
        self.met, self.both, self.count = met, both, count

    async def _run_one(self, db: DatabaseWriter, tx: Transaction, job: dict[str, Any],
                       stored: StoredVersion, attempt: Any) -> None:
        if attempt.ran == 0:
            self.met.append(1)
            if len(self.met) == self.count:
                self.both.set()
            await asyncio.wait_for(self.both.wait(), 10)
        await super()._run_one(db, tx, job, stored, attempt)


async def overlapping(engine: Engine, parts: list[list[DueJob]]) -> list[int]:
    """Run one batch per part, part i on stripe i, all overlapping from their locks to their
    commits (`Meeting`); how many jobs each ran."""
    met: list[int] = []
    both = asyncio.Event()
    results = await asyncio.gather(*(Meeting(engine, met, both, len(parts)).run(part, stripe)
                                     for stripe, part in enumerate(parts)))
    return [result.ran for result in results]


async def test_batches_on_two_stripes_run_side_by_side_without_a_conflict(
        one_attempt: Engine) -> None:
    # What the stripes are for: batches that overlap from their reads to their commits,
    # each on its own heap pages, commit on their first attempt (one attempt allowed, so a
    # conflict would raise), the second round on rows the first one rewrote.
    for round_ in range(2):
        ids = await schedule(one_attempt, *[f"r{round_}-{i:03}-" + "x" * 300 for i in range(240)])
        jobs = await due(one_attempt, ids)
        stripes = [[job for job in jobs if stripe_of(job, 2) == s] for s in (0, 1)]
        assert all(len({job.block for job in part}) >= 3 for part in stripes)
        assert await overlapping(one_attempt, stripes) == [len(part) for part in stripes]
    assert len(await tags(one_attempt)) == 480


async def test_batches_of_rows_scattered_over_many_pages_do_not_conflict_either(
        one_attempt: Engine) -> None:
    # Due jobs one or two to a page (the others due in an hour): a batch then holds a tuple
    # lock per row, and the runner stops taking rows at 24 locks' worth, below the point
    # where Postgres would lock the whole job table.
    due_now = []
    for i in range(80):
        due_now += await schedule(one_attempt, f"s{i:03}-" + "x" * 300)
        await schedule(one_attempt, *[f"later-{i}-{k}-" + "x" * 300 for k in range(12)],
                       delay=3600)
    jobs = await due(one_attempt, due_now)
    runner = JobRunner(one_attempt, batch_slots=2)
    for job in jobs:
        runner._queues.setdefault(stripe_of(job, 2), deque()).append(job)
    parts = [runner._take(stripe) for stripe in (0, 1)]
    for part in parts:
        pages = Counter(job.block for job in part)
        assert sum(n if n <= 2 else 1 for n in pages.values()) <= 24
        assert len(pages) > 12  # scattered: mostly one or two rows a page
    assert await overlapping(one_attempt, parts) == [len(part) for part in parts]


async def test_a_runner_waiting_on_a_held_stripe_wakes_when_jobs_finish_elsewhere(
        quiet: Engine) -> None:
    runner = JobRunner(quiet, batch_slots=2)
    finished = WriteSet()  # what another process's batch commits: a job leaves pending
    finished.add(SCHEDULED_FUNCTIONS, "by_state", PENDING + b"job")
    finished.add(SCHEDULED_FUNCTIONS, "by_state", encode_tuple(["success"]) + b"job")
    runner.on_commit(1, finished)
    assert not runner._wake.is_set()  # nothing waits: no new work either
    runner._held.add(1)
    runner.on_commit(2, finished)
    assert runner._wake.is_set()
    runner._wake.clear()
    runner.on_commit(3, WriteSet())  # a commit of no job: still nothing to look at
    assert not runner._wake.is_set()


def test_each_read_row_adds_a_tuple_lock_until_its_page_has_a_page_lock() -> None:
    assert [LockBudget().added(n) for n in range(6)] == [1, 1, -1, 0, 0, 0]
    assert [LockBudget(per_page=4).added(n) for n in range(7)] == [1, 1, 1, 1, -3, 0, 0]


async def test_the_lock_budget_is_read_from_the_server(quiet: Engine) -> None:
    # The test servers keep Postgres's defaults: 2 tuple locks a page, 64 / 2 = 32 a table.
    budget = await quiet.read(lambda db: lock_budget(db.reads.tx))
    assert budget == LockBudget(per_page=2, locks=24)


async def test_a_job_its_batch_wrote_before_it_ran_is_marked_by_id(quiet: Engine) -> None:
    # The first job cancels the second, due later, in the same batch: the second's row is a
    # new version by then, so its success mark cannot use the ctid its lock read.
    [second] = await schedule(quiet, "b", delay=0.05)
    first: str = (await quiet.run_mutation("work:schedule_cancel", {"id": second})).value
    await asyncio.sleep(0.1)
    result = await MutationBatch(quiet).run(await due(quiet, [first, second]))
    assert result.ran == 2
    assert (await state(quiet, first))["state"] == {"kind": "success"}
    assert (await state(quiet, second))["state"] == {"kind": "success"}  # it did run
    assert await tags(quiet) == ["b"]


async def test_a_batch_past_its_time_budget_leaves_the_rest_pending(quiet: Engine) -> None:
    ids = await schedule(quiet, "a", "b", "c")
    batch = MutationBatch(quiet, budget_seconds=0.0)
    first = await batch.run(await due(quiet, ids))
    assert first.ran == 1 and len(first.left) == 2 and set(first.left) < set(ids)
    assert [(await state(quiet, i))["state"]["kind"] for i in first.left] == ["pending"] * 2
    assert (await batch.run(await due(quiet, first.left))).ran == 1
    assert len(await tags(quiet)) == 2


async def test_the_runner_records_a_failure_in_a_batch_and_runs_the_rest(
    app: Path, deploy: Any
) -> None:
    engine = await deploy(app)
    ids = await schedule(engine, *[f"t{i}" for i in range(10)], "bad-job", delay=0.2)

    async def settled() -> list[dict[str, Any]] | None:
        jobs = [await state(engine, i) for i in ids]
        return None if any(j["state"]["kind"] == "pending" for j in jobs) else jobs

    jobs = await until(settled)
    assert [j["state"]["kind"] for j in jobs] == ["success"] * 10 + ["failed"]
    assert jobs[-1]["state"]["error"] == "Uncaught RuntimeError: no bad-job"
    assert await tags(engine) == sorted(f"t{i}" for i in range(10))


async def test_a_batch_that_keeps_conflicting_falls_back_to_single_jobs(
    app: Path, deploy: Any
) -> None:
    engine = await deploy(app, config=EngineConfig(max_attempts=3))
    ids = await schedule(engine, "a", "clash", "b", delay=0.2)

    async def settled() -> list[dict[str, Any]] | None:
        jobs = [await state(engine, i) for i in ids]
        return None if any(j["state"]["kind"] == "pending" for j in jobs) else jobs

    jobs = await until(settled)
    assert [j["state"]["kind"] for j in jobs] == ["success", "failed", "success"]
    assert "conflict" in jobs[1]["state"]["error"]
    assert await tags(engine) == ["a", "b"]


async def test_a_batch_cut_off_by_a_database_outage_leaves_its_jobs_pending(
    app: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with scratch_database(database_url) as scratch:
        deployment = Deployment(Settings(app_dir=app, database_url=scratch.url,
                                         namespace=new_namespace()))
        engine = await deployment.start()
        try:
            ids = await schedule(engine, *[f"slow-{i:02}" for i in range(20)], delay=0.1)
            with caplog.at_level(logging.WARNING, logger="reactive_store.jobs.runner"):
                await asyncio.sleep(0.25)  # the first batch is running its slow jobs now
                await scratch.refuse_connections()
                await asyncio.sleep(3.0)  # longer than a transaction retries (2 s)
                await scratch.allow_connections()

                async def settled() -> bool:
                    jobs = [await state(engine, i) for i in ids]
                    return all(j["state"]["kind"] == "success" for j in jobs)

                await until(settled, 20)
            assert "cut off by the database" in caplog.text
            assert await tags(engine) == [f"slow-{i:02}" for i in range(20)]
        finally:
            await deployment.stop()
