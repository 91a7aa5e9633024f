"""Queries at a past timestamp read the before-image log: each result equals the one the
query gave live at that timestamp, through inserts, patches, replaces and deletes, index
ranges, both orders, pagination, first and unique; and every refusal names its reason."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from reactive_store.engine.engine import EngineConfig
from reactive_store.errors import (
    BadRequest,
    ConflictError,
    ConvexError,
    LimitExceeded,
    QueryError,
)
from reactive_store.ids import new_id
from reactive_store.limits import Limits
from reactive_store.storage.history import horizon
from tests.support import ACCOUNTS_APP, new_namespace

SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "items": define_table({"name": v.string(), "rank": v.float64(),
                           "tag": v.optional(v.string())})
        .index("by_rank", ["rank"]).index("by_tag_rank", ["tag", "rank"])
        .search_index("search_name", search_field="name"),
})
"""

FUNCTIONS = """
from reactive_store import mutation, query, v

@mutation(args={"name": v.string(), "rank": v.float64(), "tag": v.optional(v.string())})
async def add(ctx, name, rank, tag=None):
    doc = {"name": name, "rank": rank}
    if tag is not None:
        doc["tag"] = tag
    return await ctx.db.insert("items", doc)

@mutation(args={"id": v.id("items"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)

@mutation(args={"id": v.id("items"), "doc": v.any()})
async def replace(ctx, id, doc):
    await ctx.db.replace(id, doc)

@mutation(args={"id": v.id("items")})
async def remove(ctx, id):
    await ctx.db.delete(id)

@mutation(args={"name": v.string(), "rank": v.float64()})
async def churn(ctx, name, rank):
    # insert, patch twice and delete another: one commit, several writes per document
    new = await ctx.db.insert("items", {"name": name, "rank": rank})
    await ctx.db.patch(new, {"rank": rank + 0.5})
    await ctx.db.patch(new, {"tag": "churned"})
    first = await ctx.db.query("items").with_index("by_rank").first()
    if first is not None and first["_id"] != new:
        await ctx.db.patch(first["_id"], {"name": first["name"] + "!"})
        await ctx.db.patch(first["_id"], {"rank": first["rank"] - 100})
    return new

@mutation(args={})
async def noop(ctx):
    return len(await ctx.db.query("items").take(3))

@query(args={})
async def everything(ctx):
    return await ctx.db.query("items").collect()

@query(args={"lo": v.float64(), "hi": v.float64(), "order": v.string()})
async def ranked(ctx, lo, hi, order):
    return await ctx.db.query("items").with_index(
        "by_rank", lambda q: q.gte("rank", lo).lt("rank", hi)).order(order).collect()

@query(args={"tag": v.string()})
async def tagged(ctx, tag):
    return await ctx.db.query("items").with_index(
        "by_tag_rank", lambda q: q.eq("tag", tag)).order("desc").collect()

@query(args={"n": v.float64(), "cursor": v.union(v.string(), v.null()), "order": v.string()})
async def page(ctx, n, cursor, order):
    return await ctx.db.query("items").with_index("by_rank").order(order).paginate(
        {"numItems": int(n), "cursor": cursor})

@query(args={})
async def ends(ctx):
    q = ctx.db.query("items").with_index("by_rank")
    return [await q.first(), await ctx.db.query("items").with_index("by_rank")
            .order("desc").first(), await ctx.db.query("items").take(2)]

@query(args={"tag": v.string()})
async def one(ctx, tag):
    return await ctx.db.query("items").with_index(
        "by_tag_rank", lambda q: q.eq("tag", tag)).unique()

@query(args={"id": v.string()})
async def get(ctx, id):
    return await ctx.db.get(id)

@query(args={})
async def edit_then_reread(ctx):
    first = await ctx.db.query("items").with_index("by_rank").first()
    first["name"] = "edited"
    return (await ctx.db.get(first["_id"]))["name"]

@query(args={"id": v.string()})
async def stored(ctx, id):
    return await ctx.db.system.get(id)

@query(args={"text": v.string()})
async def search(ctx, text):
    return await ctx.db.query("items").with_search_index(
        "search_name", lambda q: q.search("name", text)).take(5)
"""

