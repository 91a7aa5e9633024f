"""Invalidation precision, tested in pairs: a write inside what a query read re-runs it once,
a write just outside re-runs it not at all (executions are counted, not only pushes)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.live.subscriptions import LiveQuery, SubscriptionManager

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "ranked": define_table({"rank": v.float64(), "group": v.string()})
        .index("by_rank", ["rank"]).index("by_group", ["group", "rank"]),
})
"""
FUNCTIONS = """
from reactive_store import mutation, query, v

@query(args={"n": v.float64()})
async def top(ctx, n):
    return [d["rank"] for d in await ctx.db.query("ranked").with_index("by_rank").take(int(n))]

@query(args={"group": v.string()})
async def group(ctx, group):
    return [d["rank"] for d in await ctx.db.query("ranked").with_index(
        "by_group", lambda q: q.eq("group", group)).collect()]

@query(args={"id": v.id("ranked")})
async def one(ctx, id):
    return await ctx.db.get(id)

@query(args={})
async def highest(ctx):
    d = await ctx.db.query("ranked").with_index("by_rank").order("desc").first()
    return d and d["rank"]

@query(args={"numItems": v.float64()})
async def page(ctx, numItems):
    r = await ctx.db.query("ranked").with_index("by_rank").paginate(
        {"numItems": int(numItems), "cursor": None})
    return [d["rank"] for d in r["page"]]

@query(args={"lo": v.float64(), "hi": v.float64()})
async def between(ctx, lo, hi):
    return [d["rank"] for d in await ctx.db.query("ranked").with_index(
        "by_rank", lambda q: q.gte("rank", lo).lt("rank", hi)).collect()]

@mutation(args={"rank": v.float64(), "group": v.string()})
async def add(ctx, rank, group):
    return await ctx.db.insert("ranked", {"rank": rank, "group": group})

@mutation(args={"id": v.id("ranked"), "rank": v.float64()})
async def move(ctx, id, rank):
    await ctx.db.patch(id, {"rank": rank})

@mutation(args={"id": v.id("ranked")})
async def remove(ctx, id):
    await ctx.db.delete(id)
"""


