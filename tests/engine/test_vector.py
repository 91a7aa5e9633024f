"""Vector search (`ctx.vector_search`) in queries, mutations and actions: cosine order and
scores, eq/or_ filters, limits, write-time checks and every error; with pgvector (HNSW,
and an exact scan past 2,000 dimensions) and with the exact fallback on a server without
pgvector. The same contract runs against each backend."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

from reactive_store.errors import QueryError, SchemaError, ValidationError

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "items": define_table({"label": v.string(), "repo": v.string(), "team": v.string(),
                           "embedding": v.optional(v.any())})
        .vector_index("by_embedding", vector_field="embedding", dimensions=3,
                      filter_fields=["repo", "team"], exact_fallback=FALLBACK),
})
"""
FUNCTIONS = """
from reactive_store import action, mutation, query, v

@mutation(args={"label": v.string(), "repo": v.string(), "embedding": v.any()})
async def add(ctx, label, repo, embedding):
    doc = {"label": label, "repo": repo, "team": "t"}
    if embedding is not None:
        doc["embedding"] = embedding
    return await ctx.db.insert("items", doc)

@mutation(args={"id": v.id("items"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)

def _options(vector, limit, repos):
    options = {"vector": vector, "limit": limit}
    if repos:
        options["filter"] = (lambda q: q.eq("repo", repos[0])) if len(repos) == 1 else (
            lambda q: q.or_(*(q.eq("repo", r) for r in repos)))
    return options

async def _labelled(ctx, hits):
    out = []
    for hit in hits:
        doc = await ctx.db.get(hit["_id"])
        out.append([doc["label"], round(hit["_score"], 6)])
    return out

@query(args={"vector": v.any(), "limit": v.any(), "repos": v.array(v.string())})
async def near(ctx, vector, limit, repos):
    return await _labelled(ctx, await ctx.vector_search("items", "by_embedding",
                                                        _options(vector, limit, repos)))

@mutation(args={"vector": v.any()})
async def near_in_mutation(ctx, vector):
    return len(await ctx.vector_search("items", "by_embedding", {"vector": vector}))

@action(args={"vector": v.any(), "limit": v.any(), "repos": v.array(v.string())})
async def near_action(ctx, vector, limit, repos):
    return await ctx.vector_search("items", "by_embedding", _options(vector, limit, repos))

@query(args={"case": v.string()})
async def misuse(ctx, case):
    vec = [1.0, 0.0, 0.0]
    if case == "index":
        return await ctx.vector_search("items", "nope", {"vector": vec})
    if case == "filter":
        return await ctx.vector_search("items", "by_embedding",
                                       {"vector": vec, "filter": lambda q: q.eq("label", "a")})
    if case == "length":
        return await ctx.vector_search("items", "by_embedding", {"vector": [1.0, 2.0]})
    if case == "low":
        return await ctx.vector_search("items", "by_embedding", {"vector": vec, "limit": 0})
    if case == "high":
        return await ctx.vector_search("items", "by_embedding", {"vector": vec, "limit": 257})
    if case == "option":
        return await ctx.vector_search("items", "by_embedding", {"vector": vec, "k": 3})
    if case == "novector":
        return await ctx.vector_search("items", "by_embedding", {"limit": 3})
    if case == "notcallable":
        return await ctx.vector_search("items", "by_embedding", {"vector": vec, "filter": 3})
    if case == "notexpr":
        return await ctx.vector_search("items", "by_embedding",
                                       {"vector": vec, "filter": lambda q: True})
    if case == "emptyor":
        return await ctx.vector_search("items", "by_embedding",
                                       {"vector": vec, "filter": lambda q: q.or_()})
    if case == "table":
        return await ctx.vector_search("nope", "by_embedding", {"vector": vec})
    if case == "zero":
        return await ctx.vector_search("items", "by_embedding", {"vector": [0.0, 0.0, 0.0]})
"""

VECTORS = {"x": [1.0, 0.0, 0.0], "xy": [1.0, 1.0, 0.0], "y": [0.0, 1.0, 0.0],
           "-x": [-1.0, 0.0, 0.0], "z": [0.0, 0.0, 2.0]}


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.fixture(params=["pgvector", "exact"])
async def engine(request: Any, make_app: Any, deploy: Any, pgvector_url: str) -> Any:
    fallback = request.param == "exact"
    if fallback and not os.environ.get("DATABASE_URL"):
        pytest.skip("the exact fallback needs a server without pgvector (DATABASE_URL)")
    app = make_app({"schema/__init__.py": SCHEMA.replace("FALLBACK", str(fallback)),
                    "functions/m.py": FUNCTIONS})
    engine = await deploy(app, url=None if fallback else pgvector_url)
    side = engine.store.names.side_tables[("items", "by_embedding")]
    assert side.backend == request.param
    for label, vector in VECTORS.items():
        await engine.run_mutation("m:add", {"label": label, "repo": "r" + str(len(label)),
                                            "embedding": vector})
    await engine.run_mutation("m:add", {"label": "none", "repo": "r1", "embedding": None})
    return engine


async def near(engine: Any, vector: list[float], limit: int = 10,
               repos: tuple[str, ...] = ()) -> list[list[Any]]:
    args = {"vector": vector, "limit": limit, "repos": list(repos)}
    return list((await engine.run_query("m:near", args)).value)


