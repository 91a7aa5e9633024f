"""Scheduled functions and crons on real Postgres: durable, transactional, exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from reactive_store.errors import FunctionNotFound, ValidationError
from tests.support import new_namespace, until, write_app

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "events": define_table({"tag": v.string()}).index("by_tag", ["tag"]),
})
"""
FUNCTIONS = """
from reactive_store import (ConvexError, action, internal_action, internal_mutation, mutation,
                            query, v)

@internal_mutation(args={"tag": v.string()})
async def record(ctx, tag):
    await ctx.db.insert("events", {"tag": tag})
    return tag.upper()

@internal_action(args={"fail": v.boolean()})
async def remote(ctx, fail):
    if fail:
        raise RuntimeError("the remote API said no")
    await ctx.run_mutation("work:record", {"tag": "from-action"})
    return "done"

@internal_action(args={})
async def slow(ctx):
    import asyncio
    await asyncio.sleep(0.8)
    await ctx.run_mutation("work:record", {"tag": "slow-done"})

@mutation(args={})
async def start_slow(ctx):
    return [await ctx.scheduler.run_after(0, slow, {}),
            await ctx.scheduler.run_after(3600, "work:record", {"tag": "much-later"})]

@mutation(args={"tag": v.string(), "delay": v.float64()})
async def later(ctx, tag, delay):
    return await ctx.scheduler.run_after(delay, "work:record", {"tag": tag})

@mutation(args={"tag": v.string(), "count": v.float64(), "delay": v.float64()})
async def many_later(ctx, tag, count, delay):
    for i in range(int(count)):
        await ctx.scheduler.run_after(delay, "work:record", {"tag": tag})

@internal_mutation(args={"at": v.float64()})
async def stamp(ctx, at):
    import time
    await ctx.db.insert("events", {"tag": f"stamp {at} {time.time() * 1000}"})

@internal_action(args={"at": v.float64()})
async def stamp_action(ctx, at):
    import time
    await ctx.run_mutation("work:record", {"tag": f"stamp {at} {time.time() * 1000}"})

@mutation(args={"at": v.float64()})
async def stamp_at(ctx, at):
    await ctx.scheduler.run_at(at, stamp, {"at": at})
    await ctx.scheduler.run_at(at, stamp_action, {"at": at})

@query(args={})
async def stamps(ctx):
    return [e["tag"] for e in await ctx.db.query("events").collect()
            if e["tag"].startswith("stamp ")]

@mutation(args={"tag": v.string()})
async def later_then_fail(ctx, tag):
    await ctx.scheduler.run_after(0, "work:record", {"tag": tag})
    raise ConvexError("changed my mind")

@mutation(args={"fn": v.string(), "args": v.any()})
async def schedule(ctx, fn, args):
    return await ctx.scheduler.run_after(0, fn, args)

@mutation(args={"fail": v.boolean()})
async def call_remote(ctx, fail):
    return await ctx.scheduler.run_at(ctx.now(), remote, {"fail": fail})

@mutation(args={"id": v.string()})
async def cancel(ctx, id):
    await ctx.scheduler.cancel(id)

@action(args={"tag": v.string()})
async def from_action(ctx, tag):
    return await ctx.scheduler.run_after(0, "work:record", {"tag": tag})

@query(args={"id": v.string()})
async def job(ctx, id):
    return await ctx.db.system.get(id)

@query(args={})
async def jobs(ctx):
    return await ctx.db.system.query("_scheduled_functions").collect()

@query(args={"tag": v.string()})
async def count(ctx, tag):
    return len(await ctx.db.query("events").with_index("by_tag", lambda q: q.eq("tag", tag))
               .collect())
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {"schema/__init__.py": SCHEMA,
                                        "functions/work.py": FUNCTIONS})




async def finished(engine: Any, job_id: str) -> dict[str, Any]:
    async def done() -> Any:
        job = (await engine.run_query("work:job", {"id": job_id})).value
        return job if job["state"]["kind"] not in ("pending", "inProgress") else None

    result: dict[str, Any] = await until(done)
    return result


async def test_a_scheduled_mutation_runs_once_and_records_its_result(
    app: Path, deploy: Any
) -> None:
    engine = await deploy(app)
    job_id = (await engine.run_mutation("work:later", {"tag": "a", "delay": 0.2})).value
    pending = (await engine.run_query("work:job", {"id": job_id})).value
    assert pending["state"] == {"kind": "pending"} and pending["name"] == "work:record"
    job = await finished(engine, job_id)
    assert job["state"] == {"kind": "success"} and job["result"] == "A"
    assert job["completedTime"] >= job["scheduledTime"]
    assert (await engine.run_query("work:count", {"tag": "a"})).value == 1


async def test_scheduling_is_transactional(app: Path, deploy: Any) -> None:
    engine = await deploy(app)
    with pytest.raises(Exception, match="changed my mind"):
        await engine.run_mutation("work:later_then_fail", {"tag": "ghost"})
    assert (await engine.run_query("work:jobs", {})).value == []


@pytest.mark.parametrize(
    ("fn", "args", "error", "message"),
    [
        ("work:missing", {}, FunctionNotFound, "work:missing"),
        ("work:record", {"tag": 5}, ValidationError, "args.tag: expected string"),
        ("work:record", {}, ValidationError, "missing required field 'tag'"),
        ("work:count", {"tag": "x"}, ValidationError, "only mutations and actions"),
    ],
)
async def test_bad_schedules_are_refused_in_the_mutation(
    app: Path, deploy: Any, fn: str, args: Any, error: type[Exception], message: str
) -> None:
    engine = await deploy(app)
    with pytest.raises(error, match=message):
        await engine.run_mutation("work:schedule", {"fn": fn, "args": args})
    assert (await engine.run_query("work:jobs", {})).value == []


async def test_actions_run_at_most_once_and_failures_are_recorded(
    app: Path, deploy: Any
) -> None:
    engine = await deploy(app)
    ok = (await engine.run_mutation("work:call_remote", {"fail": False})).value
    bad = (await engine.run_mutation("work:call_remote", {"fail": True})).value
    assert (await finished(engine, ok))["result"] == "done"
    failed = await finished(engine, bad)
    assert failed["state"] == {"kind": "failed",
                               "error": "Uncaught RuntimeError: the remote API said no"}
    await asyncio.sleep(0.3)
    assert (await engine.run_query("work:job", {"id": bad})).value["state"]["kind"] == "failed"
    assert (await engine.run_query("work:count", {"tag": "from-action"})).value == 1
    from_action = (await engine.run_action("work:from_action", {"tag": "act"})).value
    assert (await finished(engine, from_action))["state"]["kind"] == "success"


async def test_cancel(app: Path, deploy: Any) -> None:
    engine = await deploy(app)
    job_id = (await engine.run_mutation("work:later", {"tag": "c", "delay": 0.5})).value
    await engine.run_mutation("work:cancel", {"id": job_id})
    await asyncio.sleep(0.8)
    job = (await engine.run_query("work:job", {"id": job_id})).value
    assert job["state"] == {"kind": "canceled"}
    assert (await engine.run_query("work:count", {"tag": "c"})).value == 0


async def test_jobs_survive_a_restart(app: Path, deploy: Any) -> None:
    namespace = new_namespace()
    first = await deploy(app, namespace=namespace)
    job_id = (await first.run_mutation("work:later", {"tag": "r", "delay": 1.0})).value
    await first.deployment.stop()
    second = await deploy(app, namespace=namespace)
    assert (await finished(second, job_id))["state"]["kind"] == "success"
    assert (await second.run_query("work:count", {"tag": "r"})).value == 1


async def test_two_processes_run_each_job_exactly_once(app: Path, deploy: Any) -> None:
    namespace = new_namespace()
    a = await deploy(app, namespace=namespace)
    await deploy(app, namespace=namespace)
    ids = await asyncio.gather(*[
        a.run_mutation("work:later", {"tag": "race", "delay": 0.3}) for _ in range(40)])
    for outcome in ids:
        assert (await finished(a, outcome.value))["state"]["kind"] == "success"
    assert (await a.run_query("work:count", {"tag": "race"})).value == 40


async def test_two_processes_share_a_burst_of_due_jobs_in_stripes(
        app: Path, deploy: Any) -> None:
    # 600 jobs due at once: both processes run batches (each on stripes of the job table),
    # side by side, and every job runs exactly once.
    namespace = new_namespace()
    a = await deploy(app, namespace=namespace)
    b = await deploy(app, namespace=namespace)
    for _ in range(6):
        await a.run_mutation("work:many_later", {"tag": "burst", "count": 100, "delay": 0.5})

    async def all_ran() -> bool:
        return (await a.run_query("work:count", {"tag": "burst"})).value >= 600

    await until(all_ran, 30)
    await asyncio.sleep(0.3)  # a job run twice would show up by now
    assert (await a.run_query("work:count", {"tag": "burst"})).value == 600
    jobs = (await a.run_query("work:jobs", {})).value
    assert [j["state"]["kind"] for j in jobs].count("success") == 600
    ran = [len([ex for ex in engine.observer.log if ex.path == "work:record"])
           for engine in (a, b)]
    assert sum(ran) == 600 and min(ran) > 0, ran


async def test_jobs_start_at_their_due_time_never_before(app: Path, deploy: Any) -> None:
    # The runner wakes and scans a few ms before a job is due; a mutation's batch then
    # waits for the due time, and an action is started only once due.
    engine = await deploy(app)
    now = time.time() * 1000
    due = [now + 150 + 40 * i for i in range(5)]
    for at in due:
        await engine.run_mutation("work:stamp_at", {"at": at})

    async def all_ran() -> list[str] | None:
        found: list[str] = (await engine.run_query("work:stamps", {})).value
        return found if len(found) == 2 * len(due) else None

    for stamp in await until(all_ran, 10):
        _, at, started = stamp.split()
        assert float(started) >= float(at), stamp


async def test_a_job_for_a_deleted_function_fails_clearly(app: Path, deploy: Any) -> None:
    engine = await deploy(app)
    job_id = (await engine.run_mutation("work:later", {"tag": "gone", "delay": 0.6})).value
    (app / "functions" / "work.py").write_text(FUNCTIONS.replace(
        '@internal_mutation(args={"tag": v.string()})\nasync def record',
        '@internal_mutation(args={"tag": v.string()})\nasync def renamed'))
    await engine.deployment.reload()
    job = await finished(engine, job_id)
    assert job["state"]["kind"] == "failed"
    assert "no longer exists" in job["state"]["error"] and "work:record" in job["state"]["error"]


async def test_shutdown_lets_running_jobs_finish_and_leaves_the_rest(
    app: Path, deploy: Any
) -> None:
    namespace = new_namespace()
    engine = await deploy(app, namespace=namespace)
    running, waiting = (await engine.run_mutation("work:start_slow", {})).value

    async def started() -> Any:
        job = (await engine.run_query("work:job", {"id": running})).value
        return job["state"]["kind"] == "inProgress"

    await until(started)
    await engine.deployment.stop()
    after = await deploy(app, namespace=namespace)
    assert (await after.run_query("work:job", {"id": running})).value["state"]["kind"] \
        == "success"
    assert (await after.run_query("work:count", {"tag": "slow-done"})).value == 1
    assert (await after.run_query("work:job", {"id": waiting})).value["state"]["kind"] \
        == "pending"
