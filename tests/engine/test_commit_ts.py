"""A socket mutation whose writes are all inserts learns its commit timestamp from the commit
stream (`engine.commit_ts`): sequenced in COMMIT's own message, no call of its own, the
same timestamp the commit log holds; the sequencer still answers when the stream is late."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.engine import commit_ts
from reactive_store.engine.engine import Engine
from reactive_store.live.commits import CommitStream
from tests.live.test_precision import FUNCTIONS, SCHEMA


@pytest.fixture
async def engine(make_app: Any, deploy: Any) -> Engine:
    engine: Engine = await deploy(make_app({"schema/__init__.py": SCHEMA,
                                            "functions/ranked.py": FUNCTIONS}))
    return engine


def count_sequencing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Every batch of commit keys the process's sequencer asks Postgres about."""
    calls: list[list[Any]] = []
    sequencer = engine.store.sequencer
    original = sequencer._call

    async def call(keys: list[Any]) -> dict[Any, int]:
        calls.append(list(keys))
        return await original(keys)

    monkeypatch.setattr(sequencer, "_call", call)
    return calls


async def recorded_ts(engine: Engine, session: str, request_id: int) -> int | None:
    async with engine.store.read() as tx:
        found = await tx.find_request(session, request_id)
    assert found is not None
    return found.ts


async def test_the_timestamp_comes_from_the_stream_without_a_sequencing_call(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_sequencing(engine, monkeypatch)
    for n in range(5):
        outcome = await engine.run_mutation("ranked:add", {"rank": float(n), "group": "a"},
                                            request=("watched", n))
        assert outcome.ts is not None
        assert outcome.ts == await recorded_ts(engine, "watched", n)
    asked = [key for batch in calls for key in batch]
    assert not any(isinstance(key, tuple) for key in asked), asked


async def test_a_late_stream_falls_back_to_the_sequencer(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = engine.timestamps.stream.__self__  # type: ignore[union-attr]
    assert isinstance(stream, CommitStream)
    await stream.stop()  # nothing is delivered any more
    monkeypatch.setattr(commit_ts, "WATCH_SECONDS", 0.2)
    calls = count_sequencing(engine, monkeypatch)
    outcome = await engine.run_mutation("ranked:add", {"rank": 9.0, "group": "b"},
                                        request=("late", 1))
    assert outcome.ts is not None and outcome.ts == await recorded_ts(engine, "late", 1)
    assert ["late", 1] in [list(key) for batch in calls for key in batch
                           if isinstance(key, tuple)]
    assert not stream._watches, "the timed-out watch was not removed"


async def test_a_cancelled_watch_is_forgotten(engine: Engine) -> None:
    stream = engine.timestamps.stream.__self__  # type: ignore[union-attr]
    watch = stream.watch(("ranked", "by_id"), b"nothing")
    assert stream._watches
    watch.cancel()
    await engine.run_mutation("ranked:add", {"rank": 3.0, "group": "a"}, timestamp=False)
    assert not stream._watches


async def test_a_conflicting_attempt_forgets_its_watch(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retried attempt watched for ids that were never committed: only the committed
    attempt's watch is resolved, and none is left behind."""
    stream = engine.timestamps.stream.__self__  # type: ignore[union-attr]
    attempts = [0]
    original = engine.store.write

    def flaky(buffered: bool = False, buffer_updates: bool = False) -> Any:
        attempts[0] += 1
        context = original(buffered, buffer_updates)
        if attempts[0] == 1:
            class Conflicting:
                async def __aenter__(self) -> Any:
                    return await context.__aenter__()

                async def __aexit__(self, *exc: Any) -> None:
                    from reactive_store.storage.store import TransientConflict
                    await context.__aexit__(TransientConflict, TransientConflict("x"), None)
                    raise TransientConflict("a conflict at COMMIT")
            return Conflicting()
        return context

    monkeypatch.setattr(engine.store, "write", flaky)
    outcome = await engine.run_mutation("ranked:add", {"rank": 4.0, "group": "a"},
                                        request=("retried", 1))
    assert attempts[0] == 2 and outcome.retries == 1
    assert outcome.ts == await recorded_ts(engine, "retried", 1)
    assert not stream._watches


async def test_concurrent_writers_each_learn_their_timestamp_from_the_stream(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Socket mutations committing at once are each sequenced in COMMIT's message (one
    call sequences every commit it finds; the others then skip the commit lock): none asks
    the sequencer, and each gets the timestamp the commit log holds."""
    import asyncio

    calls = count_sequencing(engine, monkeypatch)
    outcomes = await asyncio.gather(*[
        engine.run_mutation("ranked:add", {"rank": float(n), "group": "a"},
                            request=("busy", n)) for n in range(8)])
    for n, outcome in enumerate(outcomes):
        assert outcome.ts is not None and outcome.ts == await recorded_ts(engine, "busy", n)
    assert len({o.ts for o in outcomes}) == 8
    assert not [key for batch in calls for key in batch if isinstance(key, tuple)]