APP = {"schema/__init__.py": SCHEMA, "functions/items.py": FUNCTIONS}
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("items:everything", {}),
    ("items:ranked", {"lo": 2.0, "hi": 7.0, "order": "asc"}),
    ("items:ranked", {"lo": -1000.0, "hi": 1000.0, "order": "desc"}),
    ("items:tagged", {"tag": "red"}),
    ("items:page", {"n": 2, "cursor": None, "order": "asc"}),
    ("items:page", {"n": 3, "cursor": None, "order": "desc"}),
    ("items:ends", {}),
]


async def snapshot(engine: Any, ids: list[str]) -> dict[str, Any]:
    """Every query's result now, and each id's document."""
    results = {f"{p}{a}": (await engine.run_query(p, a)).value for p, a in QUERIES}
    for doc_id in ids:
        results[doc_id] = (await engine.run_query("items:get", {"id": doc_id})).value
    return results


async def at(engine: Any, ts: int, ids: list[str]) -> dict[str, Any]:
    results = {}
    for p, a in QUERIES:
        outcome = await engine.run_query(p, a, at_ts=ts)
        assert outcome.ts == ts
        results[f"{p}{a}"] = outcome.value
    for doc_id in ids:
        results[doc_id] = (await engine.run_query("items:get", {"id": doc_id}, at_ts=ts)).value
    return results


async def mutate(engine: Any, rng: random.Random, ids: list[str]) -> int:
    """One random write: insert, patch, replace, delete or a multi-write commit."""
    live = [i for i in ids if (await engine.run_query("items:get", {"id": i})).value]
    kind = rng.choice(["add", "add", "patch", "replace", "remove", "churn"] if live else ["add"])
    rank = float(rng.randint(0, 9))
    if kind == "add":
        out = await engine.run_mutation("items:add", {
            "name": f"n{len(ids)}", "rank": rank, "tag": rng.choice(["red", "blue"])})
        ids.append(out.value)
    elif kind == "churn":
        out = await engine.run_mutation("items:churn", {"name": f"c{len(ids)}", "rank": rank})
        ids.append(out.value)
    elif kind == "patch":
        out = await engine.run_mutation("items:patch", {"id": rng.choice(live), "fields": {
            "rank": rank, "tag": rng.choice(["red", "blue", "green"])}})
    elif kind == "replace":
        out = await engine.run_mutation("items:replace", {"id": rng.choice(live), "doc": {
            "name": f"r{rank}", "rank": rank}})
    else:
        out = await engine.run_mutation("items:remove", {"id": rng.choice(live)})
    assert out.ts is not None
    return int(out.ts)


