"""Text search through `ctx.db.query(t).with_search_index(...)` on real Postgres: relevance
order, any-term and prefix matching, equality filters, take/paginate/async for, the 1,024
cap, writes keeping the index in step, and every error naming its problem."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.errors import QueryError

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "messages": define_table({"body": v.string(), "session": v.string(),
                              "kind": v.optional(v.string())})
        .index("by_session", ["session"])
        .search_index("search_body", search_field="body", filter_fields=["session", "kind"]),
})
"""
FUNCTIONS = """
from reactive_store import UNSET, mutation, query, v

@mutation(args={"body": v.string(), "session": v.string(), "kind": v.optional(v.string())})
async def add(ctx, body, session, kind=None):
    doc = {"body": body, "session": session}
    if kind is not None:
        doc["kind"] = kind
    return await ctx.db.insert("messages", doc)

@mutation(args={"id": v.id("messages"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)

@mutation(args={"id": v.id("messages")})
async def remove(ctx, id):
    await ctx.db.delete(id)

@query(args={"text": v.string(), "session": v.optional(v.string()), "n": v.float64()})
async def find(ctx, text, session=None, n=10):
    def build(q):
        q = q.search("body", text)
        return q.eq("session", session) if session is not None else q
    docs = await ctx.db.query("messages").with_search_index("search_body", build).take(int(n))
    return [d["body"] for d in docs]

@query(args={"text": v.string()})
async def every(ctx, text):
    out = []
    async for d in ctx.db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", text)):
        out.append(d["body"])
    assert out == [d["body"] for d in await ctx.db.query("messages").with_search_index(
        "search_body", lambda q: q.search("body", text)).collect()]
    return out

@query(args={"text": v.string(), "opts": v.any()})
async def page(ctx, text, opts):
    r = await ctx.db.query("messages").with_search_index(
        "search_body", lambda q: q.search("body", text)).paginate(opts)
    return {"page": [d["body"] for d in r["page"]], "isDone": r["isDone"],
            "continueCursor": r["continueCursor"]}

@query(args={"text": v.string(), "kind": v.string()})
async def filtered(ctx, text, kind):
    q = ctx.db.query("messages").with_search_index(
        "search_body", lambda q: q.search("body", text).eq("kind", kind))
    return [d["body"] for d in await q.filter(lambda d: "x" not in d["body"]).collect()]

@query(args={"case": v.string()})
async def misuse(ctx, case):
    q = ctx.db.query("messages")
    if case == "unknown":
        return await q.with_search_index("nope", lambda q: q.search("body", "a")).take(1)
    if case == "field":
        return await q.with_search_index("search_body", lambda q: q.search("session", "a")).take(1)
    if case == "filter":
        return await q.with_search_index(
            "search_body", lambda q: q.search("body", "a").eq("body", "x")).take(1)
    if case == "nosearch":
        return await q.with_search_index("search_body", lambda q: q.eq("session", "s")).take(1)
    if case == "order":
        return await q.with_search_index(
            "search_body", lambda q: q.search("body", "a")).order("desc").take(1)
    if case == "twice":
        return await q.with_search_index(
            "search_body", lambda q: q.search("body", "a").search("body", "b")).take(1)
    if case == "text":
        return await q.with_search_index("search_body", lambda q: q.search("body", 5)).take(1)
    if case == "eqtwice":
        return await q.with_search_index(
            "search_body", lambda q: q.search("body", "a").eq("session", "x").eq("session", "y")
        ).take(1)
    if case == "late":
        return await q.order("desc").with_search_index(
            "search_body", lambda q: q.search("body", "a")).take(1)
    if case == "options":
        return await q.with_search_index(
            "search_body", lambda q: q.search("body", "a")).paginate({"cursor": None})
    if case == "negative":
        return await q.with_search_index("search_body", lambda q: q.search("body", "a")).take(-1)
    if case == "notq":
        return await q.with_search_index("search_body", lambda q: None).take(1)
    if case == "cursor":
        return await q.with_search_index(
            "search_body", lambda q: q.search("body", "a")).paginate(
                {"numItems": 1, "cursor": "bm9wZQ"})
"""


@pytest.fixture
async def engine(make_app: Any, deploy: Any) -> Any:
    return await deploy(make_app({"schema/__init__.py": SCHEMA,
                                  "functions/m.py": FUNCTIONS}))


async def add(engine: Any, body: str, session: str = "s1", kind: str | None = None) -> str:
    args = {"body": body, "session": session} | ({"kind": kind} if kind else {})
    return str((await engine.run_mutation("m:add", args)).value)


async def find(engine: Any, text: str, session: str | None = None, n: int = 10) -> list[str]:
    args: dict[str, Any] = {"text": text, "n": float(n)}
    if session is not None:
        args["session"] = session
    return list((await engine.run_query("m:find", args)).value)


