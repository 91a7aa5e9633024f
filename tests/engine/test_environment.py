"""Environment variables: `ctx.env` in every kind of function, the rules for names and values,
live queries that re-run exactly when a variable they read changes, and a stale cache that
never leaks into a query's or mutation's result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reactive_store.deployment import Deployment
from reactive_store.engine.engine import Engine
from reactive_store.engine.environment import (
    MAX_VALUE_BYTES,
    MAX_VARIABLES,
    Environment,
    MissingVariable,
    check_name,
)
from reactive_store.errors import LimitExceeded, QueryError, ValidationError
from reactive_store.live.subscriptions import SubscriptionManager
from tests.support import until

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({"notes": define_table({"body": v.string()})})
    """,
    "functions/env.py": """
        from reactive_store import action, mutation, query, v

        CALLS = {"pick": 0}

        @query(args={"name": v.string()})
        async def read(ctx, name):
            return ctx.env.get(name)

        @query(args={"name": v.string()})
        async def strict(ctx, name):
            return ctx.env[name]

        @query(args={})
        async def pick(ctx):
            CALLS["pick"] += 1
            return ctx.env.get(ctx.env.get("WHICH", "A"))

        @query(args={})
        async def everything(ctx):
            return dict(ctx.env)

        @query(args={"name": v.string()})
        async def has(ctx, name):
            return name in ctx.env

        @query(args={})
        async def leak(ctx):
            return repr(ctx.env)

        @query(args={})
        async def system(ctx):
            return await ctx.db.system.query("_environment_variables").collect()

        @mutation(args={"name": v.string()})
        async def note(ctx, name):
            await ctx.db.insert("notes", {"body": ctx.env[name]})
            return ctx.env[name]

        @action(args={"name": v.string()})
        async def act(ctx, name):
            return ctx.env.get(name)
    """,
}


@pytest.fixture
async def app(deploy: Any, make_app: Callable[[dict[str, str]], Path]) -> Engine:
    engine: Engine = await deploy(make_app(APP))
    return engine


def deployment_of(engine: Engine) -> Deployment:
    deployment: Deployment = engine.deployment  # type: ignore[attr-defined]
    return deployment


async def query(engine: Engine, path: str, args: dict[str, Any] | None = None) -> Any:
    return (await engine.run_query(path, args or {})).value


async def test_every_kind_of_function_reads_variables(app: Engine) -> None:
    await deployment_of(app).update_environment([("API_KEY", "k-1"), ("MODEL", "m")])
    assert await query(app, "env:read", {"name": "API_KEY"}) == "k-1"
    assert await query(app, "env:strict", {"name": "MODEL"}) == "m"
    assert await query(app, "env:everything") == {"API_KEY": "k-1", "MODEL": "m"}
    assert await query(app, "env:has", {"name": "MODEL"}) is True
    assert await query(app, "env:has", {"name": "NOPE"}) is False
    assert (await app.run_mutation("env:note", {"name": "API_KEY"})).value == "k-1"
    assert (await app.run_action("env:act", {"name": "MODEL"})).value == "m"
    assert await query(app, "env:read", {"name": "UNSET"}) is None


async def test_a_missing_variable_is_a_key_error_that_says_how_to_set_it(app: Engine) -> None:
    with pytest.raises(MissingVariable) as raised:
        await app.run_query("env:strict", {"name": "OPENAI_API_KEY"})
    assert isinstance(raised.value, KeyError)
    assert str(raised.value) == ("environment variable 'OPENAI_API_KEY' is not set; set it "
                                 "with `reactive-store env set OPENAI_API_KEY VALUE`")
    with pytest.raises(MissingVariable):
        await app.run_mutation("env:note", {"name": "OPENAI_API_KEY"})
    assert await query(app, "env:everything") == {}


async def test_values_never_show_in_repr_and_the_table_is_not_readable(app: Engine) -> None:
    await deployment_of(app).update_environment([("SECRET", "hunter2")])
    text = await query(app, "env:leak")
    assert "hunter2" not in text and text == "<ctx.env: 1 variables>"
    with pytest.raises(QueryError, match=r"read variables with ctx\.env"):
        await app.run_query("env:system", {})


@pytest.mark.parametrize(("name", "why"), [
    ("1ABC", "must start with a letter"),
    ("_ABC", "must start with a letter"),
    ("MY-KEY", "only letters, digits and underscores"),
    ("", "must start with a letter"),
    ("A" * 41, "longer than 40 characters"),
])
def test_invalid_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        check_name(name)


def test_valid_names() -> None:
    for name in ("A", "a1", "GITHUB_WEBHOOK_SECRET", "x" * 40):
        assert check_name(name) == name