@pytest.mark.parametrize("seed", [17, 29])
async def test_past_results_equal_the_live_results_at_each_timestamp(
        make_app: Any, deploy: Any, seed: int) -> None:
    engine = await deploy(make_app(APP))
    rng = random.Random(seed)
    ids: list[str] = []
    recorded = [(await engine.deployment.store.latest_ts(), await snapshot(engine, ids))]
    for _ in range(40):
        ts = await mutate(engine, rng, ids)
        recorded.append((ts, await snapshot(engine, ids)))
    for (ts, live), (next_ts, _) in zip(recorded, [*recorded[1:], (None, None)], strict=True):
        expected = {**dict.fromkeys(ids), **live}  # ids made later did not exist yet
        assert await at(engine, ts, ids) == expected, f"at {ts}"
        if next_ts is not None and next_ts - ts > 1:  # between two commits: still `live`
            assert await at(engine, (ts + next_ts) // 2, ids) == expected


async def test_pages_at_a_past_timestamp_chain_through_their_cursors(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    ids = [(await engine.run_mutation("items:add", {"name": f"a{i}", "rank": float(i)})).value
           for i in range(7)]
    then = (await engine.run_mutation("items:noop", {})).ts or await engine.deployment.store\
        .latest_ts()
    await engine.run_mutation("items:remove", {"id": ids[1]})
    await engine.run_mutation("items:patch", {"id": ids[4], "fields": {"rank": 100.0}})
    await engine.run_mutation("items:add", {"name": "late", "rank": 2.5})
    for order, expected in (("asc", [f"a{i}" for i in range(7)]),
                            ("desc", [f"a{i}" for i in reversed(range(7))])):
        names, cursor, done = [], None, False
        while not done:
            result = (await engine.run_query("items:page", {
                "n": 3, "cursor": cursor, "order": order}, at_ts=then)).value
            names += [d["name"] for d in result["page"]]
            cursor, done = result["continueCursor"], result["isDone"]
        assert names == expected


async def test_first_and_unique_at_a_past_timestamp(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    low = (await engine.run_mutation("items:add", {"name": "low", "rank": 1.0,
                                                   "tag": "only"})).value
    before = (await engine.run_mutation("items:add", {"name": "high", "rank": 5.0})).ts
    await engine.run_mutation("items:add", {"name": "second", "rank": 3.0, "tag": "only"})
    await engine.run_mutation("items:patch", {"id": low, "fields": {"rank": 9.0}})
    first, last, _ = (await engine.run_query("items:ends", {}, at_ts=before)).value
    assert (first["name"], last["name"]) == ("low", "high")
    assert (await engine.run_query("items:one", {"tag": "only"}, at_ts=before)).value[
        "name"] == "low"
    with pytest.raises(QueryError, match="more than one"):
        await engine.run_query("items:one", {"tag": "only"})  # now there are two


async def test_a_document_deleted_then_inserted_again_under_its_id(
        make_app: Any, deploy: Any) -> None:
    """System writers may insert with a given id (file storage): each version is read back
    at its own time, the earliest later commit's before-image winning."""
    engine = await deploy(make_app(APP))
    doc_id = new_id(engine.store.table_numbers["_storage"])
    stamps = [await engine.store.latest_ts()]
    for size in (1.0, 2.0):
        async def insert(db: Any, size: float = size) -> None:
            await db.insert("_storage", {"sha256": "x", "size": size}, doc_id=doc_id)

        async def delete(db: Any) -> None:
            await db.delete(doc_id)

        await engine.write_system("insert", insert)
        stamps.append(await engine.store.latest_ts())
        await engine.write_system("delete", delete)
        stamps.append(await engine.store.latest_ts())
    sizes = []
    for ts in stamps:
        doc = (await engine.run_query("items:stored", {"id": doc_id}, at_ts=ts)).value
        sizes.append(None if doc is None else doc["size"])
    assert sizes == [None, 1.0, None, 2.0, None]


async def test_a_read_only_mutation_logs_nothing_and_a_write_logs_each_document_once(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    await engine.run_mutation("items:add", {"name": "a", "rank": 1.0})
    rows = await _history_rows(engine)
    await engine.run_mutation("items:noop", {})
    assert await _history_rows(engine) == rows
    await engine.run_mutation("items:churn", {"name": "c", "rank": 2.0})
    assert await _history_rows(engine) == rows + 2  # the new one, and `a` patched twice


async def _history_rows(engine: Any) -> int:
    async with engine.store.read() as tx:
        found = await tx.fetch(f"SELECT count(*) FROM {tx.names.system('history')}")
    return int(found[0][0])


async def test_a_future_timestamp_is_refused(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    ts = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0})).ts
    with pytest.raises(BadRequest, match=f"timestamp {ts + 10} is in the future: the newest "
                                         f"commit is {ts}"):
        await engine.run_query("items:everything", {}, at_ts=ts + 10)


async def test_a_pruned_timestamp_is_refused_naming_the_window_and_the_oldest(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    start = await engine.store.latest_ts()
    old = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0})).ts
    newest = (await engine.run_mutation("items:add", {"name": "b", "rank": 2.0})).ts
    assert [d["name"] for d in (await engine.run_query(
        "items:everything", {}, at_ts=start)).value] == []
    report = await engine.store.prune(900, 3600, 0.0)  # keep no history: all of it is old
    assert report.history == 2
    with pytest.raises(BadRequest, match=(
            rf"timestamp {old} is older than the query history: the oldest readable "
            rf"timestamp is {newest} \(history is kept for 3600 s, "
            r"REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S\)")):
        await engine.run_query("items:everything", {}, at_ts=old)
    at_newest = await engine.run_query("items:everything", {}, at_ts=newest)
    assert [d["name"] for d in at_newest.value] == ["a", "b"]
    # Pruning again with nothing old enough moves nothing.
    assert (await engine.store.prune(900, 3600, 3600.0)).history == 0
    async with engine.store.read() as tx:
        assert await horizon(tx) == newest