async def test_cosine_order_and_scores(engine: Any) -> None:
    q = [1.0, 0.2, 0.0]
    expected = sorted(((label, cosine(q, v)) for label, v in VECTORS.items()),
                      key=lambda p: -p[1])
    got = await near(engine, q)
    assert [label for label, _ in got] == [label for label, _ in expected]
    for (_, score), (_, want) in zip(got, expected, strict=True):
        assert score == pytest.approx(want, abs=1e-5)
    assert [label for label, _ in await near(engine, q, limit=2)] == ["x", "xy"]


async def test_filters_eq_and_or(engine: Any) -> None:
    q = [1.0, 0.2, 0.0]
    assert [label for label, _ in await near(engine, q, repos=("r1",))] == ["x", "y", "z"]
    assert [label for label, _ in await near(engine, q, repos=("r2", "r1"))] == [
        "x", "xy", "y", "z", "-x"]
    assert [label for label, _ in await near(engine, q, repos=("r2",))] == ["xy", "-x"]
    assert await near(engine, q, repos=("nope",)) == []


async def test_actions_and_mutations_search_too(engine: Any) -> None:
    hits = (await engine.run_action("m:near_action", {"vector": [0.0, 1.0, 0.0], "limit": 1,
                                                      "repos": []})).value
    assert len(hits) == 1 and set(hits[0]) == {"_id", "_score"}
    assert hits[0]["_score"] == pytest.approx(1.0)
    assert (await engine.run_mutation("m:near_in_mutation", {"vector": [0.0, 1.0, 0.0]})
            ).value == 5


async def test_writes_keep_the_index_in_step(engine: Any) -> None:
    new = (await engine.run_mutation("m:add", {"label": "new", "repo": "r1",
                                               "embedding": [0.0, 1.0, 0.1]})).value
    assert (await near(engine, [0.0, 1.0, 0.1], limit=1))[0][0] == "new"
    await engine.run_mutation("m:patch", {"id": new, "fields": {"embedding": [0.0, 0.0, 1.0]}})
    assert (await near(engine, [0.0, 1.0, 0.1], limit=1))[0][0] == "y"
    from reactive_store.values import UNSET

    await engine.run_mutation("m:patch", {"id": new, "fields": {"embedding": UNSET}})
    assert "new" not in [label for label, _ in await near(engine, [0.0, 0.0, 1.0])]


@pytest.mark.parametrize(("vector", "message"), [
    ([1.0, 2.0], "vector has 2 dimensions, the index expects 3"),
    ([1.0, 2.0, math.inf], "every element must be a finite number"),
    ([1.0, 2.0, "x"], "every element must be a finite number, got 'x'"),
    ([0.0, 0.0, 0.0], "a vector of zeros has no direction"),
    ("nope", "expected an array of 3 numbers"),
])
async def test_bad_vectors_are_refused_at_write_time(engine: Any, vector: Any,
                                                     message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        await engine.run_mutation("m:add", {"label": "bad", "repo": "r", "embedding": vector})
    assert "bad" not in [label for label, _ in await near(engine, [1.0, 0.0, 0.0])]


@pytest.mark.parametrize(("case", "message"), [
    ("index", "table 'items' has no vector index 'nope'; it has ['by_embedding']"),
    ("filter", "vector index 'by_embedding': 'label' is not one of its filter fields"),
    ("length", "vector has 2 dimensions, the index expects 3"),
    ("low", "limit must be an integer from 1 to 256, got 0"),
    ("high", "limit must be an integer from 1 to 256, got 257"),
    ("option", "unknown option(s) ['k']"),
    ("zero", "a vector of zeros has no direction"),
    ("novector", "options must be a dict with 'vector'"),
    ("notcallable", "filter must be a function of q"),
    ("notexpr", "the filter function must return q.eq(...) or q.or_(...)"),
    ("emptyor", "or_() takes one or more q.eq(...) or q.or_(...) expressions"),
    ("table", "no table named 'nope' in the schema"),
])
async def test_errors_name_the_problem(engine: Any, case: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        await engine.run_query("m:misuse", {"case": case})
    assert message in str(raised.value)


async def test_without_pgvector_the_push_says_what_to_install(make_app: Any,
                                                              deploy: Any) -> None:
    if not os.environ.get("DATABASE_URL"):
        pytest.skip("needs a server without pgvector (DATABASE_URL)")
    app = make_app({"schema/__init__.py": SCHEMA.replace("FALLBACK", "False"),
                    "functions/m.py": FUNCTIONS})
    with pytest.raises(SchemaError, match=r"vector index items\.by_embedding needs the "
                       r"pgvector extension.*install pgvector.*exact_fallback=True"):
        await deploy(app)


async def test_past_2000_dimensions_search_is_exact(make_app: Any, deploy: Any,
                                                    pgvector_url: str) -> None:
    schema = SCHEMA.replace("dimensions=3", "dimensions=2001").replace("FALLBACK", "False")
    engine = await deploy(make_app({"schema/__init__.py": schema,
                                    "functions/m.py": FUNCTIONS}), url=pgvector_url)
    for i in range(5):
        vec = [0.0] * 2001
        vec[i] = 1.0
        vec[2000] = 0.5
        await engine.run_mutation("m:add", {"label": f"e{i}", "repo": "r", "embedding": vec})
    q = [0.0] * 2001
    q[3] = 1.0
    hits = (await engine.run_query("m:near", {"vector": q, "limit": 2, "repos": []})).value
    assert hits[0][0] == "e3" and hits[0][1] == pytest.approx(1 / math.sqrt(1.25), abs=1e-5)
