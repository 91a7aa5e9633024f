"""interval_index.py: stabbing queries checked against a brute-force multiset model."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.live import interval_index
from reactive_store.live.interval_index import IntervalIndex

Span = tuple[bytes, bytes | None]


class Model:
    """The obvious implementation: a multiset of (entry, start, end)."""

    def __init__(self) -> None:
        self.items: Counter[tuple[str, bytes, bytes | None]] = Counter()

    def add(self, entry: str, start: bytes, end: bytes | None) -> None:
        if end is not None and end <= start:
            return
        self.items[(entry, start, end)] += 1

    def remove(self, entry: str, start: bytes, end: bytes | None) -> None:
        if self.items[(entry, start, end)] > 0:
            self.items[(entry, start, end)] -= 1
            if not self.items[(entry, start, end)]:
                del self.items[(entry, start, end)]

    def remove_entry(self, entry: str) -> None:
        for key in [k for k in self.items if k[0] == entry]:
            del self.items[key]

    def stab(self, key: bytes) -> set[str]:
        return {e for (e, s, end) in self.items if s <= key and (end is None or key < end)}

    def __len__(self) -> int:
        return sum(self.items.values())


ALPHABET = [b"", b"a", b"a\x00", b"ab", b"b", b"ba", b"c", b"cc", b"d", b"e", b"f", b"g"]
PROBES = [*ALPHABET, b"\x00", b"aa", b"bz", b"ca", b"dd", b"zz", b"\xff\xff"]
ENTRIES = ["p", "q", "r", "s"]


def random_span(rng: random.Random) -> Span:
    start = rng.choice(ALPHABET)
    roll = rng.random()
    if roll < 0.15:
        return start, None
    if roll < 0.25:
        return start, start  # empty
    return start, rng.choice(ALPHABET)  # sometimes end < start: also empty


def check(index: IntervalIndex[str], model: Model) -> None:
    assert len(index) == len(model)
    for key in PROBES:
        assert index.stab(key) == model.stab(key), key
    rng = random.Random(len(model))
    for _ in range(3):
        keys = rng.sample(PROBES, 4)
        expected: set[str] = set().union(*(model.stab(k) for k in keys))
        assert index.stab_many(keys) == expected


def run_random(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    index: IntervalIndex[str] = IntervalIndex()
    model = Model()
    live: list[tuple[str, bytes, bytes | None]] = []
    for _ in range(steps):
        roll = rng.random()
        entry = rng.choice(ENTRIES)
        if roll < 0.5 or not live:
            start, end = random_span(rng)
            index.add(entry, start, end)
            model.add(entry, start, end)
            live.append((entry, start, end))
        elif roll < 0.6 and live:
            # Re-add an interval that is (probably) already there: a duplicate.
            e, s, end = rng.choice(live)
            index.add(e, s, end)
            model.add(e, s, end)
            live.append((e, s, end))
        elif roll < 0.9:
            e, s, end = live.pop(rng.randrange(len(live)))
            index.remove(e, s, end)
            model.remove(e, s, end)
        elif roll < 0.95:
            start, end = random_span(rng)  # probably never added: a no-op
            index.remove(entry, start, end)
            model.remove(entry, start, end)
        else:
            index.remove_entry(entry)
            model.remove_entry(entry)
            live = [x for x in live if x[0] != entry]
        check(index, model)


@pytest.mark.parametrize("seed", range(40))
def test_random_sequences_match_the_model(seed: int) -> None:
    run_random(seed, 120)


@pytest.mark.parametrize("seed", range(25))
def test_random_sequences_match_the_model_on_the_wide_path(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interval_index, "_WIDE_SEGMENTS", 2)
    run_random(1000 + seed, 120)


@pytest.mark.parametrize("seed", range(10))
def test_random_sequences_with_everything_wide(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interval_index, "_WIDE_SEGMENTS", 0)
    run_random(2000 + seed, 120)


span_st = st.tuples(st.sampled_from(ALPHABET), st.one_of(st.none(), st.sampled_from(ALPHABET)))
op_st = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(ENTRIES), span_st),
    st.tuples(st.just("remove"), st.sampled_from(ENTRIES), span_st),
    st.tuples(st.just("remove_entry"), st.sampled_from(ENTRIES), st.just((b"", None))),
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(op_st, max_size=40), wide=st.sampled_from([64, 3, 0]))
def test_hypothesis_sequences_match_the_model(
    ops: list[tuple[str, str, Span]], wide: int
) -> None:
    saved = interval_index._WIDE_SEGMENTS
    interval_index._WIDE_SEGMENTS = wide
    try:
        index: IntervalIndex[str] = IntervalIndex()
        model = Model()
        for op, entry, (start, end) in ops:
            if op == "add":
                index.add(entry, start, end)
                model.add(entry, start, end)
            elif op == "remove":
                index.remove(entry, start, end)
                model.remove(entry, start, end)
            else:
                index.remove_entry(entry)
                model.remove_entry(entry)
            check(index, model)
    finally:
        interval_index._WIDE_SEGMENTS = saved


def test_empty_index() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    assert len(index) == 0
    assert index.stab(b"") == set()
    assert index.stab(b"x") == set()
    assert index.stab_many([]) == set()
    assert index.stab_many([b"a", b"b"]) == set()
    index.remove("p", b"a", b"b")  # removing what is not there is a no-op
    index.remove_entry("p")
    assert len(index) == 0


def test_half_open_bounds() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("p", b"b", b"d")
    assert index.stab(b"a") == set()
    assert index.stab(b"b") == {"p"}
    assert index.stab(b"c\xff") == {"p"}
    assert index.stab(b"d") == set()
    assert index.stab(b"e") == set()


def test_duplicate_add_needs_two_removes() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("p", b"a", b"c")
    index.add("p", b"a", b"c")
    assert len(index) == 2
    index.remove("p", b"a", b"c")
    assert len(index) == 1
    assert index.stab(b"b") == {"p"}
    index.remove("p", b"a", b"c")
    assert len(index) == 0
    assert index.stab(b"b") == set()
    index.remove("p", b"a", b"c")  # a third remove does nothing
    assert len(index) == 0


def test_overlapping_intervals_of_one_entry() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("p", b"a", b"e")
    index.add("p", b"c", b"g")
    index.add("p", b"d", None)
    index.add("q", b"b", b"d")
    index.remove("p", b"a", b"e")
    assert index.stab(b"b") == {"q"}
    assert index.stab(b"c") == {"p", "q"}  # still covered by [c, g)
    assert index.stab(b"f") == {"p"}
    assert index.stab(b"z") == {"p"}  # [d, inf)
    index.remove("p", b"d", None)
    assert index.stab(b"f") == {"p"}
    assert index.stab(b"z") == set()
    index.remove("p", b"c", b"g")
    assert index.stab_many([b"a", b"c", b"f", b"z"]) == {"q"}
    assert len(index) == 1


def test_nested_intervals_of_one_entry() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("p", b"c", b"d")
    index.add("p", b"a", b"z")
    index.remove("p", b"c", b"d")
    assert index.stab(b"c") == {"p"}  # the outer one still covers it
    index.add("p", b"c", b"d")
    index.remove("p", b"a", b"z")
    assert index.stab(b"c") == {"p"}
    assert index.stab(b"b") == set()
    assert index.stab(b"e") == set()


def test_unbounded_ends() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("all", b"", None)
    index.add("tail", b"m", None)
    assert index.stab(b"") == {"all"}
    assert index.stab(b"\xff" * 10) == {"all", "tail"}
    assert index.stab(b"m") == {"all", "tail"}
    assert index.stab(b"l\xff") == {"all"}
    index.remove("all", b"", None)
    assert index.stab(b"a") == set()
    assert index.stab(b"z") == {"tail"}


def test_empty_intervals_are_ignored() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("p", b"c", b"c")
    index.add("p", b"d", b"b")
    assert len(index) == 0
    assert index.stab(b"c") == set()
    assert index.stab_many([b"b", b"c", b"d"]) == set()
    index.remove("p", b"c", b"c")  # and removing one changes nothing
    index.add("q", b"a", b"z")
    index.remove("q", b"c", b"c")
    assert len(index) == 1
    assert index.stab(b"c") == {"q"}


def test_remove_entry_removes_every_interval_and_every_copy() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    for _ in range(3):
        index.add("p", b"a", b"c")
    index.add("p", b"x", None)
    index.add("q", b"b", b"y")
    assert len(index) == 5
    index.remove_entry("p")
    assert len(index) == 1
    assert index.stab_many([b"a", b"b", b"x", b"z"]) == {"q"}
    index.remove_entry("p")  # again: nothing left
    index.remove_entry("nobody")
    assert len(index) == 1


def test_wide_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interval_index, "_WIDE_SEGMENTS", 2)
    index: IntervalIndex[str] = IntervalIndex()
    for i in range(10):
        index.add(f"point{i}", bytes([65 + i]), bytes([65 + i, 0]))
    index.add("scan", b"", None)
    index.add("range", b"B", b"H")
    assert index._wide  # the wide path is in use
    assert index.stab(b"C") == {"point2", "scan", "range"}
    assert index.stab(b"H") == {"point7", "scan"}
    assert index.stab_many([b"A", b"G"]) == {"point0", "point6", "scan", "range"}
    index.add("scan", b"", None)  # a duplicate of a wide interval
    index.remove("scan", b"", None)
    assert "scan" in index.stab(b"Z")
    index.remove("scan", b"", None)
    assert "scan" not in index.stab(b"Z")
    index.remove_entry("range")
    assert index.stab(b"C") == {"point2"}
    assert len(index) == 10


def test_entry_with_wide_and_narrow_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interval_index, "_WIDE_SEGMENTS", 2)
    index: IntervalIndex[str] = IntervalIndex()
    for i in range(6):
        index.add("other", bytes([97 + i]), bytes([97 + i, 0]))
    index.add("p", b"a", None)  # wide
    index.add("p", b"b", b"c")  # narrow, inside the wide one
    assert index.stab(b"b") == {"p", "other"}
    index.remove("p", b"b", b"c")
    assert "p" in index.stab(b"b")  # the wide one still holds
    index.add("p", b"b", b"c")
    index.remove("p", b"a", None)
    assert "p" in index.stab(b"b")
    assert "p" not in index.stab(b"e")


def test_compaction_keeps_results_and_length(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    index: IntervalIndex[int] = IntervalIndex()
    model = Model()
    keep = [(i, bytes([i]), bytes([i, 5])) for i in range(0, 250, 10)]
    for entry, s, e in keep:
        index.add(entry, s, e)
        model.add(str(entry), s, e)
    compactions = 0
    original = IntervalIndex._compact

    def counting(self: IntervalIndex[int]) -> None:
        nonlocal compactions
        compactions += 1
        original(self)

    monkeypatch.setattr(IntervalIndex, "_compact", counting)
    for cycle in range(60):
        batch = []
        for _ in range(20):
            s = bytes([rng.randrange(256), rng.randrange(256)])
            e = None if rng.random() < 0.1 else s + bytes([rng.randrange(1, 256)])
            entry = 1000 + rng.randrange(50)
            batch.append((entry, s, e))
            index.add(entry, s, e)
        assert len(index) == len(keep) + 20
        for entry, s, e in batch:
            index.remove(entry, s, e)
        assert len(index) == len(keep), cycle
    assert compactions > 0
    # Dead boundaries were dropped: only the kept intervals' bounds remain (plus few).
    assert len(index._bounds) <= 2 * len(keep) + 2 * 20 * 2 + 64
    for probe in [bytes([i]) for i in range(256)] + [bytes([i, 3]) for i in range(256)]:
        assert {str(e) for e in index.stab(probe)} == model.stab(probe)
    assert len(index) == len(keep)


def test_compaction_keeps_duplicates_and_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interval_index, "_WIDE_SEGMENTS", 4)
    index: IntervalIndex[str] = IntervalIndex()
    model = Model()
    for _ in range(3):
        index.add("dup", b"k", b"m")
        model.add("dup", b"k", b"m")
    index.add("scan", b"", None)
    model.add("scan", b"", None)
    for i in range(400):  # far past the compaction threshold
        key = i.to_bytes(2, "big")
        index.add("tmp", key, key + b"\x00")
        index.add("tmp", b"", key)
        index.remove("tmp", key, key + b"\x00")
        index.remove("tmp", b"", key)
        if i % 50 == 0:
            check(index, model)
    check(index, model)
    index.remove("dup", b"k", b"m")
    model.remove("dup", b"k", b"m")
    check(index, model)
    assert len(index) == 3
    index.remove_entry("dup")
    model.remove_entry("dup")
    check(index, model)
    assert index.stab(b"l") == {"scan"}


def test_stab_many_accepts_any_iterable() -> None:
    index: IntervalIndex[str] = IntervalIndex()
    index.add("p", b"a", b"b")
    index.add("q", b"c", None)
    assert index.stab_many(iter([b"a", b"d"])) == {"p", "q"}
    assert index.stab_many({b"b"}) == set()
    assert index.stab_many(k for k in [b"c"]) == {"q"}
