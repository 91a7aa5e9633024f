"""ctx.db against real Postgres: index ranges, ordering, pagination, writes, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.errors import (
    InvalidIdError,
    QueryError,
    ValidationError,
    WriteError,
)

SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "players": define_table({
        "team": v.string(), "rank": v.float64(), "nick": v.optional(v.string()),
        "tags": v.optional(v.array(v.string())),
    }).index("by_rank", ["rank"]).index("by_team_rank", ["team", "rank"]),
    "notes": define_table({"player": v.id("players"), "text": v.string()}),
})
"""

FUNCTIONS = """
from reactive_store import UNSET, mutation, query, v

@mutation(args={"docs": v.array(v.any())})
async def seed(ctx, docs):
    return [await ctx.db.insert("players", d) for d in docs]

@query(args={"spec": v.any()})
async def run(ctx, spec):
    q = ctx.db.query("players")
    if spec.get("index"):
        ops = spec.get("ops", [])
        def build(r):
            for op, field, value in ops:
                r = getattr(r, op)(field, value)
            return r
        q = q.with_index(spec["index"], build)
    if spec.get("order"):
        q = q.order(spec["order"])
    if spec.get("team_filter"):
        q = q.filter(lambda d: d["team"] == spec["team_filter"])
    how = spec.get("how", "collect")
    if how == "collect":
        return [d["rank"] for d in await q.collect()]
    if how == "take":
        return [d["rank"] for d in await q.take(spec["n"])]
    if how == "first":
        d = await q.first()
        return None if d is None else d["rank"]
    if how == "unique":
        d = await q.unique()
        return None if d is None else d["rank"]
    if how == "iter":
        out = []
        async for d in q:
            out.append(d["rank"])
            if len(out) == spec["n"]:
                break
        return out
    if how == "paginate":
        r = await q.paginate(spec["opts"])
        return {**r, "page": [d["rank"] for d in r["page"]]}

@query(args={"id": v.string()})
async def get(ctx, id):
    return await ctx.db.get(id)

@mutation(args={"id": v.string(), "fields": v.any()})
async def patch(ctx, id, fields):
    fields = {k: (UNSET if v == "__unset__" else v) for k, v in fields.items()}
    await ctx.db.patch(id, fields)
    return await ctx.db.get(id)

@mutation(args={"id": v.string(), "doc": v.any()})
async def replace(ctx, id, doc):
    await ctx.db.replace(id, doc)
    return await ctx.db.get(id)

@mutation(args={"id": v.string()})
async def delete(ctx, id):
    await ctx.db.delete(id)
    return await ctx.db.get(id)

@mutation(args={"table": v.string(), "doc": v.any()})
async def insert(ctx, table, doc):
    return await ctx.db.insert(table, doc)

@query(args={"table": v.string(), "id": v.any()})
async def normalize(ctx, table, id):
    return ctx.db.normalize_id(table, id)
"""

PLAYERS = [
    {"team": "red", "rank": 3.0}, {"team": "blue", "rank": 1.0}, {"team": "red", "rank": 2.0},
    {"team": "blue", "rank": 5.0}, {"team": "red", "rank": 4.0},
]


@pytest.fixture
async def engine(make_app: Any, deploy: Any) -> Any:
    app = make_app({"schema/__init__.py": SCHEMA, "functions/players.py": FUNCTIONS})
    engine = await deploy(app)
    engine.ids = (await engine.run_mutation("players:seed", {"docs": PLAYERS})).value
    return engine


async def run(engine: Any, **spec: Any) -> Any:
    return (await engine.run_query("players:run", {"spec": spec})).value


async def test_full_scan_is_in_creation_order(engine: Any) -> None:
    assert await run(engine) == [3.0, 1.0, 2.0, 5.0, 4.0]
    assert await run(engine, order="desc") == [4.0, 5.0, 2.0, 1.0, 3.0]


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([], [1.0, 2.0, 3.0, 4.0, 5.0]),
        ([("gt", "rank", 2)], [3.0, 4.0, 5.0]),
        ([("gte", "rank", 2)], [2.0, 3.0, 4.0, 5.0]),
        ([("lt", "rank", 2)], [1.0]),
        ([("lte", "rank", 2)], [1.0, 2.0]),
        ([("gt", "rank", 1), ("lt", "rank", 5)], [2.0, 3.0, 4.0]),
        ([("eq", "rank", 3)], [3.0]),
    ],
)
async def test_index_ranges(engine: Any, ops: list[Any], expected: list[float]) -> None:
    assert await run(engine, index="by_rank", ops=ops) == expected


async def test_eq_prefix_then_range(engine: Any) -> None:
    got = await run(engine, index="by_team_rank", ops=[("eq", "team", "red"), ("gte", "rank", 3)])
    assert got == [3.0, 4.0]
    got = await run(engine, index="by_team_rank", ops=[("eq", "team", "blue")], order="desc")
    assert got == [5.0, 1.0]


async def test_take_first_unique_iter_filter(engine: Any) -> None:
    assert await run(engine, index="by_rank", how="take", n=2) == [1.0, 2.0]
    assert await run(engine, index="by_rank", how="take", n=0) == []
    assert await run(engine, index="by_rank", order="desc", how="first") == 5.0
    assert await run(engine, index="by_rank", ops=[("eq", "rank", 4)], how="unique") == 4.0
    assert await run(engine, index="by_rank", ops=[("eq", "rank", 9)], how="unique") is None
    assert await run(engine, index="by_rank", how="iter", n=3) == [1.0, 2.0, 3.0]
    assert await run(engine, index="by_rank", team_filter="red", how="take", n=2) == [2.0, 3.0]


