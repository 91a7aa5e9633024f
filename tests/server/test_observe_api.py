"""The admin-only log stream (`/api/stream_function_logs`) and `/metrics`, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reactive_store.server import create_app

KEY = "test-admin-key"
ADMIN = {"Authorization": f"Convex {KEY}"}
NOTES = {
    "schema/__init__.py": """
from reactive_store import define_schema, define_table, v
schema = define_schema({"notes": define_table({"body": v.string()})})
""",
    "functions/notes.py": """
from reactive_store import mutation, query, v

@mutation(args={"body": v.string()})
async def add(ctx, body):
    print("adding", body)
    await ctx.db.insert("notes", {"body": body})

@query(args={})
async def boom(ctx):
    raise RuntimeError("boom")
""",
}


@pytest.fixture
async def client(make_app: Any, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    from reactive_store.deployment import Deployment, Settings
    from tests.support import new_namespace

    deployment = Deployment(Settings(app_dir=make_app(NOTES), database_url=database_url,
                                     namespace=new_namespace(), admin_key=KEY))
    await deployment.start()
    app = create_app(deployment, manage_lifespan=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as c:
            yield c
    finally:
        await deployment.store.drop()
        await deployment.stop()


async def call(client: httpx.AsyncClient, kind: str, path: str, args: dict[str, Any]) -> Any:
    return (await client.post(f"/api/{kind}", json={"path": path, "args": args})).json()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Convex wrong"},
                                     {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic abc"}])
async def test_both_endpoints_refuse_without_the_admin_key(
        client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for url in ("/api/stream_function_logs", "/metrics"):
        response = await client.get(url, headers=headers)
        assert response.status_code == 403, url
        assert response.json()["code"] == "Forbidden" and "admin key" in \
            response.json()["message"]


@pytest.mark.parametrize(("query", "message"), [
    ("cursor=abc", "cursor must be a non-negative number"),
    ("cursor=-1", "cursor must be a non-negative number"),
    ("wait=nan", "wait must be a non-negative number"),
    ("status=maybe", "status must be success or failure"),
])
async def test_bad_parameters_are_a_400(client: httpx.AsyncClient, query: str,
                                        message: str) -> None:
    response = await client.get(f"/api/stream_function_logs?{query}", headers=ADMIN)
    assert response.status_code == 400 and message in response.json()["message"]


async def test_the_stream_pages_by_cursor_and_filters(client: httpx.AsyncClient) -> None:
    await call(client, "mutation", "notes:add", {"body": "one"})
    await call(client, "query", "notes:boom", {})
    first = (await client.get("/api/stream_function_logs?cursor=0&wait=0",
                              headers=ADMIN)).json()
    assert [(e["identifier"], e["udfType"], e["error"]) for e in first["entries"]] == [
        ("notes:add", "Mutation", None), ("notes:boom", "Query", "Uncaught RuntimeError: boom")]
    assert first["entries"][0]["logLines"][0]["messages"] == ["adding one"]
    assert first["newCursor"] == first["entries"][-1]["timestamp"] * 1000
    again = (await client.get(f"/api/stream_function_logs?cursor={first['newCursor']}&wait=0",
                              headers=ADMIN)).json()
    assert again == {"entries": [], "newCursor": first["newCursor"]}
    failures = (await client.get("/api/stream_function_logs?status=failure&wait=0",
                                 headers=ADMIN)).json()
    assert [e["identifier"] for e in failures["entries"]] == ["notes:boom"]
    only = (await client.get("/api/stream_function_logs?function=notes:add&wait=0",
                             headers={"Authorization": f"Bearer {KEY}"})).json()
    assert [e["identifier"] for e in only["entries"]] == ["notes:add"]
    assert only["newCursor"] == first["newCursor"]  # what the filter skipped is not re-read


async def test_the_stream_waits_for_the_next_execution(client: httpx.AsyncClient) -> None:
    start = (await client.get("/api/stream_function_logs?wait=0", headers=ADMIN)).json()
    waiting = asyncio.create_task(client.get(
        f"/api/stream_function_logs?cursor={start['newCursor']}&wait=10", headers=ADMIN))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await call(client, "mutation", "notes:add", {"body": "two"})
    body = (await asyncio.wait_for(waiting, 5)).json()
    assert [e["identifier"] for e in body["entries"]] == ["notes:add"]


async def test_metrics_in_prometheus_text(client: httpx.AsyncClient) -> None:
    await call(client, "mutation", "notes:add", {"body": "one"})
    await call(client, "query", "notes:boom", {})
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for expected in (
        'reactive_store_function_calls_total{function="notes:add",kind="mutation",'
        'outcome="success"} 1.0',
        'reactive_store_function_calls_total{function="notes:boom",kind="query",'
        'outcome="failure"} 1.0',
        'reactive_store_function_duration_seconds_count{function="notes:add",'
        'kind="mutation"} 1.0',
        'reactive_store_function_documents_total{function="notes:add",kind="mutation",'
        'op="written"} 1.0',
        'reactive_store_function_log_lines_total{function="notes:add",kind="mutation",'
        'level="LOG"} 1.0',
        "reactive_store_sockets 0.0", "reactive_store_live_queries 0.0",
        "reactive_store_pool_max 10.0", "reactive_store_commit_stream_lag_seconds_count",
        "reactive_store_scheduler_lag_seconds_count", "process_cpu_seconds_total",
    ):
        assert expected in text, expected
