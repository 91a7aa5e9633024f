"""intervals.py: half-open byte intervals and merged interval sets."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.engine.intervals import Interval, IntervalSet

# Short keys over a tiny alphabet: every key of length <= 3 can be checked exhaustively.
ALPHABET = [b"\x00", b"\x01", b"\x7f", b"\xff"]
SAMPLE_KEYS = sorted(
    {b"".join(p) for n in range(4) for p in itertools.product(ALPHABET, repeat=n)}
)

keys = st.lists(st.sampled_from(ALPHABET), max_size=3).map(b"".join)


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    a, b = draw(keys), draw(keys)
    if draw(st.integers(0, 9)) == 0:
        return Interval(min(a, b), None)
    return Interval(min(a, b), max(a, b))


def check_invariant(s: IntervalSet) -> None:
    parts = list(s)
    for i, part in enumerate(parts):
        assert not part.is_empty
        if part.end is None:
            assert i == len(parts) - 1
    for left, right in itertools.pairwise(parts):
        assert left.end is not None
        assert left.end < right.start  # disjoint and not even adjacent: they would merge


# -- Interval --------------------------------------------------------------------------


def test_interval_is_half_open() -> None:
    i = Interval(b"b", b"d")
    assert not i.contains(b"a")
    assert i.contains(b"b")
    assert i.contains(b"c\xff\xff")
    assert not i.contains(b"d")
    assert not i.is_empty


def test_unbounded_interval() -> None:
    i = Interval(b"b", None)
    assert i.contains(b"\xff" * 10)
    assert not i.contains(b"a")
    assert Interval.all().contains(b"")
    assert Interval.all() == Interval(b"", None)


def test_empty_interval_contains_nothing() -> None:
    i = Interval(b"b", b"b")
    assert i.is_empty
    assert not any(i.contains(k) for k in [*SAMPLE_KEYS, b"b"])


def test_interval_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match=r"interval end b'a' is before its start b'b'"):
        Interval(b"b", b"a")


@pytest.mark.parametrize("key", [b"", b"\x00", b"abc", b"\xff\xff"])
def test_point_contains_exactly_its_key(key: bytes) -> None:
    point = Interval.point(key)
    assert point.contains(key)
    assert not point.is_empty
    for other in [*SAMPLE_KEYS, key + b"\x00", key + b"\x00\x00", key + b"\x01", key[:-1]]:
        assert point.contains(other) == (other == key), other


def test_interval_repr() -> None:
    assert repr(Interval(b"\x01", b"\xff")) == "[01, ff)"
    assert repr(Interval(b"", None)) == "[, inf)"


# -- IntervalSet -----------------------------------------------------------------------


def test_empty_set() -> None:
    s = IntervalSet()
    assert len(s) == 0
    assert not s.contains(b"")
    assert list(s) == []


def test_overlapping_and_adjacent_intervals_merge() -> None:
    s = IntervalSet([Interval(b"a", b"c"), Interval(b"b", b"d")])
    assert list(s) == [Interval(b"a", b"d")]
    s.add(Interval(b"d", b"e"))  # adjacent: [a, d) + [d, e) = [a, e)
    assert list(s) == [Interval(b"a", b"e")]


def test_disjoint_intervals_stay_apart_and_sorted() -> None:
    s = IntervalSet([Interval(b"x", b"y"), Interval(b"a", b"b"), Interval(b"m", b"n")])
    assert list(s) == [Interval(b"a", b"b"), Interval(b"m", b"n"), Interval(b"x", b"y")]
    assert s.contains(b"m")
    assert not s.contains(b"n")
    assert not s.contains(b"c")


def test_one_interval_bridging_many() -> None:
    s = IntervalSet([Interval(b"b", b"c"), Interval(b"e", b"f"), Interval(b"h", b"i")])
    s.add(Interval(b"a", b"g"))
    assert list(s) == [Interval(b"a", b"g"), Interval(b"h", b"i")]


def test_contained_interval_changes_nothing() -> None:
    s = IntervalSet([Interval(b"a", b"z")])
    s.add(Interval(b"c", b"d"))
    assert list(s) == [Interval(b"a", b"z")]


def test_unbounded_absorbs_everything_after() -> None:
    s = IntervalSet([Interval(b"b", b"c"), Interval(b"x", b"y")])
    s.add(Interval(b"c", None))
    assert list(s) == [Interval(b"b", None)]
    s.add(Interval(b"a", b"b"))
    assert list(s) == [Interval(b"a", None)]


def test_unbounded_before_others() -> None:
    s = IntervalSet([Interval(b"m", None)])
    s.add(Interval(b"p", b"q"))
    assert list(s) == [Interval(b"m", None)]
    s.add(Interval(b"a", b"b"))
    assert list(s) == [Interval(b"a", b"b"), Interval(b"m", None)]


def test_empty_intervals_are_ignored() -> None:
    s = IntervalSet([Interval(b"a", b"a")])
    assert len(s) == 0
    s.add(Interval(b"a", b"c"))
    s.add(Interval(b"z", b"z"))
    assert list(s) == [Interval(b"a", b"c")]


def test_points_merge_with_their_neighbours() -> None:
    s = IntervalSet([Interval.point(b"a"), Interval(b"a\x00", b"b")])
    assert list(s) == [Interval(b"a", b"b")]


def test_equality_and_repr() -> None:
    one = IntervalSet([Interval(b"a", b"b"), Interval(b"b", b"c")])
    two = IntervalSet([Interval(b"a", b"c")])
    assert one == two
    assert one != IntervalSet()
    assert one != [Interval(b"a", b"c")]
    assert repr(two) == "IntervalSet([61, 63))"


@settings(max_examples=300, deadline=None)
@given(st.lists(intervals(), max_size=8))
def test_set_contains_exactly_the_union(parts: list[Interval]) -> None:
    s = IntervalSet(parts)
    check_invariant(s)
    for key in SAMPLE_KEYS:
        assert s.contains(key) == any(p.contains(key) for p in parts), key
    # the stored intervals cover the same keys as the inputs
    for key in SAMPLE_KEYS:
        assert any(p.contains(key) for p in s) == s.contains(key)


@settings(max_examples=200, deadline=None)
@given(st.lists(intervals(), max_size=8), st.randoms(use_true_random=False))
def test_insertion_order_does_not_matter(parts: list[Interval], rnd: random.Random) -> None:
    shuffled = list(parts)
    rnd.shuffle(shuffled)
    assert IntervalSet(parts) == IntervalSet(shuffled)
    assert IntervalSet(parts) == IntervalSet(list(IntervalSet(parts)))
