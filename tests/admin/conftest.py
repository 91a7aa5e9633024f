"""Admin fixtures: a served app and clients of our own (the sync protocol), with or
without the admin key, for calling the Convex CLI's `_system/cli/...` functions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from reactive_store.client import Client
from tests.support import admin_clients

ADMIN_KEY = "admin-test-key"
SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"body": v.string(), "rank": v.int64()}),
    "tags": define_table({"name": v.string()}),
})
"""
FUNCTIONS = """
from reactive_store import internal_mutation, mutation, query, v

@mutation(args={"body": v.string(), "rank": v.int64()})
async def add(ctx, body, rank):
    return await ctx.db.insert("notes", {"body": body, "rank": rank})

@query(args={"kind": v.union(v.literal(1), v.literal("one"))}, returns=v.array(v.string()))
async def listed(ctx, kind):
    return [n["body"] for n in await ctx.db.query("notes").collect()]

@query
async def untyped(ctx):
    return None

@internal_mutation(args={"delay": v.float64()})
async def later(ctx, delay):
    return await ctx.scheduler.run_after(delay, "notes:add", {"body": "later", "rank": 0})
"""
HTTP = """
from reactive_store import HttpRouter
http = HttpRouter()

@http.route("/hook", method="POST")
async def hook(ctx, request):
    return None

@http.route(path_prefix="/files/")
async def files(ctx, request):
    return None
"""
APP = {"schema/__init__.py": SCHEMA, "functions/notes.py": FUNCTIONS,
       "functions/http.py": HTTP}

Admin = tuple[Client, Any, Callable[..., Any]]


@pytest.fixture
async def admin(make_app: Any, serve: Any) -> AsyncIterator[Admin]:
    """(admin client, deployment, open_client) on a served app."""
    url, deployment = await serve(make_app(APP), admin_key=ADMIN_KEY)
    async with admin_clients(url, ADMIN_KEY) as (client, open_client):
        yield client, deployment, open_client
