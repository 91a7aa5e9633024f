"""The engine against real Postgres: atomicity, retries, limits, time limits, commit order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from reactive_store.engine.engine import EngineConfig
from reactive_store.engine.readset import WriteSet
from reactive_store.errors import (
    BadRequest,
    ConflictError,
    ConvexError,
    FunctionNotFound,
    FunctionTimeout,
    LimitExceeded,
    ValidationError,
    WrongFunctionKind,
)
from reactive_store.limits import Limits
from reactive_store.live.commits import CommitStream
from reactive_store.storage.store import DatabaseUnavailable
from tests.db_faults import scratch_database
from tests.support import ACCOUNTS_APP, until

EXTRA = """
import asyncio
from reactive_store import (ConvexError, action, internal_mutation, internal_query, mutation,
                            query, v)

@mutation(args={"owner": v.string()})
async def open_then_fail(ctx, owner):
    await ctx.db.insert("accounts", {"owner": owner, "balance": 1})
    raise RuntimeError("boom after insert")

@mutation(args={"n": v.float64()})
async def bulk(ctx, n):
    for i in range(int(n)):
        await ctx.db.insert("accounts", {"owner": f"bulk{i}", "balance": i})

@mutation(args={"seconds": v.float64()})
async def slow(ctx, seconds):
    await ctx.db.insert("accounts", {"owner": "slow", "balance": 0})
    await asyncio.sleep(seconds)

@query(args={})
async def spin(ctx):
    while True:
        await ctx.db.query("accounts").first()
        await asyncio.sleep(0.001)

@query(args={}, returns=v.string())
async def bad_return(ctx):
    return 42

@query(args={})
async def unencodable(ctx):
    return {"$bad": 1}

@internal_query(args={})
async def secret(ctx):
    return "internal"

@internal_mutation(args={"owner": v.string()})
async def open_internal(ctx, owner):
    return await ctx.db.insert("accounts", {"owner": owner, "balance": 0})

@action(args={"owner": v.string()})
async def open_via_action(ctx, owner):
    doc_id = await ctx.run_mutation("extra:open_internal", {"owner": owner})
    found = await ctx.run_query("accounts:by_owner", {"owner": owner})
    return {"id": doc_id, "same": found["_id"] == doc_id, "secret": await ctx.run_query(secret)}

@mutation(args={})
async def read_only(ctx):
    return len(await ctx.db.query("accounts").collect())

@mutation(args={})
async def schedule_one(ctx):
    return await ctx.scheduler.run_after(3600, "extra:slow_action", {"seconds": 0})

@mutation(args={})
async def draws(ctx):
    return [ctx.random() for _ in range(3)]

@action(args={"seconds": v.float64()})
async def slow_action(ctx, seconds):
    await asyncio.sleep(seconds)
    return "done"

@action(args={"other": v.string()}, returns=v.id("accounts"))
async def wrong_table_id(ctx, other):
    return other

@mutation(args={"id": v.id("accounts")})
async def bump_and_swallow(ctx, id):
    doc = await ctx.db.get(id)
    try:
        await ctx.db.patch(id, {"balance": doc["balance"] + 1})
    except Exception:
        pass
