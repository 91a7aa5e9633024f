"""Crons (cadence, missed runs, bad declarations) and HTTP routes, on real Postgres."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reactive_store.app.crons import Crons
from reactive_store.app.http_router import HttpRouter
from reactive_store.deployment import Deployment, Settings
from tests.support import new_namespace, write_app

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({"ticks": define_table({"name": v.string()})})
"""
FUNCTIONS = """
from reactive_store import internal_mutation, query, v

@internal_mutation(args={"name": v.string()})
async def tick(ctx, name):
    await ctx.db.insert("ticks", {"name": name})

@query(args={})
async def ticks(ctx):
    return [t["name"] for t in await ctx.db.query("ticks").collect()]

@query(args={"name": v.string()})
async def runs(ctx, name):
    return await ctx.db.system.query("_scheduled_functions").with_index(
        "by_cron", lambda q: q.eq("cron", name)).collect()

@query(args={"name": v.string()})
async def ticks_and_runs(ctx, name):
    ticks = [t["name"] for t in await ctx.db.query("ticks").collect()]
    return ticks, await ctx.db.system.query("_scheduled_functions").with_index(
        "by_cron", lambda q: q.eq("cron", name)).collect()
"""
CRONS = """
from reactive_store import Crons
from .work import tick

crons = Crons()
crons.interval("fast", seconds=1, fn=tick, args={"name": "fast"})
crons.cron("broken", "61 * * * *", fn="work:tick", args={"name": "never"})
crons.daily("digest", hour=3, fn="work:tick", args={"name": "digest"})
"""
HTTP = """
from starlette.responses import JSONResponse, PlainTextResponse
from reactive_store import HttpRouter

http = HttpRouter()

@http.route("/hooks/echo", method="POST")
async def echo(ctx, request):
    body = await request.json()
    await ctx.run_mutation("work:tick", {"name": body["name"]})
    return JSONResponse({"stored": body["name"], "ticks": await ctx.run_query("work:ticks")})

@http.route(path_prefix="/files/")
async def files(ctx, request):
    return PlainTextResponse("file " + request.url.path.removeprefix("/files/"))

@http.route("/boom")
async def boom(ctx, request):
    raise RuntimeError("secret internals")

@http.route("/wrong")
async def wrong(ctx, request):
    return {"not": "a response"}
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {"schema/__init__.py": SCHEMA,
                                        "functions/work.py": FUNCTIONS,
                                        "functions/crons.py": CRONS,
                                        "functions/http.py": HTTP})


async def test_interval_cron_cadence_and_history(app: Path, deploy: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    engine = await deploy(app)
    assert engine.app.crons.errors and "'61 * * * *'" in engine.app.crons.errors[0]
    await asyncio.sleep(2.6)
    # One snapshot: a cron run scheduled but not yet finished is pending, not a tick.
    ticks, runs = (await engine.run_query("work:ticks_and_runs", {"name": "fast"})).value
    assert 2 <= ticks.count("fast") <= 3 and "never" not in ticks
    done = [r for r in runs if r["state"]["kind"] != "pending"]
    assert len(done) == ticks.count("fast")
    assert all(r["state"]["kind"] == "success" for r in done)


async def test_a_missed_cron_runs_once_on_start(app: Path, deploy: Any,
                                                database_url: str) -> None:
    namespace = new_namespace()
    first = await deploy(app, namespace=namespace)
    await first.deployment.stop()
    # The daily digest was due three times while no server ran: move its next run back.
    quiet = Deployment(Settings(app_dir=app, database_url=database_url, namespace=namespace,
                                run_jobs=False))
    engine = await quiet.start()
    try:
        async def rewind(db: Any, tx: Any) -> tuple[Any, Any]:
            cron = await db.system.query("_cron_jobs").filter(
                lambda c: c["name"] == "digest").unique()
            await db._patch(cron["_id"], {"nextRun": (time.time() - 3 * 86400) * 1000},
                            system=True)
            return None, None

        await engine.transact("test", rewind)
    finally:
        await quiet.stop()
    second = await deploy(app, namespace=namespace)

    async def digests() -> Any:
        runs = (await second.run_query("work:runs", {"name": "digest"})).value
        return runs or None

    deadline = time.monotonic() + 5
    while not await digests() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    runs = await digests()
    assert runs is not None and len(runs) == 1, "missed ticks run once, not once per tick"


def test_declaration_errors() -> None:
    crons = Crons()
    crons.interval("zero", seconds=0, fn="m:f")
    crons.cron("a", "* * * * *", fn="m:f")
    crons.cron("a", "* * * * *", fn="m:f")
    crons.weekly("w", day_of_week="friday", hour=17, fn="m:f")
    assert list(crons.jobs) == ["a", "w"] and crons.jobs["w"].schedule == "0 17 * * 5"
    assert any("positive" in e for e in crons.errors)
    assert any("declared twice" in e for e in crons.errors)
    http = HttpRouter()
    for bad, message in [({"path": "/api/x"}, "reserved"), ({"path": "nope"}, "start with"),
                         ({"path_prefix": "/p"}, "end with '/'"), ({}, "exactly one")]:
        with pytest.raises(ValueError, match=message):
            http.route(**bad)  # type: ignore[arg-type]


async def test_http_routes(app: Path, serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    url, _ = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/hooks/echo", json={"name": "web"})
        assert response.status_code == 200
        assert response.json() == {"stored": "web", "ticks": ["web"]}
        assert (await client.get("/files/a/b.txt")).text == "file a/b.txt"
        assert (await client.get("/hooks/echo")).status_code == 405
        assert (await client.get("/nothing-here")).status_code == 404
        with caplog.at_level(logging.ERROR):
            crashed = await client.get("/boom")
        assert crashed.status_code == 500 and "secret" not in crashed.text
        assert "secret internals" in caplog.text
        assert (await client.get("/wrong")).status_code == 500
        assert (await client.post("/api/query", json={"path": "work:ticks", "args": {}})
                ).json()["value"] == ["web"]