async def test_relevance_any_term_and_prefix(engine: Any) -> None:
    await add(engine, "the deploy failed again")
    await add(engine, "deploy deploy deploy: it failed")
    await add(engine, "lunch is ready")
    await add(engine, "Deployment FAILED, rolling back")
    await add(engine, "nothing relevant here at all")
    # "failed" in three documents and "deploy" in two: the one with more deploys ranks first;
    # "deploy" also matches "deployment" as a prefix of the last term only.
    assert await find(engine, "failed deploy") == [
        "deploy deploy deploy: it failed", "the deploy failed again",
        "Deployment FAILED, rolling back"]
    assert await find(engine, "deploy failed") == [
        "deploy deploy deploy: it failed", "the deploy failed again",
        "Deployment FAILED, rolling back"]
    assert await find(engine, "lunch") == ["lunch is ready"]
    assert await find(engine, "lun") == ["lunch is ready"]  # typeahead
    assert await find(engine, "unch") == []  # a prefix, not a substring
    assert await find(engine, "LUNCH!!!") == ["lunch is ready"]  # same tokenizer as the index
    assert await find(engine, "   ") == []
    assert await find(engine, "deploy", n=1) == ["deploy deploy deploy: it failed"]


async def test_filters_and_writes_keep_the_index_in_step(engine: Any) -> None:
    a = await add(engine, "alpha beta", "s1")
    await add(engine, "alpha gamma", "s2")
    assert sorted(await find(engine, "alpha", "s1")) == ["alpha beta"]
    assert sorted(await find(engine, "alpha")) == ["alpha beta", "alpha gamma"]
    await engine.run_mutation("m:patch", {"id": a, "fields": {"body": "delta"}})
    assert await find(engine, "alpha") == ["alpha gamma"]
    assert await find(engine, "delta", "s1") == ["delta"]
    await engine.run_mutation("m:patch", {"id": a, "fields": {"session": "s2"}})
    assert await find(engine, "delta", "s1") == []
    assert await find(engine, "delta", "s2") == ["delta"]
    await engine.run_mutation("m:remove", {"id": a})
    assert await find(engine, "delta") == []


async def test_filter_on_a_missing_field_and_post_filter(engine: Any) -> None:
    await add(engine, "note one", kind="memo")
    await add(engine, "note two x", kind="memo")
    await add(engine, "note three")
    out = (await engine.run_query("m:filtered", {"text": "note", "kind": "memo"})).value
    assert out == ["note one"]


async def test_take_collect_iterate_and_paginate(engine: Any) -> None:
    for i in range(7):
        await add(engine, "word " + " ".join(["pad"] * i))  # shorter documents rank higher
    every = (await engine.run_query("m:every", {"text": "word"})).value
    assert every == ["word " + " ".join(["pad"] * i) for i in range(7)]
    pages: list[str] = []
    cursor = None
    for _ in range(10):
        r = (await engine.run_query("m:page", {"text": "word", "opts": {
            "numItems": 3, "cursor": cursor}})).value
        pages += r["page"]
        cursor = r["continueCursor"]
        if r["isDone"]:
            break
    assert pages == every


async def test_at_most_1024_results(engine: Any) -> None:
    await engine.run_mutation("m:add", {"body": "seed", "session": "s"})
    async def bulk(db: Any) -> None:
        for i in range(1100):
            await db.insert("messages", {"body": f"common {i}", "session": "s"})
    await engine.transact("bulk", lambda db, tx: _run(bulk(db)))
    assert len((await engine.run_query("m:every", {"text": "common"})).value) == 1024


async def _run(coro: Any) -> tuple[Any, Any]:
    await coro
    return None, None


@pytest.mark.parametrize(("case", "message"), [
    ("unknown", "table 'messages' has no search index 'nope'; it has ['search_body']"),
    ("field", "search index 'search_body' searches the field 'body', not 'session'"),
    ("filter", "search index 'search_body': 'body' is not one of its filter fields"),
    ("nosearch", "the function must call q.search(field, text)"),
    ("order", "order() cannot be used with with_search_index()"),
    ("twice", "search() may be called once"),
    ("cursor", "malformed cursor 'bm9wZQ': not a cursor that paginate returned"),
    ("text", "search() takes a string, got 5"),
    ("eqtwice", "two eq() on 'session'"),
    ("late", "with_search_index() must come first, right after query()"),
    ("options", "paginate() takes {'numItems': n, 'cursor': str | None}"),
    ("negative", "take: expected a non-negative integer, got -1"),
    ("notq", "the function must call q.search(field, text) and return its q"),
])
async def test_errors_name_the_problem(engine: Any, case: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        await engine.run_query("m:misuse", {"case": case})
    assert message in str(raised.value)
