"""Our asyncio client against a real server: subscriptions, read-your-writes, reconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive_store.client import ClientError, connect
from tests.support import ACCOUNTS_APP, new_namespace, stop_server

EXTRA = """
from reactive_store import ConvexError, action, query, v

@action(args={"x": v.float64()})
async def double(ctx, x):
    return x * 2

@query(args={})
async def refuse(ctx):
    raise ConvexError({"why": "no"})

@query(args={"paginationOpts": v.any()})
async def owners(ctx, paginationOpts):
    r = await ctx.db.query("accounts").with_index("by_owner").paginate(paginationOpts)
    return [d["owner"] for d in r["page"]]
"""


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA})


async def test_subscribe_query_mutation_action(app: Any, serve: Any) -> None:
    url, _ = await serve(app)
    async with connect(url) as client:
        updates = client.subscribe("accounts:total", {})
        assert await anext(updates) == 0
        doc_id = await client.mutation("accounts:open", {"owner": "ann", "balance": 5})
        assert isinstance(doc_id, str)
        assert await anext(updates) == 5
        assert (await client.query("accounts:by_owner", {"owner": "ann"}))["balance"] == 5
        assert await client.action("extra:double", {"x": 1.5}) == 3.0
        await updates.aclose()


async def test_mutation_returns_after_subscriptions_reflect_it(app: Any, serve: Any) -> None:
    url, _ = await serve(app)
    async with connect(url) as client:
        seen: list[Any] = []

        async def watch() -> None:
            async for value in client.subscribe("accounts:total", {}):
                seen.append(value)

        watcher = asyncio.create_task(watch())
        while not seen:
            await asyncio.sleep(0.01)
        for i in range(1, 6):
            await client.mutation("accounts:open", {"owner": f"o{i}", "balance": 1})
            await asyncio.sleep(0)
            assert seen[-1] == i, "a mutation must resolve only once subscriptions show it"
        watcher.cancel()


async def test_errors_reach_the_caller(app: Any, serve: Any) -> None:
    url, _ = await serve(app)
    async with connect(url) as client:
        with pytest.raises(ClientError, match="missing required field"):
            await client.mutation("accounts:open", {"owner": "x"})
        with pytest.raises(ClientError) as info:
            await client.query("extra:refuse", {})
        assert info.value.data == {"why": "no"}
        with pytest.raises(ClientError, match="Could not find public function"):
            await client.query("nope:gone", {})


async def test_reconnects_after_a_server_restart(app: Any, serve: Any) -> None:
    namespace = new_namespace()
    url, first = await serve(app, namespace=namespace)
    port = int(url.rsplit(":", 1)[1])
    async with connect(url) as client:
        updates = client.subscribe("accounts:total", {})
        assert await anext(updates) == 0
        await client.mutation("accounts:open", {"owner": "a", "balance": 2})
        assert await anext(updates) == 2
        await stop_server(first)
        await serve(app, namespace=namespace, port=port)
        await client.mutation("accounts:open", {"owner": "b", "balance": 3})
        value = await asyncio.wait_for(anext(updates), 10)
        while value != 5:
            value = await asyncio.wait_for(anext(updates), 10)
        await updates.aclose()


async def test_a_page_keeps_its_bounds_across_a_server_restart(app: Any, serve: Any) -> None:
    """The client keeps each query's journal and sends it back when it re-adds the query,
    so a paginated query's page is the same range after a reconnect."""
    namespace = new_namespace()
    url, first = await serve(app, namespace=namespace)
    port = int(url.rsplit(":", 1)[1])
    async with connect(url) as client:
        for owner in ("a", "c", "e"):
            await client.mutation("accounts:open", {"owner": owner, "balance": 1})
        pages = client.subscribe("extra:owners", {"paginationOpts": {"numItems": 2,
                                                                     "cursor": None}})
        assert await anext(pages) == ["a", "c"]
        await client.mutation("accounts:open", {"owner": "b", "balance": 1})
        assert await anext(pages) == ["a", "b", "c"]
        await stop_server(first)
        await serve(app, namespace=namespace, port=port)
        await client.mutation("accounts:open", {"owner": "bb", "balance": 1})
        value = await asyncio.wait_for(anext(pages), 10)
        while value != ["a", "b", "bb", "c"]:
            assert value == ["a", "b", "c"], "the page must keep its end after a reconnect"
            value = await asyncio.wait_for(anext(pages), 10)
        await pages.aclose()


