"""Finished scheduled functions are pruned after their retention; pending ones never are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reactive_store.engine.db import SystemTableWriter
from reactive_store.engine.system_tables import SCHEDULED_FUNCTIONS
from reactive_store.jobs.execution import now_ms
from reactive_store.jobs.retention import JobRetention
from tests.support import write_app

APP = {
    "schema/__init__.py": "from reactive_store import define_schema\nschema = define_schema({})\n",
    "functions/jobs.py": """
from reactive_store import internal_mutation, query

@internal_mutation(args={})
async def work(ctx):
    return "ran"

@query(args={})
async def jobs(ctx):
    return sorted([j["args"].get("tag", ""), j["state"]["kind"]]
                  for j in await ctx.db.system.query("_scheduled_functions").collect())
""",
}
DAY_MS = 24 * 3600 * 1000.0


async def add_job(engine: Any, tag: str, state: str, age_days: float) -> None:
    async def body(jobs: SystemTableWriter) -> None:
        when = now_ms() - age_days * DAY_MS
        doc: dict[str, Any] = {"name": "jobs:work", "kind": "mutation", "args": {"tag": tag},
                               "scheduledTime": when, "state": {"kind": state}}
        if state != "pending":
            doc["completedTime"] = when + 1000.0
        await jobs.insert(SCHEDULED_FUNCTIONS, doc)

    await engine.write_system("test", body)


async def test_only_finished_jobs_past_retention_are_deleted(tmp_path: Path, deploy: Any
                                                             ) -> None:
    engine = await deploy(write_app(tmp_path / "app", APP))
    for tag, state, age in [("old-ok", "success", 8), ("old-failed", "failed", 9),
                            ("old-canceled", "canceled", 30), ("new-ok", "success", 1),
                            ("due-later", "pending", -10), ("edge", "success", 6.9)]:
        await add_job(engine, tag, state, age)
    deleted = await JobRetention(engine, retention_s=7 * 24 * 3600).prune()
    assert deleted == 3
    assert (await engine.run_query("jobs:jobs", {})).value == [
        ["due-later", "pending"], ["edge", "success"], ["new-ok", "success"]]
    assert await JobRetention(engine, retention_s=7 * 24 * 3600).prune() == 0


async def test_pruning_works_through_many_batches(tmp_path: Path, deploy: Any) -> None:
    engine = await deploy(write_app(tmp_path / "app", APP))

    async def many(jobs: SystemTableWriter) -> None:
        for i in range(1200):
            await jobs.insert(SCHEDULED_FUNCTIONS, {
                "name": "jobs:work", "kind": "mutation", "args": {"tag": f"t{i}"},
                "scheduledTime": 1000.0 + i, "state": {"kind": "success"},
                "completedTime": 2000.0 + i})

    await engine.write_system("test", many)
    assert await JobRetention(engine, retention_s=3600).prune() == 1200
    assert (await engine.run_query("jobs:jobs", {})).value == []