class Live:
    """A deployment with its subscription manager, and helpers to count executions."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.manager: SubscriptionManager = engine.deployment.subscriptions
        self.ids: dict[float, str] = {}

    async def write(self, path: str, args: dict[str, Any]) -> Any:
        outcome = await self.engine.run_mutation(path, args)
        await self.manager.settled(outcome.ts)
        return outcome.value

    async def subscribe(self, path: str, args: dict[str, Any]) -> LiveQuery:
        live = self.manager.subscribe(path, args, None, lambda: None)
        await self.manager.settled()
        assert live.runs == 1
        return live


@pytest.fixture
async def live(make_app: Any, deploy: Any) -> Live:
    engine = await deploy(make_app({"schema/__init__.py": SCHEMA,
                                    "functions/ranked.py": FUNCTIONS}))
    state = Live(engine)
    for rank in (1.0, 2.0, 3.0):
        state.ids[rank] = await state.write("ranked:add", {"rank": rank, "group": "a"})
    return state


async def expect(live: Live, query: LiveQuery, path: str, args: dict[str, Any],
                 reruns: int) -> None:
    before = query.runs
    await live.write(path, args)
    assert query.runs - before == reruns, f"{path} {args}: expected {reruns} re-run(s)"


async def test_take_two(live: Live) -> None:
    q = await live.subscribe("ranked:top", {"n": 2.0})
    assert q.value == [1.0, 2.0]
    await expect(live, q, "ranked:add", {"rank": 2.5, "group": "b"}, 0)
    await expect(live, q, "ranked:add", {"rank": 1.5, "group": "b"}, 1)
    assert q.value == [1.0, 1.5]


async def test_eq_on_one_group(live: Live) -> None:
    q = await live.subscribe("ranked:group", {"group": "a"})
    await expect(live, q, "ranked:add", {"rank": 9.0, "group": "b"}, 0)
    await expect(live, q, "ranked:add", {"rank": 9.0, "group": "a"}, 1)
    assert q.value == [1.0, 2.0, 3.0, 9.0]


async def test_get_by_id(live: Live) -> None:
    q = await live.subscribe("ranked:one", {"id": live.ids[2.0]})
    await expect(live, q, "ranked:move", {"id": live.ids[3.0], "rank": 7.0}, 0)
    await expect(live, q, "ranked:move", {"id": live.ids[2.0], "rank": 8.0}, 1)
    assert q.value["rank"] == 8.0


async def test_first_desc(live: Live) -> None:
    q = await live.subscribe("ranked:highest", {})
    await expect(live, q, "ranked:add", {"rank": 2.5, "group": "a"}, 0)
    await expect(live, q, "ranked:add", {"rank": 4.0, "group": "a"}, 1)
    assert q.value == 4.0


async def test_paginated_page(live: Live) -> None:
    q = await live.subscribe("ranked:page", {"numItems": 2.0})
    await expect(live, q, "ranked:add", {"rank": 2.5, "group": "a"}, 0)
    await expect(live, q, "ranked:add", {"rank": 0.5, "group": "a"}, 1)
    assert q.value == [0.5, 1.0, 2.0]  # the page keeps its end cursor (its journal)


async def test_patch_moving_into_and_out_of_a_range(live: Live) -> None:
    q = await live.subscribe("ranked:between", {"lo": 1.5, "hi": 2.5})
    assert q.value == [2.0]
    await expect(live, q, "ranked:move", {"id": live.ids[3.0], "rank": 3.5}, 0)
    await expect(live, q, "ranked:move", {"id": live.ids[3.0], "rank": 2.2}, 1)
    assert q.value == [2.0, 2.2]
    await expect(live, q, "ranked:move", {"id": live.ids[2.0], "rank": 5.0}, 1)
    assert q.value == [2.2]


async def test_delete(live: Live) -> None:
    q = await live.subscribe("ranked:between", {"lo": 1.5, "hi": 2.5})
    await expect(live, q, "ranked:remove", {"id": live.ids[3.0]}, 0)
    await expect(live, q, "ranked:remove", {"id": live.ids[2.0]}, 1)
    assert q.value == []


async def test_identical_subscriptions_share_one_execution(live: Live) -> None:
    a = live.manager.subscribe("ranked:top", {"n": 2.0}, None, lambda: None)
    b = live.manager.subscribe("ranked:top", {"n": 2.0}, None, lambda: None)
    other = live.manager.subscribe("ranked:top", {"n": 2.0}, {"subject": "u1"}, lambda: None)
    await live.manager.settled()
    assert a is b and a is not other and a.runs == 1
    await live.write("ranked:add", {"rank": 0.5, "group": "a"})
    assert a.runs == 2 and other.runs == 2


async def test_no_queries_while_idle(live: Live) -> None:
    q = await live.subscribe("ranked:top", {"n": 2.0})
    import asyncio

    runs = live.manager.runs
    await asyncio.sleep(0.3)
    assert live.manager.runs == runs and q.runs == 1


SEARCH_SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"body": v.string(), "session": v.string(), "pinned": v.boolean()})
        .search_index("search_body", search_field="body", filter_fields=["session"]),
})
"""
SEARCH_FUNCTIONS = """
from reactive_store import mutation, query, v

@query(args={"text": v.string(), "session": v.string(), "n": v.float64()})
async def find(ctx, text, session, n):
    docs = await ctx.db.query("notes").with_search_index(
        "search_body", lambda q: q.search("body", text).eq("session", session)).take(int(n))
    return [[d["body"], d["pinned"]] for d in docs]

@query(args={"text": v.string(), "n": v.float64()})
async def page(ctx, text, n):
    r = await ctx.db.query("notes").with_search_index(
        "search_body", lambda q: q.search("body", text)).paginate({"numItems": int(n),
                                                                    "cursor": None})
    return [d["_id"] for d in r["page"]]

@mutation(args={"body": v.string(), "session": v.string()})
async def add(ctx, body, session):
    return await ctx.db.insert("notes", {"body": body, "session": session, "pinned": False})

@mutation(args={"id": v.id("notes"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)

@mutation(args={"id": v.id("notes")})
async def remove(ctx, id):
    await ctx.db.delete(id)
"""


@pytest.fixture
async def searching(make_app: Any, deploy: Any) -> Live:
    engine = await deploy(make_app({"schema/__init__.py": SEARCH_SCHEMA,
                                    "functions/notes.py": SEARCH_FUNCTIONS}))
    state = Live(engine)
    for body, session in (("deploy failed", "s1"), ("deploy again", "s1"),
                          ("lunch menu", "s1"), ("deploy staging", "s2")):
        state.ids[float(len(state.ids))] = await state.write(
            "notes:add", {"body": body, "session": session})
    return state


async def test_search_reruns_only_for_its_terms_and_filter(searching: Live) -> None:
    live = searching
    q = await live.subscribe("notes:find", {"text": "deploy failed", "session": "s1",
                                            "n": 10.0})
    assert [b for b, _ in q.value] == ["deploy failed", "deploy again"]
    await expect(live, q, "notes:add", {"body": "deploy prod", "session": "s2"}, 0)  # filter
    await expect(live, q, "notes:add", {"body": "lunch again", "session": "s1"}, 0)  # term
    await expect(live, q, "notes:add", {"body": "deployed", "session": "s1"}, 0)  # not last
    await expect(live, q, "notes:add", {"body": "failure", "session": "s1"}, 0)
    await expect(live, q, "notes:add", {"body": "we deploy now", "session": "s1"}, 1)
    await expect(live, q, "notes:add", {"body": "failedover", "session": "s1"}, 1)  # prefix
    assert len(q.value) == 4


