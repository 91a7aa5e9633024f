"""The Health page's function: server figures now and a live series of samples."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


async def test_figures_are_sampled_every_second_and_pushed(dashboard: Any) -> None:
    client, deployment, _ = dashboard
    health = client.subscribe("_system/health:figures", {})
    first = await anext(health)
    assert first["now"]["liveQueries"] >= 1 and first["now"]["sockets"] >= 1
    assert first["now"]["poolMax"] == 12 and first["recording"] is True
    assert first["app"] == {**first["app"], "functions": 7, "tables": 2}
    await client.mutation("notes:add", {"body": "a", "rank": 1})
    async with asyncio.timeout(5):
        while True:
            later = await anext(health)
            if later["series"] and later["series"][-1]["recorded"] >= 1 and \
                    len(later["series"]) > len(first["series"]):
                break
    assert later["now"]["memoryMb"] > 10 and later["executionsKept"] >= 1
    await health.aclose()
    assert deployment.observer.log.total >= 1
