"""The sequencer's coalescing: many commits, few `_sequence` calls; failures reach waiters."""

from __future__ import annotations

import asyncio

import pytest

from reactive_store.storage import sequencer as sequencer_module
from reactive_store.storage.sequencer import Sequencer, SequencingFailed


class Calls:
    """A `_sequence` stand-in that records each batch and answers after a short delay."""

    def __init__(self, fail: int = 0, missing: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.missing = missing
        self.next_ts = 1000

    async def __call__(self, xids: list[int]) -> dict[int, int]:
        self.batches.append(xids)
        await asyncio.sleep(0.01)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database went away")
        out = {}
        for xid in xids:
            if xid not in self.missing:
                self.next_ts += 1
                out[xid] = self.next_ts
        return out


async def test_a_burst_of_commits_shares_a_few_calls() -> None:
    calls = Calls()
    sequencer = Sequencer(calls, in_flight=2)
    got = await asyncio.gather(*[sequencer.timestamp(xid) for xid in range(1, 101)])
    assert len(got) == 100 and len(set(got)) == 100
    assert len(calls.batches) <= 3, calls.batches
    assert sorted(x for batch in calls.batches for x in batch) == list(range(1, 101))


async def test_announced_commits_are_sequenced_without_a_waiter() -> None:
    calls = Calls()
    sequencer = Sequencer(calls)
    sequencer.announce(7)
    sequencer.nudge()
    for _ in range(50):
        if calls.batches:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert [7] in calls.batches
    sequencer.nudge()
    await asyncio.sleep(0.05)
    assert calls.batches[-1] == [], "a nudge alone sequences whatever is waiting"


async def test_a_passing_failure_is_retried() -> None:
    calls = Calls(fail=2)
    sequencer = Sequencer(calls)
    assert await sequencer.timestamp(5) > 1000
    assert len(calls.batches) == 3


async def test_lasting_failures_reach_the_waiters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sequencer_module, "RETRY_SECONDS", 0.1)
    sequencer = Sequencer(Calls(fail=1000))
    with pytest.raises(SequencingFailed, match="database went away"):
        await sequencer.timestamp(5)


async def test_an_unknown_commit_is_an_error_not_a_hang() -> None:
    sequencer = Sequencer(Calls(missing=frozenset({9})))
    ok, missing = await asyncio.gather(sequencer.timestamp(8), sequencer.timestamp(9),
                                       return_exceptions=True)
    assert isinstance(ok, int)
    assert isinstance(missing, SequencingFailed) and "commit 9 not found" in str(missing)


async def test_close_fails_whoever_still_waits() -> None:
    gate = asyncio.Event()

    async def stuck(xids: list[int]) -> dict[int, int]:
        await gate.wait()
        return {}

    sequencer = Sequencer(stuck)
    waiter = asyncio.create_task(sequencer.timestamp(1))
    await asyncio.sleep(0.01)
    await sequencer.close()
    with pytest.raises(SequencingFailed, match="closed"):
        await waiter


async def test_a_flush_waits_for_a_call_that_started_after_it() -> None:
    """A call already in flight may predate commits made visible since: a flush waits for
    the next one (what `Store.latest_ts` relies on for read-your-writes over HTTP)."""
    started: list[float] = []
    gate = asyncio.Event()

    async def slow(xids: list[int]) -> dict[int, int]:
        started.append(asyncio.get_running_loop().time())
        if len(started) == 1:
            await gate.wait()
        return {}

    sequencer = Sequencer(slow, in_flight=1)
    sequencer.nudge()
    await asyncio.sleep(0.01)  # the first call is in flight, held
    flushed = asyncio.create_task(sequencer.flush())
    asked = asyncio.get_running_loop().time()
    await asyncio.sleep(0.01)
    assert not flushed.done()
    gate.set()
    await flushed
    assert len(started) == 2 and started[1] >= asked


async def test_a_failed_flush_reports_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sequencer_module, "RETRY_SECONDS", 0.1)
    sequencer = Sequencer(Calls(fail=1000))
    with pytest.raises(SequencingFailed, match="database went away"):
        await sequencer.flush()