async def test_search_at_a_past_timestamp_is_refused(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    ts = (await engine.run_mutation("items:add", {"name": "alpha", "rank": 1.0})).ts
    await engine.run_mutation("items:add", {"name": "alphabet", "rank": 2.0})
    assert len((await engine.run_query("items:search", {"text": "alpha"})).value) == 2
    with pytest.raises(QueryError, match=r"text and vector search read only the current "
                                         r"index \(items.search_name\): they cannot run at a "
                                         f"past timestamp \\({ts}\\)"):
        await engine.run_query("items:search", {"text": "alpha"}, at_ts=ts)


async def test_with_history_off_only_unchanged_reads_answer(
        make_app: Any, deploy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S", "0")
    engine = await deploy(make_app(APP))
    first = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0,
                                                     "tag": "red"})).ts
    await engine.run_mutation("items:add", {"name": "b", "rank": 2.0, "tag": "blue"})
    assert await _history_rows(engine) == 0
    # A later commit outside what the query read leaves its value at `first` provable.
    red = await engine.run_query("items:tagged", {"tag": "red"}, at_ts=first)
    assert [d["name"] for d in red.value] == ["a"] and red.ts == first
    with pytest.raises(QueryError, match=r"changed at \d+, after the requested timestamp "
                                         rf"{first}, and query history is off \(set "
                                         "REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S"):
        await engine.run_query("items:everything", {}, at_ts=first)


async def test_a_process_without_history_stops_every_past_read(
        make_app: Any, deploy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its commits leave no before-images, so no process may read through history after
    it started; those that keep it say why they fall back."""
    app = make_app(APP)
    namespace = new_namespace()
    engine = await deploy(app, namespace=namespace)
    first = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0})).ts
    monkeypatch.setenv("REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S", "0")
    other = await deploy(app, namespace=namespace)
    await other.run_mutation("items:add", {"name": "b", "rank": 2.0})
    with pytest.raises(QueryError, match="no query history is kept for this deployment now"):
        await engine.run_query("items:everything", {}, at_ts=first)
    # Keeping it again starts a new horizon at the newest commit.
    monkeypatch.setenv("REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S", "60")
    third = await deploy(app, namespace=namespace)
    newest = await third.store.latest_ts()
    with pytest.raises(BadRequest, match=f"the oldest readable timestamp is {newest}"):
        await third.run_query("items:everything", {}, at_ts=first)


async def test_concurrent_retried_transfers_replay_exactly_at_every_commit(
        make_app: Any, deploy: Any) -> None:
    """Transfers race and retry; replaying the committed ones in timestamp order gives, at
    each commit's timestamp, exactly the balances a query there reads (a retried attempt
    leaves no before-images of its own)."""
    engine = await deploy(make_app(ACCOUNTS_APP))
    ids = [(await engine.run_mutation("accounts:open", {"owner": f"o{i}", "balance": 10})
            ).value for i in range(4)]
    start = await engine.store.latest_ts()
    done: list[tuple[int, str, str, int]] = []
    rng = random.Random(5)

    async def worker() -> None:
        for _ in range(10):
            src, dst = rng.sample(ids, 2)
            amount = rng.randint(1, 6)
            try:
                out = await engine.run_mutation("accounts:transfer", {
                    "src": src, "dst": dst, "amount": amount})
            except ConflictError:  # gave up after its retries: nothing committed
                continue
            except ConvexError as exc:  # insufficient funds: nothing committed
                assert exc.data["code"] == "insufficient_funds"
                continue
            done.append((out.ts, src, dst, amount))

    await asyncio.gather(*[worker() for _ in range(6)])
    balances = dict.fromkeys(ids, 10)
    for ts, src, dst, amount in [(start, "", "", 0), *sorted(done)]:
        if amount:
            balances[src] -= amount
            balances[dst] += amount
        for i, doc_id in enumerate(ids):
            found = await engine.run_query("accounts:by_owner", {"owner": f"o{i}"}, at_ts=ts)
            assert found.value["balance"] == balances[doc_id], f"o{i} at {ts}"
    assert len(done) > 10


async def test_environment_variables_read_at_a_past_timestamp_are_the_values_then(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app({**APP, "functions/env.py": """
from reactive_store import query

