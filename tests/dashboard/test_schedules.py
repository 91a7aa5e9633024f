"""The Schedules page's functions: jobs by state, cancel, crons with their history."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.client import ClientError

pytestmark = pytest.mark.e2e


async def test_pending_jobs_can_be_canceled_and_the_list_is_live(dashboard: Any) -> None:
    client, _, _ = dashboard
    pending = client.subscribe("_system/schedules:jobs", {"state": "pending"})
    assert await anext(pending) == []
    job_id = await client.mutation("notes:later", {"delay": 3600})
    (job,) = await anext(pending)
    assert (job["id"], job["name"], job["state"], job["args"]) == (
        job_id, "notes:secret", "pending", '{"body": "later"}')
    assert await client.mutation("_system/schedules:cancel", {"id": job_id}) == "canceled"
    assert await anext(pending) == []
    (canceled,) = await client.query("_system/schedules:jobs", {"state": "canceled"})
    assert canceled["id"] == job_id and canceled["completedTime"] is not None
    with pytest.raises(ClientError, match="the job is canceled already"):
        await client.mutation("_system/schedules:cancel", {"id": job_id})
    with pytest.raises(ClientError, match="cannot cancel 'nope'"):
        await client.mutation("_system/schedules:cancel", {"id": "nope"})
    with pytest.raises(ClientError, match="state must be one of pending"):
        await client.query("_system/schedules:jobs", {"state": "sleeping"})
    everything = await client.query("_system/schedules:jobs", {})
    assert [j["id"] for j in everything] == [job_id]
    await pending.aclose()


async def test_crons_show_schedule_next_run_and_history(dashboard: Any) -> None:
    client, _, _ = dashboard
    (cron,) = await client.query("_system/schedules:crons", {})
    assert (cron["name"], cron["function"], cron["args"]) == (
        "hourly-secret", "notes:secret", '{"body": "cron"}')
    assert cron["nextRun"] > 0 and cron["lastRun"] is None and cron["history"] == []
    assert cron["schedule"]
