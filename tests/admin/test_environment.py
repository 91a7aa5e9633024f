"""`_system/cli/queryEnvironmentVariables` (and `:get`): what `npx convex env list|get` read."""

from __future__ import annotations

import asyncio

import pytest

from tests.admin.conftest import Admin

pytestmark = pytest.mark.e2e

LIST = "_system/cli/queryEnvironmentVariables"
GET = "_system/cli/queryEnvironmentVariables:get"


async def test_list_gives_every_variable_by_name(admin: Admin) -> None:
    client, deployment, _ = admin
    assert await client.query(LIST, {}) == []
    await deployment.update_environment([("ZED", "last"), ("ALPHA", "a b\nc")])
    assert await client.query(LIST, {}) == [{"name": "ALPHA", "value": "a b\nc"},
                                            {"name": "ZED", "value": "last"}]


async def test_get_gives_one_variable_or_null(admin: Admin) -> None:
    client, deployment, _ = admin
    await deployment.update_environment([("TOKEN", "t1")])
    assert await client.query(GET, {"name": "TOKEN"}) == {"name": "TOKEN", "value": "t1"}
    assert await client.query(GET, {"name": "MISSING"}) is None
    assert await client.query(GET, {"name": "not a valid name"}) is None


async def test_a_change_reaches_a_subscription_to_the_list(admin: Admin) -> None:
    client, deployment, _ = admin
    watch = client.subscribe(LIST, {})
    assert await anext(watch) == []
    await deployment.update_environment([("FLAG", "on")])
    assert await asyncio.wait_for(anext(watch), 5) == [{"name": "FLAG", "value": "on"}]
    await deployment.update_environment([("FLAG", None)])
    assert await asyncio.wait_for(anext(watch), 5) == []
    await watch.aclose()
