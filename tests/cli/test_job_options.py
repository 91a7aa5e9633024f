"""The job runner's options on the command line: passed to the deployment, checked, and in
effect (a batch size of 1 commits every scheduled mutation on its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from reactive_store.cli import build_parser, settings_from
from reactive_store.deployment import Deployment, Settings
from tests.support import new_namespace, write_app

APP = {
    "schema/__init__.py": "from reactive_store import define_schema\nschema = define_schema({})\n",
    "functions/jobs.py": """
from reactive_store import internal_mutation, mutation, query, v

@internal_mutation(args={})
async def work(ctx):
    return "ran"

@mutation(args={"n": v.float64()})
async def schedule(ctx, n):
    for _ in range(int(n)):
        await ctx.scheduler.run_after(0, "jobs:work", {})

@query(args={})
async def states(ctx):
    jobs = await ctx.db.system.query("_scheduled_functions").collect()
    return sorted(j["state"]["kind"] for j in jobs)
""",
}


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_the_options_reach_the_settings(command: str) -> None:
    given = settings_from(build_parser().parse_args([
        command, "--job-concurrency", "3", "--job-batch-size", "7", "--job-batch-slots", "2"]))
    assert (given.job_concurrency, given.job_batch_size, given.job_batch_slots) == (3, 7, 2)
    left_out = settings_from(build_parser().parse_args([command]))
    defaults = Settings()
    assert (left_out.job_concurrency, left_out.job_batch_size, left_out.job_batch_slots) == (
        defaults.job_concurrency, defaults.job_batch_size, defaults.job_batch_slots)


@pytest.mark.parametrize(("value", "message"), [
    ("0", "argument --job-batch-size: must be at least 1, got 0"),
    ("-2", "argument --job-batch-size: must be at least 1, got -2"),
    ("many", "argument --job-batch-size: must be a whole number, got 'many'"),
    ("1.5", "argument --job-batch-size: must be a whole number, got '1.5'"),
])
def test_a_bad_value_is_refused_by_name(value: str, message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--job-batch-size", value])
    assert message in capsys.readouterr().err


async def job_commits(database_url: str, namespace: str) -> int:
    """Commits in the log that wrote a scheduled job (scheduling it, or running it)."""
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(
            f'SELECT count(*) FROM "{namespace}"."_commits" '
            "WHERE writes LIKE '%_scheduled_functions%'")
        return count
    finally:
        await conn.close()


@pytest.mark.parametrize(("batch_size", "commits"), [("1", 1 + 5), ("64", 1 + 1)])
async def test_the_batch_size_is_how_many_jobs_commit_together(
        tmp_path: Path, database_url: str, batch_size: str, commits: int) -> None:
    app = write_app(tmp_path / "app", APP)
    namespace = new_namespace()
    settings = settings_from(build_parser().parse_args([
        "serve", "--app", str(app), "--database-url", database_url,
        "--db-schema", namespace, "--job-batch-size", batch_size]))
    deployment = Deployment(settings)
    engine = await deployment.start()
    try:
        await engine.run_mutation("jobs:schedule", {"n": 5.0}, None)
        async with asyncio.timeout(20):
            while (await engine.run_query("jobs:states", {})).value != ["success"] * 5:
                await asyncio.sleep(0.05)
        assert await job_commits(database_url, namespace) == commits
    finally:
        await deployment.store.drop()
        await deployment.stop()
