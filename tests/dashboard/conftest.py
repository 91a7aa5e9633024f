"""Dashboard fixtures: a served app and an admin client of our own (the sync protocol)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from reactive_store.client import Client
from tests.support import admin_clients

ADMIN_KEY = "dashboard-test-key"
SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"body": v.string(), "rank": v.int64(),
                           "score": v.optional(v.float64())})
        .index("by_rank", ["rank"]).index("by_body_rank", ["body", "rank"]),
    "tags": define_table({"name": v.string()}),
})
"""
FUNCTIONS = """
from reactive_store import ConvexError, action, internal_mutation, mutation, query, v

@mutation(args={"body": v.string(), "rank": v.int64()})
async def add(ctx, body, rank):
    print("adding", body)
    return await ctx.db.insert("notes", {"body": body, "rank": rank})

@query(args={})
async def listed(ctx):
    return [n["body"] for n in await ctx.db.query("notes").collect()]

@query(args={})
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else identity["subject"]

@internal_mutation(args={"body": v.string()})
async def secret(ctx, body):
    \"\"\"Only for the admin.\"\"\"
    print("secret", body)
    return body.upper()

@mutation(args={})
async def refuse(ctx):
    print("refusing")
    raise ConvexError({"code": "nope", "message": "not today"})

@mutation(args={"delay": v.float64()})
async def later(ctx, delay):
    return await ctx.scheduler.run_after(delay, secret, {"body": "later"})

@action(args={})
async def crash(ctx):
    raise RuntimeError("the action broke")
"""
CRONS = """
from reactive_store import Crons
crons = Crons()
crons.interval("hourly-secret", hours=1, fn="notes:secret", args={"body": "cron"})
"""
APP = {"schema/__init__.py": SCHEMA, "functions/notes.py": FUNCTIONS,
       "functions/crons.py": CRONS}


@pytest.fixture
async def dashboard(make_app: Any, serve: Any
                    ) -> AsyncIterator[tuple[Client, Any, Callable[..., Any]]]:
    """(admin client, deployment, open_client) on a served app with the dashboard."""
    url, deployment = await serve(make_app(APP), admin_key=ADMIN_KEY)
    async with admin_clients(url, ADMIN_KEY) as (client, open_client):
        yield client, deployment, open_client
