"""readset.py: read sets (intervals read) against write sets (keys written), and their text form."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.engine.intervals import Interval, IntervalSet
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.keys import encode_tuple, prefix_end


def writes(*items: tuple[str, str, bytes]) -> WriteSet:
    ws = WriteSet()
    for table, index, key in items:
        ws.add(table, index, key)
    return ws


def test_empty_sets() -> None:
    assert not WriteSet()
    assert not ReadSet().overlaps(WriteSet())
    assert not ReadSet().overlaps(writes(("t", "by_id", b"k")))
    assert ReadSet().interval_count() == 0
    assert list(ReadSet()) == []


def test_overlap_requires_the_same_table_and_index() -> None:
    reads = ReadSet()
    reads.record("users", "by_name", Interval(b"a", b"m"))
    assert reads.overlaps(writes(("users", "by_name", b"c")))
    assert not reads.overlaps(writes(("users", "by_age", b"c")))
    assert not reads.overlaps(writes(("posts", "by_name", b"c")))


def test_overlap_respects_half_open_bounds() -> None:
    reads = ReadSet()
    reads.record("t", "i", Interval(b"b", b"d"))
    assert reads.overlaps(writes(("t", "i", b"b")))
    assert not reads.overlaps(writes(("t", "i", b"d")))
    assert not reads.overlaps(writes(("t", "i", b"a"), ("t", "i", b"d"), ("t", "i", b"z")))
    assert reads.overlaps(writes(("t", "i", b"a"), ("t", "i", b"c")))


def test_point_reads() -> None:
    key = encode_tuple(["some-id"])
    reads = ReadSet()
    reads.record("t", "by_id", Interval.point(key))
    assert reads.overlaps(writes(("t", "by_id", key)))
    assert not reads.overlaps(writes(("t", "by_id", encode_tuple(["some-id2"]))))
    assert not reads.overlaps(writes(("t", "by_id", encode_tuple(["some-i"]))))


def test_eq_range_read_sees_inserts_moves_and_deletes() -> None:
    prefix = encode_tuple(["alice"])
    reads = ReadSet()
    reads.record("accounts", "by_owner", Interval(prefix, prefix_end(prefix)))
    inside = encode_tuple(["alice", 1.0, "id1"])
    outside = encode_tuple(["bob", 1.0, "id1"])
    assert reads.overlaps(writes(("accounts", "by_owner", inside)))  # insert / delete
    assert reads.overlaps(writes(("accounts", "by_owner", outside), ("accounts", "by_owner",
                                                                      inside)))  # move
    assert not reads.overlaps(writes(("accounts", "by_owner", outside)))
    assert not reads.overlaps(
        writes(("accounts", "by_owner", encode_tuple(["alice\x00", 1.0, "id1"])))
    )


def test_unbounded_read() -> None:
    reads = ReadSet()
    reads.record("t", "by_creation_time", Interval.all())
    assert reads.overlaps(writes(("t", "by_creation_time", b"\xff\xff")))


def test_record_merges_per_index() -> None:
    reads = ReadSet()
    reads.record("t", "i", Interval(b"a", b"c"))
    reads.record("t", "i", Interval(b"b", b"d"))
    reads.record("t", "j", Interval(b"a", b"b"))
    reads.record("u", "i", Interval(b"x", b"y"))
    assert reads.interval_count() == 3
    assert reads.intervals[("t", "i")] == IntervalSet([Interval(b"a", b"d")])
    assert sorted(reads) == [
        (("t", "i"), Interval(b"a", b"d")),
        (("t", "j"), Interval(b"a", b"b")),
        (("u", "i"), Interval(b"x", b"y")),
    ]


def test_write_set_collects_keys() -> None:
    ws = writes(("t", "i", b"a"), ("t", "i", b"a"), ("t", "i", b"b"), ("t", "j", b"a"))
    assert ws
    assert ws.keys == {("t", "i"): {b"a", b"b"}, ("t", "j"): {b"a"}}


def test_write_set_text_form() -> None:
    ws = writes(("t", "i", b"\x01"), ("t", "i", b"\x00\xff"), ("u", "by_id", b""))
    text = ws.to_text()
    assert orjson.loads(text) == [["t", "i", ["AP8=", "AQ=="]], ["u", "by_id", [""]]]
    assert WriteSet.from_text(text).keys == ws.keys
    assert WriteSet().to_text() == "[]"
    assert not WriteSet.from_text("[]")


names = st.text(min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, names, st.binary(max_size=12)), max_size=12))
def test_write_set_text_round_trip(items: list[tuple[str, str, bytes]]) -> None:
    ws = writes(*items)
    back = WriteSet.from_text(ws.to_text())
    assert back.keys == ws.keys
    assert back.to_text() == ws.to_text()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=3), st.binary(max_size=3)), max_size=5),
    st.lists(st.binary(max_size=3), max_size=5),
)
def test_overlaps_is_any_written_key_in_any_read_interval(
    bounds: list[tuple[bytes, bytes]], keys: list[bytes]
) -> None:
    parts = [Interval(min(a, b), max(a, b)) for a, b in bounds]
    reads = ReadSet()
    for part in parts:
        reads.record("t", "i", part)
    ws = writes(*[("t", "i", k) for k in keys])
    expected = any(p.contains(k) for p in parts for k in keys)
    assert reads.overlaps(ws) == expected
    assert reads.overlaps(WriteSet.from_text(ws.to_text())) == expected
