"""writelog.py: the retained commit window and the read-set refresh that decides validity."""

from __future__ import annotations

import random

import pytest

from reactive_store.engine.intervals import Interval
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.live.writelog import WriteLog


def writes(*keys: bytes, table: str = "t", index: str = "by_id") -> WriteSet:
    ws = WriteSet()
    for key in keys:
        ws.add(table, index, key)
    return ws


def reads(start: bytes, end: bytes | None, table: str = "t", index: str = "by_id") -> ReadSet:
    rs = ReadSet()
    rs.record(table, index, Interval(start, end))
    return rs


def log_of(*commits: tuple[int, WriteSet], processed_ts: int = 0,
           max_entries: int = 10_000) -> WriteLog:
    log = WriteLog(processed_ts, max_entries)
    for ts, ws in commits:
        log.append(ts, ws)
    return log


# -- append ----------------------------------------------------------------------------------

def test_initial_state() -> None:
    log = WriteLog(5)
    assert log.processed_ts == 5
    assert log.floor == 5
    assert WriteLog().processed_ts == 0


def test_append_advances_processed_ts() -> None:
    log = WriteLog()
    log.append(3, writes(b"a"))
    log.append(7, WriteSet())  # an empty write set is still a commit
    assert log.processed_ts == 7
    assert log.floor == 0


@pytest.mark.parametrize("bad", [7, 6, 0, -1])
def test_append_rejects_non_increasing_ts(bad: int) -> None:
    log = log_of((3, writes(b"a")), (7, writes(b"b")))
    with pytest.raises(ValueError, match="not after 7"):
        log.append(bad, writes(b"c"))
    assert log.processed_ts == 7
    # The rejected commit was not recorded.
    assert log.refresh(reads(b"c", b"d"), 0) is None


def test_append_rejects_ts_at_or_below_the_start() -> None:
    log = WriteLog(10)
    with pytest.raises(ValueError):
        log.append(10, writes(b"a"))
    with pytest.raises(ValueError):
        log.append(9, writes(b"a"))
    log.append(11, writes(b"a"))
    assert log.processed_ts == 11


# -- refresh ---------------------------------------------------------------------------------

def test_refresh_returns_the_first_overlapping_commit() -> None:
    log = log_of((2, writes(b"x")), (4, writes(b"b")), (6, writes(b"c")), (8, writes(b"b")))
    rs = reads(b"a", b"d")
    assert log.refresh(rs, 0) == 4
    assert log.refresh(rs, 3) == 4
    assert log.refresh(rs, 4) == 6  # `since` itself is excluded
    assert log.refresh(rs, 6) == 8
    assert log.refresh(rs, 8) is None


def test_refresh_none_when_nothing_overlaps() -> None:
    log = log_of((2, writes(b"x")), (4, writes(b"d")), (6, writes(b"b", table="u")),
                 (8, writes(b"b", index="by_name")))
    assert log.refresh(reads(b"a", b"d"), 0) is None  # d is the excluded end
    assert log.refresh(ReadSet(), 0) is None
    assert log.refresh(reads(b"a", None), 0) == 2


def test_refresh_none_when_since_is_at_or_past_the_end() -> None:
    log = log_of((2, writes(b"b")), (4, writes(b"b")))
    rs = reads(b"a", b"c")
    assert log.refresh(rs, 4) is None
    assert log.refresh(rs, 100) is None
    assert log.refresh(rs, 1, upto=1) is None
    assert log.refresh(rs, 3, upto=2) is None
    assert WriteLog().refresh(rs, 0) is None


def test_refresh_upto_bounds_the_search() -> None:
    log = log_of((2, writes(b"x")), (4, writes(b"x")), (6, writes(b"b")), (8, writes(b"b")))
    rs = reads(b"a", b"c")
    assert log.refresh(rs, 0, upto=5) is None
    assert log.refresh(rs, 0, upto=6) == 6  # upto is inclusive
    assert log.refresh(rs, 0, upto=7) == 6
    assert log.refresh(rs, 6, upto=7) is None
    assert log.refresh(rs, 6, upto=8) == 8
    assert log.refresh(rs, 0, upto=1000) == 6  # clipped to processed_ts


def test_refresh_upto_beyond_processed_does_not_see_later_commits() -> None:
    log = log_of((2, writes(b"x")))
    rs = reads(b"a", b"c")
    assert log.refresh(rs, 0, upto=10) is None
    log.append(9, writes(b"b"))
    assert log.refresh(rs, 0, upto=10) == 9
    assert log.refresh(rs, 0, upto=8) is None


