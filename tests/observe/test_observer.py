"""Executions recorded end to end on real Postgres: lines, outcomes, figures, callers.

Each test runs an app's functions through the engine (and the HTTP API or job runner where
the caller matters) and reads what the deployment's observer recorded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from reactive_store.errors import ConvexError, FunctionNotFound, PermissionDenied
from reactive_store.observe.observer import Observer, ObserveSettings, lines_of, source
from reactive_store.observe.records import Execution
from reactive_store.server import create_app
from tests.support import until

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"body": v.string(), "n": v.int64()}).index("by_body", ["body"]),
})
"""
FUNCTIONS = """
import asyncio
import logging
from reactive_store import (ConvexError, action, internal_mutation, mutation, query, v)

log = logging.getLogger(__name__)

@mutation(args={"body": v.string()})
async def add(ctx, body):
    print("adding", body)
    log.info("info from %s", "add")
    return await ctx.db.insert("notes", {"body": body, "n": 0})

@query(args={})
async def count(ctx):
    notes = await ctx.db.query("notes").collect()
    print(f"counted {len(notes)}")
    return len(notes)

@mutation(args={"body": v.string()})
async def add_then_fail(ctx, body):
    await ctx.db.insert("notes", {"body": body, "n": 0})
    print("about to fail")
    raise ValueError("no " + body)

@mutation(args={"id": v.id("notes")})
async def bump(ctx, id):
    note = await ctx.db.get(id)
    print("attempt", note["n"])
    await asyncio.sleep(0.05)
    await ctx.db.patch(id, {"n": note["n"] + 1})

@query(args={"lines": v.float64()})
async def chatty(ctx, lines):
    for i in range(int(lines)):
        print("line", i)
    print("x" * 40000)

@action(args={})
async def report(ctx):
    print("before")
    total = await ctx.run_query("notes:count", {})
    print("after", total)
    return total

@internal_mutation(args={"body": v.string()})
async def scheduled(ctx, body):
    print("scheduled ran", body)
    await ctx.db.insert("notes", {"body": body, "n": 1})

@mutation(args={"body": v.string()})
async def later(ctx, body):
    return await ctx.scheduler.run_after(0, scheduled, {"body": body})

@mutation(args={})
async def convex_error(ctx):
    raise ConvexError({"code": "nope", "message": "not allowed"})
"""
HTTP = """
from starlette.responses import JSONResponse, PlainTextResponse
from reactive_store import HttpRouter

http = HttpRouter()

@http.route("/hook", method="POST")
async def hook(ctx, request):
    print("hook got", (await request.body()).decode())
    await ctx.run_mutation("notes:add", {"body": "from hook"})
    return JSONResponse({"ok": True})

@http.route("/crash", method="GET")
async def crash(ctx, request):
    print("crashing")
    raise RuntimeError("route broke")
"""
CRONS = """
from reactive_store import Crons
crons = Crons()
crons.interval("tick", seconds=1, fn="notes:scheduled", args={"body": "tick"})
"""
APP = {"schema/__init__.py": SCHEMA, "functions/notes.py": FUNCTIONS,
       "functions/http.py": HTTP}


def executions(engine: Any, path: str) -> list[Execution]:
    return [ex for ex in engine.observer.log if ex.path == path]