@query(args={})
async def mode(ctx):
    return ctx.env.get("MODE", "unset")
"""}))
    first = await engine.deployment.update_environment([("MODE", "a")])
    second = await engine.deployment.update_environment([("MODE", "b")])
    assert (await engine.run_query("env:mode", {})).value == "b"
    assert (await engine.run_query("env:mode", {}, at_ts=first)).value == "a"
    assert (await engine.run_query("env:mode", {}, at_ts=first - 1)).value == "unset"
    assert (await engine.run_query("env:mode", {}, at_ts=second)).value == "b"


async def test_too_many_changes_since_the_timestamp_is_a_clear_limit(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP), config=EngineConfig(limits=Limits(
        documents_scanned=5)))
    first = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0})).value
    ts = await engine.store.latest_ts()
    for i in range(3):
        await engine.run_mutation("items:add", {"name": f"b{i}", "rank": 2.0})
    assert (await engine.run_query("items:get", {"id": first}, at_ts=ts)).value["name"] == "a"
    for i in range(3):
        await engine.run_mutation("items:add", {"name": f"c{i}", "rank": 2.0})
    with pytest.raises(LimitExceeded, match=(
            rf"more than 5 documents of table 'items' changed after timestamp {ts}: too many "
            "to read it as it was then")):
        await engine.run_query("items:get", {"id": first}, at_ts=ts)


async def test_with_history_off_a_timestamp_older_than_the_commit_log_is_refused(
        make_app: Any, deploy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S", "0")
    engine = await deploy(make_app(APP))
    first = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0,
                                                     "tag": "red"})).ts
    newest = (await engine.run_mutation("items:add", {"name": "b", "rank": 2.0})).ts
    await engine.store.prune(0.0, 3600, 0.0)  # the commit log keeps only the newest
    # Nothing proves that what the query reads did not change in the pruned commits.
    with pytest.raises(QueryError, match=(
            rf"timestamp {first} is older than the commit log \(its oldest commit is "
            rf"{newest}\), and query history is off")):
        await engine.run_query("items:tagged", {"tag": "red"}, at_ts=first)


async def test_editing_a_past_document_changes_no_later_read(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(APP))
    doc_id = (await engine.run_mutation("items:add", {"name": "a", "rank": 1.0})).value
    ts = await engine.store.latest_ts()
    await engine.run_mutation("items:patch", {"id": doc_id, "fields": {"name": "b"}})
    assert (await engine.run_query("items:edit_then_reread", {}, at_ts=ts)).value == "a"
    assert (await engine.run_query("items:edit_then_reread", {})).value == "b"
