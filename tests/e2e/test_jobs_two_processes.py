"""Scheduled mutations with two real server processes racing for the same due jobs, one of
them killed in the middle of a batch."""

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
        schema = define_schema({"runs": define_table({"n": v.float64(), "pid": v.float64()})})
    """,
    "functions/work.py": """
        import asyncio
        import os
        from reactive_store import internal_mutation, mutation, query, v

        @internal_mutation(args={"n": v.float64(), "pause": v.float64()})
        async def run(ctx, n, pause):
            await asyncio.sleep(pause)
            await ctx.db.insert("runs", {"n": n, "pid": float(os.getpid())})

        @mutation(args={"count": v.float64(), "delay": v.float64(), "pause": v.float64()})
        async def schedule(ctx, count, delay, pause):
            return [await ctx.scheduler.run_after(delay, run, {"n": float(i), "pause": pause})
                    for i in range(int(count))]

        @query
        async def last_pid(ctx):
            last = await ctx.db.query("runs").order("desc").first()
            return None if last is None else last["pid"]

        @query
        async def runs(ctx):
            return sorted(r["n"] for r in await ctx.db.query("runs").collect())

        @query
        async def states(ctx):
            jobs = await ctx.db.system.query("_scheduled_functions").collect()
            return sorted(j["state"]["kind"] for j in jobs)
    """,
}


async def states_once_all_succeeded(url: str, count: int, seconds: float) -> list[str]:
    """The jobs' states as soon as all `count` succeeded, else as they are after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        states: list[str] = await http_call(url, "query", "work:states", {})
        if states == ["success"] * count or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.1)


async def test_each_job_runs_exactly_once_across_two_processes(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", APP)
    first = await serve_app(app)
    second = await serve_app(app, namespace=serve_app.server(first).namespace)
    await http_call(first, "mutation", "work:schedule",
                    {"count": 60.0, "delay": 1.0, "pause": 0.0})
    states = await states_once_all_succeeded(second, 60, seconds=20)
    assert states == ["success"] * 60, states
    assert await http_call(first, "query", "work:runs", {}) == [float(i) for i in range(60)]


async def test_a_process_killed_mid_batch_loses_and_repeats_no_job(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", APP)
    first = await serve_app(app)
    second = await serve_app(app, namespace=serve_app.server(first).namespace)
    procs = {url: serve_app.server(url).proc for url in (first, second)}
    servers = {proc.pid: url for url, proc in procs.items() if proc is not None}
    # 10 ms a job: a batch runs for its whole time budget, so a kill lands inside one.
    await http_call(first, "mutation", "work:schedule",
                    {"count": 200.0, "delay": 0.5, "pause": 0.01})
    deadline = time.monotonic() + 20
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = await http_call(first, "query", "work:last_pid", {})
        await asyncio.sleep(0.02)
    assert pid is not None, "no job ran"
    victim = servers[int(pid)]
    survivor = second if victim == first else first
    await serve_app.server(victim).kill()
    states = await states_once_all_succeeded(survivor, 200, seconds=30)
    assert states == ["success"] * 200, states
    assert await http_call(survivor, "query", "work:runs", {}) == [float(i) for i in range(200)]