def test_refresh_against_a_model() -> None:
    rng = random.Random(3)
    for _ in range(200):
        commits: list[tuple[int, WriteSet, set[bytes]]] = []
        ts = 0
        log = WriteLog()
        for _ in range(rng.randrange(0, 12)):
            ts += rng.randrange(1, 4)
            keys = {bytes([rng.randrange(97, 105)]) for _ in range(rng.randrange(0, 3))}
            ws = writes(*keys)
            log.append(ts, ws)
            commits.append((ts, ws, keys))
        lo = bytes([rng.randrange(97, 105)])
        hi = None if rng.random() < 0.2 else bytes([rng.randrange(97, 106)])
        if hi is not None and hi < lo:
            lo, hi = hi, lo
        rs = reads(lo, hi)
        since = rng.randrange(0, ts + 2)
        upto = None if rng.random() < 0.5 else rng.randrange(0, ts + 3)
        end = ts if upto is None else min(upto, ts)
        expected = next(
            (c for c, _, keys in commits
             if since < c <= end and any(lo <= k and (hi is None or k < hi) for k in keys)),
            None,
        )
        assert log.refresh(rs, since, upto) == expected


# -- eviction --------------------------------------------------------------------------------

def test_eviction_raises_floor() -> None:
    log = log_of((2, writes(b"a")), (4, writes(b"a")), (6, writes(b"a")), max_entries=2)
    assert log.floor == 2
    assert log.processed_ts == 6
    log.append(8, writes(b"z"))
    assert log.floor == 4


def test_refresh_at_or_above_floor_is_exact_after_eviction() -> None:
    log = log_of((2, writes(b"b")), (4, writes(b"x")), (6, writes(b"b")), (8, writes(b"x")),
                 max_entries=2)
    assert log.floor == 4
    rs = reads(b"a", b"c")
    assert log.refresh(rs, 4) == 6
    assert log.refresh(rs, 5) == 6
    assert log.refresh(rs, 6) is None
    assert log.refresh(reads(b"y", b"z"), 4) is None


def test_refresh_below_floor_reports_a_conflict() -> None:
    # Commits 2 and 4 are evicted: nothing is known about them, so some conflict is reported
    # even for a read set that nothing retained touched.
    log = log_of((2, writes(b"x")), (4, writes(b"x")), (6, writes(b"x")), (8, writes(b"x")),
                 max_entries=2)
    assert log.floor == 4
    result = log.refresh(reads(b"a", b"c"), 1)
    assert result is not None
    assert result > 1


def test_refresh_below_floor_with_nothing_retained_reports_a_conflict() -> None:
    log = log_of((2, writes(b"x")), (4, writes(b"x")), max_entries=0)
    assert log.floor == 4
    assert log.refresh(reads(b"a", b"c"), 1) is not None


def test_refresh_below_floor_is_conservative() -> None:
    """BUG: below `floor` refresh answers the oldest *retained* commit (or floor + 1).

    That claims the result is still valid at every ts before that commit, including the
    evicted commits in (since, floor] whose writes are unknown. Here commit 4 (evicted)
    wrote inside the read set, so a result computed at 3 is invalid from 4 on; refresh
    returns 6, and a LiveQuery with ts=3, valid_until=6 is wrongly `usable_at(4)` and
    `usable_at(5)`. A conservative answer must be <= the first possibly-conflicting
    commit, i.e. since + 1 (anything in (since, floor] is unknown).
    """
    log = log_of((2, writes(b"x")), (4, writes(b"b")), (6, writes(b"x")), max_entries=1)
    assert log.floor == 4
    result = log.refresh(reads(b"a", b"c"), 3)
    assert result is not None
    assert result <= 4, f"refresh claims validity through {result - 1}, past evicted commit 4"


def test_refresh_below_floor_with_nothing_retained_is_conservative() -> None:
    """BUG: with the window empty refresh answers floor + 1 = processed_ts + 1.

    That says "valid through everything processed", the opposite of conservative.
    """
    log = log_of((2, writes(b"b")), (4, writes(b"b")), max_entries=0)
    result = log.refresh(reads(b"a", b"c"), 1)
    assert result is not None
    assert result <= 2


def test_refresh_below_floor_respects_upto() -> None:
    """BUG: the below-floor answer ignores `upto`: it can name a commit after `upto`."""
    log = log_of((2, writes(b"x")), (4, writes(b"b")), (6, writes(b"x")), max_entries=1)
    result = log.refresh(reads(b"a", b"c"), 1, upto=5)
    assert result is not None
    assert 1 < result <= 5