"""


@pytest.fixture
async def engine(make_app: Any, deploy: Any) -> Any:
    return await deploy(make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA}))


async def total(engine: Any) -> int:
    return int((await engine.run_query("accounts:total", {})).value)


async def test_a_mutation_that_raises_writes_nothing(engine: Any) -> None:
    with pytest.raises(RuntimeError, match="boom after insert"):
        await engine.run_mutation("extra:open_then_fail", {"owner": "x"})
    assert (await engine.run_query("accounts:by_owner", {"owner": "x"})).value is None


async def test_convex_error_carries_its_data_and_rolls_back(engine: Any) -> None:
    a = (await engine.run_mutation("accounts:open", {"owner": "a", "balance": 5})).value
    b = (await engine.run_mutation("accounts:open", {"owner": "b", "balance": 0})).value
    with pytest.raises(ConvexError) as info:
        await engine.run_mutation("accounts:transfer", {"src": a, "dst": b, "amount": 9})
    assert info.value.data == {"code": "insufficient_funds", "balance": 5}
    assert await total(engine) == 5


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (("run_query", "nope:missing", {}), FunctionNotFound,
         "Could not find public function for 'nope:missing'"),
        (("run_query", "extra:secret", {}), FunctionNotFound,
         "Could not find public function for 'extra:secret'"),
        (("run_query", "accounts:open", {"owner": "a", "balance": 1}), WrongFunctionKind,
         "as Query, but it is defined as Mutation"),
        (("run_mutation", "accounts:open", {"owner": "a", "balance": 1.5}), ValidationError,
         "args.balance: expected int64, got float64"),
        (("run_mutation", "accounts:open", {"owner": "a"}), ValidationError,
         "missing required field 'balance'"),
        (("run_mutation", "accounts:open", {"owner": "a", "balance": 1, "x": 1}), ValidationError,
         "unexpected field 'x'"),
        (("run_query", "accounts:by_owner", ["a"]), ValidationError, "expected an object"),
        (("run_query", "extra:bad_return", {}), ValidationError,
         "extra:bad_return: return value: expected string"),
        (("run_query", "extra:unencodable", {}), ValidationError, "starts with '\\$'"),
        (("run_query", "bad path!", {}), BadRequest, "invalid function path"),
    ],
)
async def test_bad_calls_get_clear_errors(engine: Any, call: Any, error: Any, message: str) -> None:
    method, path, args = call
    with pytest.raises(error, match=message):
        await getattr(engine, method)(path, args)
    assert await total(engine) == 0


async def test_internal_functions_are_reachable_internally(engine: Any) -> None:
    assert (await engine.run_query("extra:secret", {}, internal_ok=True)).value == "internal"
    result = (await engine.run_action("extra:open_via_action", {"owner": "act"})).value
    assert result["same"] is True and result["secret"] == "internal"


async def test_function_time_limit_cancels_and_rolls_back(make_app: Any, deploy: Any) -> None:
    config = EngineConfig(limits=Limits(function_seconds=0.2))
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA}), config=config)
    with pytest.raises(FunctionTimeout, match=r"time limit of 0\.2 s"):
        await engine.run_mutation("extra:slow", {"seconds": 5.0})
    with pytest.raises(FunctionTimeout):
        await engine.run_query("extra:spin", {})
    assert (await engine.run_query("accounts:by_owner", {"owner": "slow"})).value is None
    await engine.run_mutation("extra:slow", {"seconds": 0.0})
    assert (await engine.run_query("accounts:by_owner", {"owner": "slow"})).value is not None


async def test_limits_abort_with_a_clear_error(make_app: Any, deploy: Any) -> None:
    config = EngineConfig(limits=Limits(documents_written=10, documents_scanned=5))
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA}), config=config)
    with pytest.raises(LimitExceeded, match="too many documents written"):
        await engine.run_mutation("extra:bulk", {"n": 11.0})
    assert await total(engine) == 0
    await engine.run_mutation("extra:bulk", {"n": 8.0})
    with pytest.raises(LimitExceeded, match="too many documents read"):
        await engine.run_query("accounts:total", {})


async def test_document_size_limit(make_app: Any, deploy: Any) -> None:
    config = EngineConfig(limits=Limits(document_bytes=1000))
    engine = await deploy(make_app(ACCOUNTS_APP), config=config)
    with pytest.raises(ValidationError, match="larger than the limit of 1000 bytes"):
        await engine.run_mutation("accounts:open", {"owner": "x" * 2000, "balance": 0})


async def test_commits_are_published_after_commit_in_ts_order(engine: Any) -> None:
    heard: list[tuple[int, WriteSet]] = []
    stream = CommitStream(engine.store, lambda ts, writes: heard.append((ts, writes)))
    await stream.start()
    try:
        outcomes = await asyncio.gather(*[
            engine.run_mutation("accounts:open", {"owner": f"o{i}", "balance": i})
            for i in range(20)
        ])

        async def all_heard() -> bool:
            return len(heard) >= 20

        await until(all_heard)
    finally:
        await stream.stop()
    # Heard in the order heard: each commit once, in strictly increasing timestamp order.
    assert [ts for ts, _ in heard] == sorted({o.ts for o in outcomes})
    read_only = await engine.run_mutation("extra:read_only", {})
    assert read_only.ts == max(o.ts for o in outcomes) and len(heard) == 20
    assert all(("accounts", "by_owner") in w.keys for _, w in heard)


async def test_a_swallowed_conflict_still_retries(engine: Any) -> None:
    doc = (await engine.run_mutation("accounts:open", {"owner": "c", "balance": 0})).value
    outcomes = await asyncio.gather(*[
        engine.run_mutation("extra:bump_and_swallow", {"id": doc}) for _ in range(8)
    ])
    assert (await engine.run_query("accounts:by_owner", {"owner": "c"})).value["balance"] == 8
    assert sum(o.retries for o in outcomes) > 0


async def test_conflicts_past_the_retry_bound_fail_clearly(make_app: Any, deploy: Any) -> None:
    config = EngineConfig(max_attempts=1)
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA}), config=config)
    doc = (await engine.run_mutation("accounts:open", {"owner": "c", "balance": 0})).value
    results = await asyncio.gather(*[
        engine.run_mutation("extra:bump_and_swallow", {"id": doc}) for _ in range(8)
    ], return_exceptions=True)
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert conflicts, "eight concurrent read-modify-writes of one row must conflict"
    assert "retried 1 times" in conflicts[0].message
    done = len(results) - len(conflicts)
    assert (await engine.run_query("accounts:by_owner", {"owner": "c"})).value["balance"] == done


@pytest.mark.parametrize("timestamp", [True, False], ids=["socket", "http"])
async def test_concurrent_transfers_keep_the_total(engine: Any, timestamp: bool) -> None:
    """Many concurrent transfers: the total never changes and no balance goes negative
    (also when, as over HTTP, the updates wait for COMMIT's message)."""
    ids = [(await engine.run_mutation("accounts:open", {"owner": f"p{i}", "balance": 100})).value
           for i in range(6)]
    rng = random.Random(7)

    async def worker() -> tuple[int, int]:
        ok = refused = 0
        for _ in range(15):
            src, dst = rng.sample(ids, 2)
            try:
                await engine.run_mutation(
                    "accounts:transfer", {"src": src, "dst": dst, "amount": rng.randint(1, 60)},
                    timestamp=timestamp)
                ok += 1
            except ConvexError:
                refused += 1
        return ok, refused

    results = await asyncio.gather(*[worker() for _ in range(8)])
    assert sum(ok for ok, _ in results) > 0
    assert await total(engine) == 600
    balances = [(await engine.run_query("accounts:by_owner", {"owner": f"p{i}"})).value["balance"]
                for i in range(6)]
    assert sum(balances) == 600 and min(balances) >= 0


async def test_query_at_ts(engine: Any) -> None:
    first = await engine.run_mutation("accounts:open", {"owner": "a", "balance": 1})
    at = await engine.run_query("accounts:by_owner", {"owner": "a"}, at_ts=first.ts)
    assert at.value["balance"] == 1 and at.ts == first.ts
    await engine.run_mutation("accounts:open", {"owner": "b", "balance": 2})
    # A later commit outside what the query read leaves its value at `first.ts` provable.
    again = await engine.run_query("accounts:by_owner", {"owner": "a"}, at_ts=first.ts)
    assert again.value["balance"] == 1
    # One inside it is read through the query history (tests/engine/test_history.py).
    assert (await engine.run_query("accounts:total", {}, at_ts=first.ts)).value == 1
    assert (await engine.run_query("accounts:total", {})).value == 3
    with pytest.raises(BadRequest, match="in the future"):
        await engine.run_query("accounts:total", {}, at_ts=first.ts * 2)


async def test_ctx_random_is_seeded_per_call(engine: Any) -> None:
    """Same request, same draws (a retry or a replay decides as the first attempt did)."""
    first = (await engine.run_mutation("extra:draws", {}, request=("s1", 7))).value
    again = (await engine.run_mutation("extra:draws", {}, request=("s1", 7))).value
    other = (await engine.run_mutation("extra:draws", {}, request=("s1", 8))).value
    seeded = (await engine.run_mutation("extra:draws", {}, seed="job-1")).value
    unseeded = [(await engine.run_mutation("extra:draws", {})).value for _ in range(2)]
    assert first == again and len(set(first)) == 3
    assert other != first and seeded != first
    assert seeded == (await engine.run_mutation("extra:draws", {}, seed="job-1")).value
    assert unseeded[0] != unseeded[1]


async def test_actions_run_under_their_own_time_limit(make_app: Any, deploy: Any) -> None:
    config = EngineConfig(limits=Limits(function_seconds=0.1, action_seconds=0.5))
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA}),
                          config=config)
    # Longer than a query may run, within an action's limit.
    assert (await engine.run_action("extra:slow_action", {"seconds": 0.2})).value == "done"
    with pytest.raises(FunctionTimeout, match=r"extra:slow_action ran past its time limit "
                                              r"of 0.5 s"):
        await engine.run_action("extra:slow_action", {"seconds": 2.0})


async def test_actions_get_the_id_table_checks(engine: Any) -> None:
    doc = (await engine.run_mutation("extra:open_internal", {"owner": "t"}, internal_ok=True))
    assert (await engine.run_action("extra:wrong_table_id", {"other": doc.value})).value == \
        doc.value
    job = (await engine.run_mutation("extra:schedule_one", {})).value
    with pytest.raises(ValidationError, match="extra:wrong_table_id: return value"):
        await engine.run_action("extra:wrong_table_id", {"other": job})


async def test_a_database_away_past_the_retries_is_unavailable_not_a_conflict(
    make_app: Any, deploy: Any, database_url: str
) -> None:
    """Retries that all found the database away end in DatabaseUnavailable (nothing was
    committed, try again), never in a made-up ConflictError."""
    async with scratch_database(database_url) as scratch:
        engine = await deploy(make_app(ACCOUNTS_APP), url=scratch.url,
                              config=EngineConfig(max_attempts=3))
        await scratch.refuse_connections()
        try:
            with pytest.raises(DatabaseUnavailable):
                await engine.run_mutation("accounts:open", {"owner": "x", "balance": 1})
        finally:
            await scratch.allow_connections()
        await engine.deployment.stop()