async def test_no_database_transactions_while_subscribers_idle(app: Any, serve: Any) -> None:
    import httpx

    url, _ = await serve(app)
    async with connect(url) as client, httpx.AsyncClient(base_url=url) as http:
        subscriptions = [client.subscribe("accounts:by_owner", {"owner": f"o{i}"})
                         for i in range(20)]
        for updates in subscriptions:
            assert await anext(updates) is None
        before = (await http.get("/api/_stats")).json()
        await asyncio.sleep(0.5)
        after = (await http.get("/api/_stats")).json()
        assert before["liveQueries"] == 20 and before["queryRuns"] == after["queryRuns"]
        assert after["transactions"] == before["transactions"]
        await client.mutation("accounts:open", {"owner": "o3", "balance": 1})
        changed = (await http.get("/api/_stats")).json()
        assert changed["queryRuns"] == after["queryRuns"] + 1, "only o3's query re-runs"
        for updates in subscriptions:
            await updates.aclose()


LOGGING = """
import logging
from reactive_store import action, mutation, query, v

@query(args={})
async def listed(ctx):
    accounts = await ctx.db.query("accounts").collect()
    print("listing", len(accounts))
    return len(accounts)

@mutation(args={"owner": v.string()})
async def open_loudly(ctx, owner):
    logging.getLogger(__name__).warning("opening %s", owner)
    return await ctx.db.insert("accounts", {"owner": owner, "balance": 1})

@mutation(args={})
async def fail_loudly(ctx):
    print("about to fail")
    raise ValueError("nope")

@action(args={})
async def shout(ctx):
    print("from the action")
    return "ok"
"""


async def test_log_lines_come_back_with_results_and_responses(make_app: Any,
                                                              serve: Any) -> None:
    from reactive_store.client import FunctionLog

    url, deployment = await serve(make_app({**ACCOUNTS_APP, "functions/loud.py": LOGGING}))
    seen: list[FunctionLog] = []
    async with connect(url, on_log=seen.append) as client:
        updates = client.subscribe("loud:listed", {})
        assert await anext(updates) == 0
        await client.mutation("loud:open_loudly", {"owner": "ann"})
        assert await anext(updates) == 1  # re-run: new value and new lines
        with pytest.raises(ClientError, match="nope"):
            await client.mutation("loud:fail_loudly", {})
        assert await client.action("loud:shout", {}) == "ok"
        await updates.aclose()
    assert [str(line) for line in seen] == [
        "[CONVEX Q(loud:listed)] [LOG] listing 0",
        "[CONVEX M(loud:open_loudly)] [WARN] opening ann",
        "[CONVEX Q(loud:listed)] [LOG] listing 1",
        "[CONVEX M(loud:fail_loudly)] [LOG] about to fail",
        "[CONVEX A(loud:shout)] [LOG] from the action",
    ]
    callers = {ex.path: ex.caller for ex in deployment.observer.log}
    assert callers["loud:listed"] == "SyncWorker" and callers["loud:shout"] == "SyncWorker"


async def test_by_default_function_logs_go_to_the_client_logger(
        make_app: Any, serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    url, _ = await serve(make_app({**ACCOUNTS_APP, "functions/loud.py": LOGGING}))
    with caplog.at_level("INFO", logger="reactive_store.client.functions"):
        async with connect(url) as client:
            await client.mutation("loud:open_loudly", {"owner": "bo"})
    assert [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "reactive_store.client.functions"] == [
        ("WARNING", "[CONVEX M(loud:open_loudly)] [WARN] opening bo")]
