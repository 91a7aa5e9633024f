"""Scheduled mutations with two real server processes racing for the same due jobs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e.clients import http_call
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({"runs": define_table({"n": v.float64()})})
    """,
    "functions/work.py": """
        from reactive_store import internal_mutation, mutation, query, v

        @internal_mutation(args={"n": v.float64()})
        async def run(ctx, n):
            await ctx.db.insert("runs", {"n": n})

        @mutation(args={"count": v.float64(), "delay": v.float64()})
        async def schedule(ctx, count, delay):
            return [await ctx.scheduler.run_after(delay, run, {"n": float(i)})
                    for i in range(int(count))]

        @query
        async def runs(ctx):
            return sorted(r["n"] for r in await ctx.db.query("runs").collect())

        @query
        async def states(ctx):
            jobs = await ctx.db.system.query("_scheduled_functions").collect()
            return sorted(j["state"]["kind"] for j in jobs)
    """,
}


async def test_each_job_runs_exactly_once_across_two_processes(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", APP)
    first = await serve_app(app)
    second = await serve_app(app, namespace=serve_app.server(first).namespace)
    await http_call(first, "mutation", "work:schedule", {"count": 60.0, "delay": 1.0})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = await http_call(second, "query", "work:states", {})
        if states == ["success"] * 60:
            break
        await asyncio.sleep(0.1)
    assert states == ["success"] * 60, states
    assert await http_call(first, "query", "work:runs", {}) == [float(i) for i in range(60)]