async def test_unique_with_two_matches_is_an_error(engine: Any) -> None:
    with pytest.raises(QueryError, match="unique\\(\\) found more than one"):
        await run(engine, index="by_team_rank", ops=[("eq", "team", "red")], how="unique")


async def test_paginate_walks_every_page(engine: Any) -> None:
    cursor, pages = None, []
    while True:
        page = await run(engine, index="by_rank", how="paginate",
                         opts={"numItems": 2, "cursor": cursor})
        pages.append(page["page"])
        cursor = page["continueCursor"]
        if page["isDone"]:
            break
    assert [r for p in pages for r in p] == [1.0, 2.0, 3.0, 4.0, 5.0]
    desc = await run(engine, index="by_rank", order="desc", how="paginate",
                     opts={"numItems": 3, "cursor": None})
    assert desc["page"] == [5.0, 4.0, 3.0] and not desc["isDone"]
    rest = await run(engine, index="by_rank", order="desc", how="paginate",
                     opts={"numItems": 3, "cursor": desc["continueCursor"]})
    assert rest["page"] == [2.0, 1.0] and rest["isDone"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"index": "nope"}, "has no index 'nope'"),
        ({"index": "by_team_rank", "ops": [("eq", "rank", 1)]}, "must name the next field"),
        ({"index": "by_rank", "ops": [("gt", "rank", 1), ("eq", "rank", 2)]}, "after a range"),
        ({"index": "by_rank", "ops": [("gt", "rank", 1), ("gte", "rank", 2)]}, "two lower"),
        ({"order": "sideways"}, "order\\(\\) takes 'asc' or 'desc'"),
        ({"how": "take", "n": -1}, "non-negative integer"),
        ({"how": "paginate", "opts": {"cursor": None}}, "numItems"),
        ({"how": "paginate", "opts": {"numItems": 1, "cursor": "%%%"}}, "malformed cursor"),
    ],
)
async def test_query_misuse_names_the_problem(engine: Any, spec: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        await run(engine, **spec)


async def test_get_patch_replace_delete(engine: Any) -> None:
    pid = engine.ids[0]
    doc = (await engine.run_query("players:get", {"id": pid})).value
    assert doc["_id"] == pid and doc["rank"] == 3.0 and isinstance(doc["_creationTime"], float)
    patched = (await engine.run_mutation(
        "players:patch", {"id": pid, "fields": {"nick": "ace", "rank": 7}})).value
    assert patched["nick"] == "ace" and patched["rank"] == 7.0
    assert patched["_creationTime"] == doc["_creationTime"]
    removed = (await engine.run_mutation(
        "players:patch", {"id": pid, "fields": {"nick": "__unset__"}})).value
    assert "nick" not in removed
    replaced = (await engine.run_mutation(
        "players:replace", {"id": pid, "doc": {"team": "green", "rank": 0.5}})).value
    assert replaced == {"_id": pid, "_creationTime": doc["_creationTime"], "team": "green",
                        "rank": 0.5}
    assert await run(engine, index="by_rank", how="first") == 0.5
    assert (await engine.run_mutation("players:delete", {"id": pid})).value is None
    assert (await engine.run_query("players:get", {"id": pid})).value is None


@pytest.mark.parametrize(
    ("fn", "args", "error", "message"),
    [
        ("insert", {"table": "players", "doc": {"team": "x"}}, ValidationError,
         "missing required field 'rank'"),
        ("insert", {"table": "players", "doc": {"team": "x", "rank": "high"}}, ValidationError,
         "players.rank: expected float64, got string"),
        ("insert", {"table": "players", "doc": {"team": "x", "rank": 1, "extra": 1}},
         ValidationError, "unexpected field 'extra'"),
        ("insert", {"table": "players", "doc": {"team": "x", "rank": 1, "_id": "a"}},
         ValidationError, "system field"),
        ("insert", {"table": "ghosts", "doc": {}}, QueryError, "no table named 'ghosts'"),
        ("insert", {"table": "notes", "doc": {"player": "nonsense", "text": "t"}},
         ValidationError, "notes.player"),
        ("patch", {"id": "garbage", "fields": {}}, InvalidIdError, "invalid id"),
        ("patch", {"id": "PLAYER", "fields": {"_creationTime": 1}}, WriteError,
         "system field '_creationTime'"),
        ("patch", {"id": "PLAYER", "fields": {"nick": None}}, ValidationError,
         "players.nick: expected string, got null \\(to remove a field, patch it to "),
        ("replace", {"id": "PLAYER", "doc": {"team": "x"}}, ValidationError, "'rank'"),
        ("delete", {"id": "DELETED"}, WriteError, "does not exist"),
    ],
)
async def test_bad_writes_are_refused_and_write_nothing(
    engine: Any, fn: str, args: dict[str, Any], error: type[Exception], message: str
) -> None:
    pid = engine.ids[1]
    deleted = engine.ids[2]
    await engine.run_mutation("players:delete", {"id": deleted})
    args = {k: (pid if v == "PLAYER" else deleted if v == "DELETED" else v)
            for k, v in args.items()}
    before = await run(engine)
    with pytest.raises(error, match=message):
        await engine.run_mutation(f"players:{fn}", args)
    assert await run(engine) == before


async def test_id_of_another_table_is_refused(engine: Any) -> None:
    note = (await engine.run_mutation(
        "players:insert", {"table": "notes", "doc": {"player": engine.ids[0], "text": "hi"}}
    )).value
    with pytest.raises(ValidationError, match="expected an id of table 'players'"):
        await engine.run_mutation(
            "players:insert", {"table": "notes", "doc": {"player": note, "text": "x"}})
    assert (await engine.run_query(
        "players:normalize", {"table": "players", "id": note})).value is None
    assert (await engine.run_query(
        "players:normalize", {"table": "notes", "id": note})).value == note
