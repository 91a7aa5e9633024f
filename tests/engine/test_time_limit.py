"""`run_limited`: a handler that never waits needs no timer; one that waits is resumed
exactly as `await` would resume it, and cancelled at its limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive_store.engine import time_limit
from reactive_store.engine.time_limit import run_limited


def count_timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    armed: list[float] = []
    original = asyncio.timeout

    def timeout(seconds: float | None) -> Any:
        armed.append(seconds or 0.0)
        return original(seconds)

    monkeypatch.setattr(time_limit.asyncio, "timeout", timeout)
    return armed


async def test_a_handler_that_never_waits_arms_no_timer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    armed = count_timers(monkeypatch)

    async def handler() -> str:
        return "done"

    assert await run_limited(handler(), 1.0) == "done"
    assert armed == []


async def test_a_waiting_handler_is_resumed_with_what_it_awaited(
        monkeypatch: pytest.MonkeyPatch) -> None:
    armed = count_timers(monkeypatch)

    async def handler() -> int:
        first = await asyncio.sleep(0, result=2)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, future.set_result, 3)
        return first + await future

    assert await run_limited(handler(), 1.0) == 5
    assert armed == [1.0]


async def test_a_handler_past_its_limit_is_cancelled() -> None:
    finished = []

    async def handler() -> None:
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(5)
        finally:
            finished.append("cleanup ran")

    with pytest.raises(TimeoutError):
        await run_limited(handler(), 0.05)
    assert finished == ["cleanup ran"]


@pytest.mark.parametrize("waits_first", [False, True])
async def test_errors_reach_the_caller_before_and_after_a_wait(waits_first: bool) -> None:
    async def handler() -> None:
        if waits_first:
            await asyncio.sleep(0)
        raise ValueError("from the handler")

    with pytest.raises(ValueError, match="from the handler"):
        await run_limited(handler(), 1.0)


async def test_an_error_thrown_in_is_seen_and_may_be_handled_by_the_handler() -> None:
    """A failed future the handler awaits raises inside it, where it can catch it."""
    async def handler() -> str:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_exception, KeyError("gone"))
        try:
            await future
        except KeyError:
            return "handled"
        return "not reached"

    assert await run_limited(handler(), 1.0) == "handled"


async def test_cancelling_the_caller_cancels_the_handler() -> None:
    started = asyncio.Event()
    cancelled = []

    async def handler() -> None:
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    task = asyncio.create_task(run_limited(handler(), 10.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == [True]


async def test_other_awaitables_run_under_the_timer() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, future.set_result, "ok")
    assert await run_limited(future, 1.0) == "ok"
    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await run_limited(never, 0.02)