async def test_values_and_counts_are_limited_and_updates_are_all_or_nothing(
        app: Engine) -> None:
    deployment = deployment_of(app)
    await deployment.update_environment([("KEEP", "1")])
    with pytest.raises(ValidationError) as too_big:
        await deployment.update_environment([("OK", "fine"),
                                             ("BIG", "x" * (MAX_VALUE_BYTES + 1))])
    assert "BIG" in too_big.value.message and "x" * 20 not in too_big.value.message
    with pytest.raises(ValidationError, match="invalid environment variable name"):
        await deployment.update_environment([("OK", "fine"), ("NOT OK", "v")])
    with pytest.raises(ValidationError, match="changed twice"):
        await deployment.update_environment([("OK", "a"), ("OK", "b")])
    assert await deployment.environment() == {"KEEP": "1"}, "nothing of a refused update"
    exactly = "é" * (MAX_VALUE_BYTES // 2)  # 8 KiB of UTF-8: the largest allowed value
    await deployment.update_environment([("WIDE", exactly)])
    assert await query(app, "env:read", {"name": "WIDE"}) == exactly
    many = [(f"V{i}", str(i)) for i in range(MAX_VARIABLES - 2)]
    await deployment.update_environment(many)
    assert len(await deployment.environment()) == MAX_VARIABLES
    with pytest.raises(LimitExceeded, match=f"at most {MAX_VARIABLES}"):
        await deployment.update_environment([("ONE_MORE", "x")])
    await deployment.update_environment([("V0", None), ("ONE_MORE", "x")])  # swap is fine
    assert "ONE_MORE" in await deployment.environment()


async def test_remove_and_overwrite(app: Engine) -> None:
    deployment = deployment_of(app)
    await deployment.update_environment([("A", "1")])
    await deployment.update_environment([("A", "2")])
    assert await query(app, "env:read", {"name": "A"}) == "2"
    await deployment.update_environment([("A", None), ("NEVER_SET", None)])
    assert await query(app, "env:read", {"name": "A"}) is None
    assert await deployment.environment() == {}


async def test_live_queries_rerun_exactly_when_a_variable_they_read_changes(
        app: Engine) -> None:
    deployment = deployment_of(app)
    manager: SubscriptionManager = deployment.subscriptions
    await deployment.update_environment([("A", "a1"), ("B", "b1")])
    reads_a = manager.subscribe("env:read", {"name": "A"}, None, lambda: None)
    reads_c = manager.subscribe("env:read", {"name": "C"}, None, lambda: None)
    await manager.settled()
    assert (reads_a.runs, reads_c.runs) == (1, 1)
    assert reads_a.value == "a1" and reads_c.value is None

    await manager.settled(await deployment.update_environment([("B", "b2")]))
    assert (reads_a.runs, reads_c.runs) == (1, 1), "B is read by neither"
    await manager.settled(await deployment.update_environment([("A", "a2")]))
    assert (reads_a.runs, reads_c.runs) == (2, 1) and reads_a.value == "a2"
    await manager.settled(await deployment.update_environment([("C", "now set")]))
    assert (reads_a.runs, reads_c.runs) == (2, 2) and reads_c.value == "now set"
    await manager.settled(await deployment.update_environment([("C", None)]))
    assert reads_c.runs == 3 and reads_c.value is None


async def test_a_failed_query_reruns_when_the_missing_variable_is_set(app: Engine) -> None:
    deployment = deployment_of(app)
    manager = deployment.subscriptions
    live = manager.subscribe("env:strict", {"name": "LATER"}, None, lambda: None)
    await manager.settled()
    assert not live.ok and "LATER" in live.value["errorMessage"]
    await manager.settled(await deployment.update_environment([("LATER", "here")]))
    assert live.ok and live.value == "here"


async def test_a_stale_cache_never_reaches_a_query_or_mutation(app: Engine) -> None:
    deployment = deployment_of(app)
    ts = await deployment.update_environment([("A", "fresh"), ("WHICH", "A")])
    await deployment.subscriptions.settled(ts)  # the stream has heard it and
    await app.env.settled()  # refreshed the cache: nothing will overwrite the stale copy
    # The process's cache is behind the database (as when the commit stream lags).
    app.env.values = {"A": "stale", "WHICH": "B", "B": "wrong"}
    assert await query(app, "env:read", {"name": "A"}) == "fresh"
    assert await query(app, "env:read", {"name": "GONE"}) is None
    assert await query(app, "env:everything") == {"A": "fresh", "WHICH": "A"}
    assert await query(app, "env:pick") == "fresh", "the second lookup depends on the first"
    assert (await app.run_mutation("env:note", {"name": "A"})).value == "fresh"
    notes = await app.read(lambda db: db.query("notes").collect())
    assert [n["body"] for n in notes] == ["fresh"], "the stale attempt was rolled back"
    # Actions read the cache as it is: they have no snapshot to check against.
    assert (await app.run_action("env:act", {"name": "A"})).value == "stale"


async def test_a_query_that_reads_no_variable_costs_no_extra_read(app: Engine) -> None:
    await deployment_of(app).update_environment([("A", "1")])
    outcome = await app.run_query("env:read", {"name": "A"})
    assert [ref for ref, _ in outcome.reads] == [("_environment_variables", "by_name")]
    fresh = Environment({"A": "1"})
    assert fresh.seen == {} and not fresh.seen_all


async def test_another_process_sees_a_change_within_a_second(
        app: Engine, deploy: Any, make_app: Callable[[dict[str, str]], Path]) -> None:
    first = deployment_of(app)
    other: Engine = await deploy(make_app(APP), namespace=first.settings.namespace)
    await first.update_environment([("SHARED", "v1")])

    async def seen() -> bool:
        return (await other.run_action("env:act", {"name": "SHARED"})).value == "v1"

    started = asyncio.get_running_loop().time()
    await until(seen, timeout=1.0)
    assert asyncio.get_running_loop().time() - started < 1.0
