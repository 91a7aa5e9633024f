"""The Logs page's functions: a live tail with filters, and one execution in full."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive_store.client import ClientError

pytestmark = pytest.mark.e2e


async def next_matching(updates: Any, check: Any, timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            value = await anext(updates)
            if check(value):
                return value


async def test_the_tail_is_live_and_filtered(dashboard: Any) -> None:
    client, _, _ = dashboard
    tail = client.subscribe("_system/logs:recent", {})
    assert (await anext(tail))["executions"] == []
    await client.mutation("notes:add", {"body": "hello", "rank": 1})
    value = await next_matching(tail, lambda v: v["executions"])
    (row,) = value["executions"]
    assert (row["path"], row["kind"], row["ok"], row["caller"]) == (
        "notes:add", "mutation", True, "SyncWorker")
    assert row["firstLine"] == {"level": "LOG", "message": "adding hello"}
    assert value["recorded"] == 1 and value["enabled"] is True
    with pytest.raises(ClientError, match="not today"):
        await client.mutation("notes:refuse", {})
    value = await next_matching(tail, lambda v: len(v["executions"]) == 2)
    assert value["executions"][0]["error"] == "not today"  # newest first
    failures = await client.query("_system/logs:recent", {"outcome": "failure"})
    assert [r["path"] for r in failures["executions"]] == ["notes:refuse"]
    text = await client.query("_system/logs:recent", {"text": "HELLO"})
    assert [r["path"] for r in text["executions"]] == ["notes:add"]
    by_function = await client.query("_system/logs:recent", {"function": "notes:"})
    assert len(by_function["executions"]) == 2
    await tail.aclose()


async def test_one_execution_in_full(dashboard: Any) -> None:
    client, deployment, _ = dashboard
    await client.mutation("notes:add", {"body": "x", "rank": 2})
    (ex,) = list(deployment.observer.log)
    full = await client.query("_system/logs:execution", {"id": ex.id})
    assert full["lines"][0]["message"] == "adding x" and full["documentsWritten"] == 1
    assert await client.query("_system/logs:execution", {"id": "gone"}) is None


@pytest.mark.parametrize(("args", "message"), [
    ({"outcome": "maybe"}, "outcome must be success or failure, not 'maybe'"),
    ({"level": "LOUD"}, "level must be one of DEBUG, INFO, LOG, WARN, ERROR, not 'LOUD'"),
])
async def test_bad_filters_are_explained(dashboard: Any, args: dict[str, Any],
                                         message: str) -> None:
    client, _, _ = dashboard
    with pytest.raises(ClientError) as failed:
        await client.query("_system/logs:recent", args)
    assert message in str(failed.value)