async def test_a_mutation_and_a_query_are_recorded_with_lines_and_figures(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    with source("HttpApi"):
        added = await engine.run_mutation("notes:add", {"body": "hi"}, {"subject": "ann"})
        counted = await engine.run_query("notes:count", {})
    assert added.log_lines == ["[LOG] adding hi", "[INFO] info from add"]
    assert counted.log_lines == ["[LOG] counted 1"] and counted.value == 1
    (add,) = executions(engine, "notes:add")
    assert (add.kind, add.caller, add.identity, add.ok, add.retries) == (
        "mutation", "HttpApi", "ann", True, 0)
    assert add.documents_written == 1 and add.bytes_written > 0
    assert add.duration_ms > 0 and add.finished >= add.started
    (count,) = executions(engine, "notes:count")
    assert (count.kind, count.identity, count.documents_read) == ("query", None, 1)
    assert count.to_json()["usageStats"]["databaseReadDocuments"] == 1


async def test_a_failure_keeps_its_lines_message_and_app_traceback(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    with pytest.raises(ValueError, match="no way") as failed:
        await engine.run_mutation("notes:add_then_fail", {"body": "way"})
    assert lines_of(failed.value) == ["[LOG] about to fail"]
    (ex,) = executions(engine, "notes:add_then_fail")
    assert not ex.ok and ex.error == "Uncaught ValueError: no way"
    assert ex.traceback is not None and "notes.py" in ex.traceback
    assert "reactive_store" not in ex.traceback and ex.traceback.endswith("ValueError: no way")
    with pytest.raises(ConvexError):
        await engine.run_mutation("notes:convex_error", {})
    (convex,) = executions(engine, "notes:convex_error")
    assert convex.error == "not allowed" and convex.traceback is None


async def test_only_the_final_attempt_of_a_retried_mutation_keeps_its_lines(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    note = (await engine.run_mutation("notes:add", {"body": "contended"})).value
    outcomes = await asyncio.gather(*(engine.run_mutation("notes:bump", {"id": note})
                                      for _ in range(3)))
    bumps = executions(engine, "notes:bump")
    assert len(bumps) == 3 and sum(ex.retries for ex in bumps) >= 1
    for outcome, ex in zip(sorted(outcomes, key=lambda o: o.retries),
                           sorted(bumps, key=lambda e: e.retries), strict=True):
        assert outcome.retries == ex.retries
        assert len(ex.lines) == 1 and len(outcome.log_lines) == 1  # one attempt's worth
    assert sorted(int(ex.lines[0].message.split()[1]) for ex in bumps) == [0, 1, 2]
    assert sum(ex.retries for ex in bumps) == sum(o.retries for o in outcomes)


async def test_limits_apply_per_execution(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    outcome = await engine.run_query("notes:chatty", {"lines": 300})
    assert len(outcome.log_lines) == 256
    assert outcome.log_lines[254] == "[LOG] line 254"
    assert outcome.log_lines[-1] == "[ERROR] Log overflow (maximum 256). Remaining log lines " \
                                    "omitted."
    (ex,) = executions(engine, "notes:chatty")
    assert ex.dropped_lines == 46 and ex.to_json()["droppedLogLines"] == 46
    short = await engine.run_query("notes:chatty", {"lines": 0})
    assert short.log_lines == ["[LOG] " + "x" * 32768 + " (truncated due to length)"]


async def test_an_action_and_the_query_it_runs_are_separate_executions(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    with source("SyncWorker", admin=True):
        outcome = await engine.run_action("notes:report", {})
    assert outcome.log_lines == ["[LOG] before", "[LOG] after 0"]
    (action,) = executions(engine, "notes:report")
    (query,) = executions(engine, "notes:count")
    assert query.parent == action.id and query.caller == "Action"
    assert action.caller == "SyncWorker" and action.identity == "admin"
    assert [line.message for line in query.lines] == ["counted 0"]


async def test_missing_functions_and_system_functions_are_not_recorded(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    with pytest.raises(FunctionNotFound):
        await engine.run_query("notes:nope", {})
    with pytest.raises(PermissionDenied):  # `_system/` is for the admin only
        await engine.run_query("_system/x:y", {})
    with pytest.raises(FunctionNotFound):
        await engine.run_query("_system/x:y", {}, internal_ok=True)
    assert len(engine.observer.log) == 0


async def test_argument_errors_of_a_real_function_are_recorded(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    with pytest.raises(Exception, match="body"):
        await engine.run_mutation("notes:add", {"body": 5})
    (ex,) = executions(engine, "notes:add")
    assert not ex.ok and ex.lines == [] and "body" in (ex.error or "")


async def test_scheduled_jobs_and_crons_name_their_caller(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app({**APP, "functions/crons.py": CRONS}))
    await engine.run_mutation("notes:later", {"body": "job"})

    async def seen() -> bool:
        callers = {ex.caller for ex in executions(engine, "notes:scheduled")}
        return {"Scheduler", "Cron"} <= callers

    await until(seen, timeout=15)
    job = next(ex for ex in executions(engine, "notes:scheduled") if ex.caller == "Scheduler")
    assert [line.message for line in job.lines] == ["scheduled ran job"]
    figures = engine.deployment.metrics.server_figures()
    assert engine.deployment.metrics.last_scheduler_lag >= 0
    assert figures["live_queries"] == 0 and figures["pool_max"] == 12


async def test_http_routes_are_executions(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        assert (await http.post("/hook", content=b"payload")).status_code == 200
        crashed = await http.get("/crash")
        response = await http.post("/api/query", json={"path": "notes:count", "args": {}})
    assert crashed.status_code == 500 and crashed.text == "Internal Server Error"
    assert response.json()["logLines"] == ["[LOG] counted 1"]
    (hook,) = executions(engine, "POST /hook")
    assert hook.kind == "httpAction" and hook.caller == "HttpEndpoint" and hook.ok
    assert [line.message for line in hook.lines] == ["hook got payload"]
    (nested,) = executions(engine, "notes:add")
    assert nested.parent == hook.id and nested.caller == "HttpEndpoint"
    (crash,) = executions(engine, "GET /crash")
    assert not crash.ok and crash.error == "Uncaught RuntimeError: route broke"
    assert [line.message for line in crash.lines] == ["crashing"]
    assert hook.to_json()["udfType"] == "HttpAction"


async def test_the_http_api_sends_log_lines_on_success_and_failure(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        ok = (await http.post("/api/mutation", json={"path": "notes:add",
                                                     "args": {"body": "b"}})).json()
        failed = (await http.post("/api/mutation", json={"path": "notes:add_then_fail",
                                                         "args": {"body": "b"}})).json()
    assert ok["logLines"] == ["[LOG] adding b", "[INFO] info from add"]
    assert failed == {"status": "error", "errorMessage": "Uncaught ValueError: no b",
                      "logLines": ["[LOG] about to fail"]}
    (ex,) = executions(engine, "notes:add")
    assert ex.caller == "HttpApi" and ex.identity is None


async def test_recording_off_captures_nothing(make_app: Any, database_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from reactive_store.deployment import Deployment, Settings
    from tests.support import new_namespace

    deployment = Deployment(Settings(app_dir=make_app(APP), database_url=database_url,
                                     namespace=new_namespace(),
                                     observe=ObserveSettings(enabled=False)))
    engine = await deployment.start()
    try:
        outcome = await engine.run_mutation("notes:add", {"body": "quiet"})
        assert outcome.log_lines == [] and len(deployment.observer.log) == 0
        assert "adding quiet" in capsys.readouterr().out
        assert deployment.metrics.functions == {}
    finally:
        await deployment.store.drop()
        await deployment.stop()


def test_an_observer_without_a_running_execution_does_nothing() -> None:
    observer = Observer()
    with observer.attempt(None):
        logging.getLogger("x").info("nothing to capture")
    assert len(observer.log) == 0
