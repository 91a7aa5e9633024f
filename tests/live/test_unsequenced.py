"""Commits that are visible but have no timestamp yet (storage/sequencer.py): a live query
that read one holds its old result until the commit is sequenced, a query at a timestamp
waits for it, and a commit whose process never sequenced it is sequenced by another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from reactive_store.errors import QueryError
from tests.live.test_precision import FUNCTIONS, SCHEMA, Live
from tests.support import until


@pytest.fixture
async def live(make_app: Any, deploy: Any) -> Live:
    return await _live(make_app, deploy)


@pytest.fixture
async def live_without_history(make_app: Any, deploy: Any,
                               monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.setenv("REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S", "0")
    return await _live(make_app, deploy)


async def _live(make_app: Any, deploy: Any) -> Live:
    engine = await deploy(make_app({"schema/__init__.py": SCHEMA,
                                    "functions/ranked.py": FUNCTIONS}))
    state = Live(engine)
    for rank in (1.0, 2.0):
        state.ids[rank] = await state.write("ranked:add", {"rank": rank, "group": "a"})
    return state


class SequencingHold:
    """The deployment's commit lock, held from a connection of its own: every `_sequence`
    call, of any process, waits at the lock until `release`. (Swapping the process's
    Sequencer is not enough: a call already sent may run on the server after the swap.)"""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    async def take(cls, live: Live) -> SequencingHold:
        store = live.engine.store
        conn = await asyncpg.connect(store.url)
        await conn.execute("SELECT pg_advisory_lock($1)", store.names.commit_lock)
        return cls(conn)

    async def release(self) -> None:
        if not self._conn.is_closed():
            await self._conn.close()  # ends the session, and its lock


@pytest.fixture
async def hold() -> AsyncIterator[Callable[[Live], Awaitable[SequencingHold]]]:
    taken: list[SequencingHold] = []

    async def take(live: Live) -> SequencingHold:
        taken.append(await SequencingHold.take(live))
        return taken[-1]

    yield take
    for held in taken:
        await held.release()


async def test_a_result_that_read_an_unsequenced_commit_waits_for_its_timestamp(
        live: Live, hold: Any) -> None:
    top = await live.subscribe("ranked:top", {"n": 2.0})
    other = await live.subscribe("ranked:group", {"group": "b"})
    gate = await hold(live)
    committed = await live.engine.run_mutation("ranked:add", {"rank": 0.5, "group": "a"},
                                               timestamp=False)
    assert committed.ts is None
    runs = (top.runs, other.runs)
    live.manager.refresh(lambda q: True)  # both run again on a snapshot holding the commit
    await until(_ran(top, runs[0] + 1))
    await until(_ran(other, runs[1] + 1))
    await asyncio.sleep(0.1)
    assert top.value == [1.0, 2.0] and not top.usable_at(live.manager.processed_ts + 1)
    assert other.value == [] and other.usable_at(live.manager.processed_ts)
    await gate.release()
    await until(_settled(top, [0.5, 1.0]))
    assert top.ts > 0 and top.usable_at(live.manager.processed_ts)


async def test_a_query_at_a_timestamp_reads_the_state_before_an_unsequenced_commit(
        live: Live, hold: Any) -> None:
    """With query history, a commit its snapshot holds without a timestamp is one more
    commit after the timestamp: its before-images give the state at it, with no waiting."""
    gate = await hold(live)
    await live.engine.run_mutation("ranked:add", {"rank": 0.5, "group": "a"}, timestamp=False)
    ts = live.manager.processed_ts
    at = await live.engine.run_query("ranked:top", {"n": 2.0}, at_ts=ts)
    assert at.value == [1.0, 2.0] and at.ts == ts
    await gate.release()


async def test_a_query_at_a_timestamp_waits_then_gives_up_clearly(
        live_without_history: Live, hold: Any) -> None:
    live = live_without_history
    gate = await hold(live)
    await live.engine.run_mutation("ranked:add", {"rank": 0.5, "group": "a"}, timestamp=False)
    ts = live.manager.processed_ts
    with pytest.raises(QueryError, match="still have no timestamp"):
        await live.engine.run_query("ranked:top", {"n": 2.0}, at_ts=ts)
    # A query that read nothing the commit wrote is answered at once.
    assert (await live.engine.run_query("ranked:group", {"group": "b"}, at_ts=ts)).value == []
    await gate.release()
    outcome = await live.engine.run_mutation("ranked:add", {"rank": 9.0, "group": "c"})
    assert outcome.ts is not None
    at = await live.engine.run_query("ranked:top", {"n": 2.0}, at_ts=outcome.ts)
    assert at.value == [0.5, 1.0] and at.ts == outcome.ts


async def test_a_commit_left_without_a_timestamp_is_sequenced_by_a_nudge(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that dies between COMMIT and sequencing: its commit still gets a timestamp
    (the commit stream nudges the sequencer every ORPHAN_SECONDS) and reaches subscribers."""
    top = await live.subscribe("ranked:top", {"n": 2.0})
    monkeypatch.setattr(live.engine.store.sequencer, "announce", lambda xid: None)
    await live.engine.run_mutation("ranked:add", {"rank": 0.5, "group": "a"}, timestamp=False)
    monkeypatch.undo()
    await until(_settled(top, [0.5, 1.0]), timeout=5.0)


def _ran(live: Any, runs: int) -> Any:
    async def check() -> bool:
        return bool(live.runs >= runs)
    return check


def _settled(live: Any, value: Any) -> Any:
    async def check() -> bool:
        return bool(live.value == value)
    return check
