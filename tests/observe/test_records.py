"""The execution ring: bounded by count and bytes, exact cursors, filters, waiting."""

from __future__ import annotations

import asyncio

import pytest

from reactive_store.observe.lines import LogLine
from reactive_store.observe.records import Execution, ExecutionLog, Filter


def execution(n: int, *, path: str = "notes:add", ok: bool = True, lines: int = 0,
              text: str = "x", finished: float = 1000.0) -> Execution:
    return Execution(f"id{n}", path, "mutation", "HttpApi", None, 1.0, 2.5, ok,
                     None if ok else f"Uncaught Error: {n}", None, 0,
                     [LogLine("LOG" if i else "WARN", text, 1.0) for i in range(lines)],
                     finished=finished)


def test_count_bound_evicts_the_oldest() -> None:
    log = ExecutionLog(max_records=3)
    for n in range(5):
        log.append(execution(n))
    assert [ex.id for ex in log] == ["id2", "id3", "id4"] and log.total == 5


def test_byte_bound_evicts_but_keeps_the_newest() -> None:
    log = ExecutionLog(max_records=100, max_bytes=3000)
    for n in range(4):
        log.append(execution(n, lines=1, text="y" * 1000))
    assert [ex.id for ex in log] == ["id2", "id3"] and log.bytes <= 3000
    log.append(execution(9, lines=1, text="z" * 10_000))  # alone over the bound: kept
    assert [ex.id for ex in log] == ["id9"]


def test_completion_times_are_unique_and_increasing_so_cursors_are_exact() -> None:
    log = ExecutionLog()
    for n in range(3):
        log.append(execution(n, finished=5000.0))  # the same millisecond
    times = [ex.finished for ex in log]
    assert times == sorted(set(times)) and len(times) == 3
    assert [ex.id for ex in log.after(times[0])] == ["id1", "id2"]
    assert log.after(times[-1]) == [] and log.cursor == times[-1]
    assert [ex.id for ex in log.after(0, limit=2)] == ["id0", "id1"]  # the oldest page first


def test_filters_newest_and_find() -> None:
    log = ExecutionLog()
    log.append(execution(0, path="notes:add", lines=2, text="Hello there"))
    log.append(execution(1, path="notes:list", ok=False))
    log.append(execution(2, path="other:x", lines=1, text="warned"))
    assert [ex.id for ex in log.newest()] == ["id2", "id1", "id0"]
    assert [ex.id for ex in log.newest(Filter(function="notes:"))] == ["id1", "id0"]
    assert [ex.id for ex in log.newest(Filter(function="notes:add"))] == ["id0"]
    assert [ex.id for ex in log.newest(Filter(outcome="failure"))] == ["id1"]
    assert [ex.id for ex in log.newest(Filter(level="WARN"))] == ["id2", "id0"]
    assert [ex.id for ex in log.newest(Filter(text="HELLO"))] == ["id0"]
    assert [ex.id for ex in log.newest(Filter(text="error: 1"))] == ["id1"]
    assert [ex.id for ex in log.newest(limit=1)] == ["id2"]
    assert log.find("id1") is not None and log.find("nope") is None


def test_listeners_hear_every_execution_until_they_stop() -> None:
    log = ExecutionLog()
    heard: list[str] = []
    stop = log.listen(lambda ex: heard.append(ex.id))
    log.append(execution(0))
    stop()
    log.append(execution(1))
    assert heard == ["id0"]


async def test_wait_returns_on_new_execution_or_after_the_timeout() -> None:
    log = ExecutionLog()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await log.wait(0, 0.05)
    assert loop.time() - started >= 0.05
    waiting = asyncio.create_task(log.wait(0, 10))
    await asyncio.sleep(0.01)
    log.append(execution(0))
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(log.wait(0, 10), 1)  # already past the cursor: at once


def test_json_is_convex_function_execution() -> None:
    ex = execution(3, ok=False, lines=1)
    ex.retries, ex.identity = 2, "ann"
    entry = ex.to_json()
    assert entry["kind"] == "Completion" and entry["udfType"] == "Mutation"
    assert entry["identifier"] == "notes:add" and entry["executionTime"] == 0.0025
    assert entry["error"] == "Uncaught Error: 3" and entry["occInfo"] == {"retryCount": 2}
    assert entry["identityType"] == "user" and entry["logLines"][0]["level"] == "WARN"


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ExecutionLog(max_records=0)


def test_records_are_kept_packed_and_come_back_equal() -> None:
    ex = execution(5, ok=False, lines=2, text="kept")
    ex.identity, ex.parent, ex.retries, ex.dropped_lines = "ann", "p1", 3, 7
    ex.documents_read, ex.bytes_read, ex.documents_written, ex.bytes_written = 1, 2, 3, 4
    assert Execution.unpack(ex.pack()) == ex
    log = ExecutionLog()
    log.append(ex)
    assert list(log) == [ex] and log.find("id5") == ex