async def test_commits_known_by_request_share_the_call_with_xids() -> None:
    batches: list[list[object]] = []

    async def call(keys: list[object]) -> dict[object, int]:
        batches.append(keys)
        return {key: 100 + i for i, key in enumerate(keys) if key != ("s", 9)}

    sequencer = Sequencer(call)  # type: ignore[arg-type]
    by_request, by_xid = await asyncio.gather(sequencer.timestamp(("s", 1)),
                                              sequencer.timestamp(5))
    assert batches == [[5, ("s", 1)]]  # xids first, then requests
    assert (by_xid, by_request) == (100, 101)
    with pytest.raises(SequencingFailed, match=r"commit \('s', 9\) not found"):
        await sequencer.timestamp(("s", 9))


async def test_announcements_during_a_call_wait_for_its_next_round() -> None:
    """Work nobody waits for never starts a second call: it joins the next batch."""
    calls = Calls()
    running = [0, 0]  # now, most at once

    async def call(xids: list[int]) -> dict[int, int]:
        running[0] += 1
        running[1] = max(running)
        try:
            return await calls(xids)
        finally:
            running[0] -= 1

    sequencer = Sequencer(call, in_flight=2)  # type: ignore[arg-type]
    first = asyncio.ensure_future(sequencer.timestamp(1))
    while not calls.batches:  # the first call is in flight
        await asyncio.sleep(0)
    for xid in (2, 3, 4):
        sequencer.announce(xid)
        sequencer.nudge()
    await first
    for _ in range(50):
        if len(calls.batches) == 2 and not running[0]:
            break
        await asyncio.sleep(0.01)
    assert calls.batches == [[1], [2, 3, 4]]
    assert running[1] == 1, "an announcement started a call of its own"


async def test_unwaited_work_right_after_a_call_waits_for_the_gap_and_batches() -> None:
    calls = Calls()
    sequencer = Sequencer(calls, gap=0.05)
    await sequencer.timestamp(1)  # a call just ended
    started = asyncio.get_running_loop().time()
    for xid in range(2, 7):
        sequencer.announce(xid)
        await asyncio.sleep(0.005)
    for _ in range(100):
        if len(calls.batches) > 1:
            break
        await asyncio.sleep(0.01)
    assert calls.batches[1:] == [[2, 3, 4, 5, 6]]
    assert asyncio.get_running_loop().time() - started >= 0.04


async def test_a_waiter_is_not_held_by_the_gap() -> None:
    calls = Calls()
    sequencer = Sequencer(calls, gap=5.0)
    await sequencer.timestamp(1)
    started = asyncio.get_running_loop().time()
    assert await sequencer.timestamp(2) > 1000
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_commit_carries_its_sequencing_only_when_nothing_else_sequences() -> None:
    calls = Calls()
    sequencer = Sequencer(calls)
    assert sequencer.carry()
    assert not sequencer.carry(), "a second message while the first is under way"
    sequencer.carried()
    assert sequencer.carry()
    sequencer.carried()
    waiter = asyncio.create_task(sequencer.timestamp(3))
    await asyncio.sleep(0)
    assert not sequencer.carry(), "a batched call is under way"
    await waiter
    assert sequencer.carry()
    sequencer.carried()


async def test_a_prompt_nudge_skips_the_gap_between_calls() -> None:
    """Work nobody waits for lets a batch gather after a call; a commit whose caller waits
    on the commit stream for its timestamp does not wait out that gap."""
    for prompt, bound in ((False, None), (True, 0.1)):
        calls = Calls()
        sequencer = Sequencer(calls, gap=0.5)
        await sequencer.timestamp(1)  # a call just ended: the gap starts now
        started = asyncio.get_running_loop().time()
        sequencer.nudge(prompt=prompt)
        while len(calls.batches) < 2:
            await asyncio.sleep(0.005)
        waited = asyncio.get_running_loop().time() - started
        if bound is None:
            assert waited >= 0.4, waited
        else:
            assert waited < bound, waited
        await sequencer.close()