async def test_search_prefix_of_the_last_term(searching: Live) -> None:
    live = searching
    q = await live.subscribe("notes:find", {"text": "lunch dep", "session": "s1", "n": 10.0})
    await expect(live, q, "notes:add", {"body": "de facto", "session": "s1"}, 0)
    await expect(live, q, "notes:add", {"body": "depot", "session": "s2"}, 0)
    await expect(live, q, "notes:add", {"body": "depot", "session": "s1"}, 1)
    assert ["depot", False] in q.value


async def test_search_patches_and_deletes(searching: Live) -> None:
    live = searching
    ids = list(live.ids.values())  # deploy failed, deploy again, lunch menu, deploy staging
    q = await live.subscribe("notes:find", {"text": "deploy", "session": "s1", "n": 1.0})
    (top, _), = q.value
    returned = ids[0] if top == "deploy failed" else ids[1]
    other = ids[1] if returned == ids[0] else ids[0]
    # A field outside the index, on a document the search did not hand out: no re-run.
    await expect(live, q, "notes:patch", {"id": other, "fields": {"pinned": True}}, 0)
    await expect(live, q, "notes:patch", {"id": ids[2], "fields": {"pinned": True}}, 0)
    await expect(live, q, "notes:patch", {"id": ids[3], "fields": {"body": "deploy x"}}, 0)
    # ... on the document it returned: one re-run.
    await expect(live, q, "notes:patch", {"id": returned, "fields": {"pinned": True}}, 1)
    assert q.value[0][1] is True
    # Moving a matching document out of the filter, and deleting one: one re-run each.
    await expect(live, q, "notes:patch", {"id": other, "fields": {"session": "s3"}}, 1)
    await expect(live, q, "notes:remove", {"id": ids[2]}, 0)
    await expect(live, q, "notes:remove", {"id": returned}, 1)
    assert q.value == []



async def test_search_page_reads_only_what_it_returned(searching: Live) -> None:
    live = searching
    ids = list(live.ids.values())  # deploy failed, deploy again, lunch menu, deploy staging
    q = await live.subscribe("notes:page", {"text": "deploy", "n": 2.0})
    assert len(q.value) == 2
    (beyond,) = {ids[0], ids[1], ids[3]} - set(q.value)
    await expect(live, q, "notes:patch", {"id": beyond, "fields": {"pinned": True}}, 0)
    await expect(live, q, "notes:patch", {"id": q.value[1], "fields": {"pinned": True}}, 1)


VECTOR_SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "docs": define_table({"repo": v.string(), "title": v.string(),
                          "embedding": v.optional(v.array(v.float64()))})
        .vector_index("by_embedding", vector_field="embedding", dimensions=2,
                      filter_fields=["repo"]),
})
"""
VECTOR_FUNCTIONS = """
from reactive_store import mutation, query, v

@query(args={"repo": v.string()})
async def near(ctx, repo):
    hits = await ctx.vector_search("docs", "by_embedding", {
        "vector": [1.0, 0.0], "limit": 2, "filter": lambda q: q.eq("repo", repo)})
    return [round(h["_score"], 4) for h in hits]

@mutation(args={"repo": v.string(), "embedding": v.optional(v.array(v.float64()))})
async def add(ctx, repo, embedding=None):
    doc = {"repo": repo, "title": "t"} | ({"embedding": embedding} if embedding else {})
    return await ctx.db.insert("docs", doc)

@mutation(args={"id": v.id("docs"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)
"""


async def test_vector_search_in_a_query_reruns_for_its_filter(
        make_app: Any, deploy: Any, pgvector_url: str) -> None:
    engine = await deploy(make_app({"schema/__init__.py": VECTOR_SCHEMA,
                                    "functions/docs.py": VECTOR_FUNCTIONS}), url=pgvector_url)
    live = Live(engine)
    first = await live.write("docs:add", {"repo": "a", "embedding": [0.0, 1.0]})
    q = await live.subscribe("docs:near", {"repo": "a"})
    assert q.value == [0.0]
    await expect(live, q, "docs:add", {"repo": "b", "embedding": [1.0, 0.0]}, 0)
    await expect(live, q, "docs:add", {"repo": "a"}, 0)  # no vector: not in the index
    await expect(live, q, "docs:patch", {"id": first, "fields": {"title": "u"}}, 0)
    await expect(live, q, "docs:add", {"repo": "a", "embedding": [1.0, 0.0]}, 1)
    assert q.value == [1.0, 0.0]
    await expect(live, q, "docs:patch", {"id": first, "fields": {"embedding": [1.0, 1.0]}}, 1)
    assert q.value == [1.0, 0.7071]
