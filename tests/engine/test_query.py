"""query.py (pure parts): IndexRange.interval() byte ranges and ScanRecord.consumed().

An index over fields (a, b) has keys encode_tuple([a, b, _creationTime, _id]); a range must
select exactly the keys whose fields satisfy it, whatever trails them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest

from reactive_store.engine.intervals import Interval
from reactive_store.engine.query import IndexRange, ScanRecord
from reactive_store.errors import QueryError
from reactive_store.keys import MISSING, encode_tuple, successor
from reactive_store.schema import Index

INDEX = Index("by_ab", ("a", "b"))

# Values in ascending Convex order: a value's position is its rank.
POOL: list[Any] = [
    MISSING,
    None,
    -(2**63),
    -1,
    0,
    1,
    2**63 - 1,
    -math.inf,
    -1.5,
    -0.0,
    0.0,
    2.5,
    math.inf,
    math.nan,
    False,
    True,
    "",
    "\x00",
    "a",
    "a\x00",
    "a\x00b",
    "ab",
    "b",
    "\xff",
    b"",
    b"\x00",
    b"\x00\xff",
    b"\xff",
    [],
    ["a"],
    ["a", 1],
    ["a\x00"],
    {},
    {"a": 1},
    {"b": None},
]
RANKS = range(len(POOL))
# What may follow the range fields in a key: _creationTime and _id (and, for a range on
# `a`, any `b`).
TRAILERS: list[tuple[float, str]] = [(0.0, ""), (1.7e12, "k8x0"), (-1.0, "\x00")]
A_SAMPLE = [0, 1, 5, 13, 17, 18, 19, 25, 29]  # ranks used for `a` when `b` is the range field


def key(a: Any, b: Any, ct: float = 1.0, doc_id: str = "id") -> bytes:
    return encode_tuple([a, b, ct, doc_id])


def q() -> IndexRange:
    return IndexRange(INDEX, lambda field, value: value)


def inside(bounds: tuple[bytes, bytes | None], k: bytes) -> bool:
    lo, hi = bounds
    return lo <= k and (hi is None or k < hi)


def test_keys_of_the_pool_are_in_rank_order() -> None:
    keys = [key(v, None) for v in POOL]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_no_range_is_everything() -> None:
    assert q().interval() == (b"", None)


# -- eq --------------------------------------------------------------------------------


@pytest.mark.parametrize("i", RANKS)
def test_eq_on_first_field_selects_exactly_that_value(i: int) -> None:
    bounds = q().eq("a", POOL[i]).interval()
    for x, y in itertools.product(RANKS, A_SAMPLE):
        for ct, doc_id in TRAILERS:
            k = key(POOL[x], POOL[y], ct, doc_id)
            assert inside(bounds, k) == (x == i), (POOL[i], POOL[x], POOL[y])


@pytest.mark.parametrize("i", A_SAMPLE)
@pytest.mark.parametrize("j", RANKS)
def test_eq_on_two_fields(i: int, j: int) -> None:
    bounds = q().eq("a", POOL[i]).eq("b", POOL[j]).interval()
    for x, y in itertools.product(A_SAMPLE, RANKS):
        k = key(POOL[x], POOL[y])
        assert inside(bounds, k) == (x == i and y == j), (POOL[x], POOL[y])


def test_eq_on_every_key_field() -> None:
    bounds = q().eq("a", "x").eq("b", 1).eq("_creationTime", 5.0).interval()
    assert inside(bounds, key("x", 1, 5.0, "any-id"))
    assert inside(bounds, key("x", 1, 5.0, ""))
    assert not inside(bounds, key("x", 1, 5.5, "any-id"))
    assert not inside(bounds, key("x", 1, -0.0, "any-id"))


# -- one-sided ranges ------------------------------------------------------------------

OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda x, j: x > j,
    "gte": lambda x, j: x >= j,
    "lt": lambda x, j: x < j,
    "lte": lambda x, j: x <= j,
}


def apply(r: IndexRange, op: str, field: str, value: Any) -> IndexRange:
    method: Callable[[str, Any], IndexRange] = getattr(r, op)
    return method(field, value)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("j", RANKS)
def test_range_on_first_field(op: str, j: int) -> None:
    bounds = apply(q(), op, "a", POOL[j]).interval()
    for x, y in itertools.product(RANKS, A_SAMPLE):
        for ct, doc_id in TRAILERS:
            k = key(POOL[x], POOL[y], ct, doc_id)
            assert inside(bounds, k) == OPS[op](x, j), (op, POOL[j], POOL[x], POOL[y])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("j", RANKS)
def test_range_after_an_eq_prefix(op: str, j: int) -> None:
    for i in [1, 18, 29]:
        bounds = apply(q().eq("a", POOL[i]), op, "b", POOL[j]).interval()
        for x, y in itertools.product([0, 1, 17, 18, 19, 29, 30], RANKS):
            k = key(POOL[x], POOL[y], *TRAILERS[x % 3])
            expected = x == i and OPS[op](y, j)
            assert inside(bounds, k) == expected, (op, POOL[i], POOL[j], POOL[x], POOL[y])


@pytest.mark.parametrize("op", OPS)
def test_range_on_creation_time(op: str) -> None:
    times = [-math.inf, -1.0, -0.0, 0.0, 1.0, 1.7e12, math.inf]
    for j, bound in enumerate(times):
        bounds = apply(q().eq("a", "x").eq("b", None), op, "_creationTime", bound).interval()
        for x, ct in enumerate(times):
            for doc_id in ["", "a", "zzzz"]:
                assert inside(bounds, key("x", None, ct, doc_id)) == OPS[op](x, j)
                assert not inside(bounds, key("x", False, ct, doc_id))
                assert not inside(bounds, key("x\x00", None, ct, doc_id))


# -- two-sided ranges ------------------------------------------------------------------


# Ranks of values that sit next to each other in tricky ways (prefixes, -0/0, NaN, types).
TWO_SIDED = [0, 1, 4, 6, 7, 9, 10, 13, 14, 16, 17, 18, 19, 20, 21, 24, 25, 28, 29, 30, 31, 34]


@pytest.mark.parametrize("lower", ["gt", "gte"])
@pytest.mark.parametrize("upper", ["lt", "lte"])
def test_two_sided_ranges(lower: str, upper: str) -> None:
    for j1, j2 in itertools.product(TWO_SIDED, TWO_SIDED):
        steps = [(lower, j1), (upper, j2)]
        if (j1 + j2) % 2:
            steps.reverse()  # the order the bounds are given in does not matter
        r = q().eq("a", "a")
        for op, j in steps:
            r = apply(r, op, "b", POOL[j])
        bounds = r.interval()
        for x, y in itertools.product([18, 19], RANKS):
            expected = x == 18 and OPS[lower](y, j1) and OPS[upper](y, j2)
            assert inside(bounds, key(POOL[x], POOL[y])) == expected, (POOL[j1], POOL[j2], y)


def test_interval_bytes_for_a_simple_case() -> None:
    prefix = encode_tuple(["x"])
    assert q().eq("a", "x").interval() == (prefix, prefix + b"\xff")
    lo, hi = q().eq("a", "x").gte("b", 1).lt("b", 5).interval()
    assert lo == encode_tuple(["x", 1])
    assert hi == encode_tuple(["x", 5])
    lo, hi = q().gt("a", 1).interval()
    assert lo == encode_tuple([1]) + b"\xff"
    assert hi is None
    lo, hi = q().lte("a", 1).interval()
    assert lo == b""
    assert hi == encode_tuple([1]) + b"\xff"


def test_coerce_is_applied_to_every_value() -> None:
    seen: list[tuple[str, Any]] = []

    def coerce(field: str, value: Any) -> Any:
        seen.append((field, value))
        return float(value) if field == "b" else value

    lo, hi = IndexRange(INDEX, coerce).eq("a", 1).gt("b", 2).lte("b", 3).interval()
    assert seen == [("a", 1), ("b", 2), ("b", 3)]
    assert lo == encode_tuple([1, 2.0]) + b"\xff"
    assert hi == encode_tuple([1, 3.0]) + b"\xff"


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 2**64])
@pytest.mark.parametrize("op", ["eq", "gt", "lte"])
def test_out_of_range_int_is_a_query_error(n: int, op: str) -> None:
    """An int outside int64 must not alias an int64's key (2**63 would match -2**63)."""
    r = apply(q(), op, "a", n)
    with pytest.raises(QueryError) as info:
        r.interval()
    assert info.value.message == f"index 'by_ab': integer {n} does not fit in int64"


def test_unencodable_value_is_a_query_error() -> None:
    with pytest.raises(QueryError, match=r"^index 'by_ab': cannot encode set in an index key$"):
        q().eq("a", {1}).interval()


# -- misuse ----------------------------------------------------------------------------


def misuse(build: Callable[[IndexRange], Any], message: str) -> None:
    with pytest.raises(QueryError) as info:
        build(q())
    assert "'by_ab'" in info.value.message
    assert info.value.message == message
    assert info.value.code == "QueryError"


def test_skipping_a_field() -> None:
    misuse(
        lambda r: r.eq("b", 1),
        "index 'by_ab' over ['a', 'b', '_creationTime']: eq('b') must name the next field "
        "in order, 'a'",
    )
    misuse(
        lambda r: r.gt("b", 1),
        "index 'by_ab' over ['a', 'b', '_creationTime']: gt('b') must name the next field "
        "in order, 'a'",
    )
    misuse(
        lambda r: r.eq("a", 1).lte("_creationTime", 1.0),
        "index 'by_ab' over ['a', 'b', '_creationTime']: lte('_creationTime') must name the "
        "next field in order, 'b'",
    )


def test_repeating_an_eq_field() -> None:
    misuse(
        lambda r: r.eq("a", 1).eq("a", 2),
        "index 'by_ab' over ['a', 'b', '_creationTime']: eq('a') must name the next field "
        "in order, 'b'",
    )


def test_unknown_field() -> None:
    misuse(
        lambda r: r.eq("nope", 1),
        "index 'by_ab' over ['a', 'b', '_creationTime']: eq('nope') must name the next field "
        "in order, 'a'",
    )


def test_past_the_last_field() -> None:
    misuse(
        lambda r: r.eq("a", 1).eq("b", 2).eq("_creationTime", 3.0).eq("_id", "x"),
        "index 'by_ab' over ['a', 'b', '_creationTime']: eq('_id') must name the next field "
        "in order, 'nothing more'",
    )


def test_eq_after_a_range() -> None:
    misuse(
        lambda r: r.gt("a", 1).eq("b", 2),
        "index 'by_ab': eq('b') after a range on 'a'; only one range, on the field after "
        "the equalities",
    )
    misuse(
        lambda r: r.gte("a", 1).eq("a", 2),
        "index 'by_ab': eq('a') after a range on 'a'; only one range, on the field after "
        "the equalities",
    )


def test_range_on_another_field_after_a_range() -> None:
    misuse(
        lambda r: r.gt("a", 1).lt("b", 2),
        "index 'by_ab': lt('b') after a range on 'a'; only one range, on the field after "
        "the equalities",
    )


@pytest.mark.parametrize(
    ("first", "second", "side"),
    [("gt", "gte", "lower"), ("gte", "gt", "lower"), ("gt", "gt", "lower"),
     ("lt", "lte", "upper"), ("lte", "lt", "upper"), ("lte", "lte", "upper")],
)
def test_two_bounds_on_one_side(first: str, second: str, side: str) -> None:
    misuse(
        lambda r: apply(apply(r.eq("a", 0), first, "b", 1), second, "b", 2),
        f"index 'by_ab': two {side} bounds on 'b'",
    )


def test_by_creation_time_index() -> None:
    index = Index("by_creation_time", ())
    assert index.key_fields == ("_creationTime",)
    lo, hi = IndexRange(index, lambda f, v: v).gte("_creationTime", 10.0).interval()
    assert lo == encode_tuple([10.0])
    assert hi is None
    with pytest.raises(QueryError, match="'by_creation_time'"):
        IndexRange(index, lambda f, v: v).eq("a", 1)


# -- ScanRecord.consumed ---------------------------------------------------------------


def test_consumed_nothing_yet() -> None:
    assert ScanRecord("t", "i", b"a", b"z", desc=False).consumed() is None
    assert ScanRecord("t", "i", b"a", None, desc=True).consumed() is None


def test_consumed_ascending_stops_at_last_key() -> None:
    record = ScanRecord("t", "i", b"a", b"z", desc=False, last_key=b"m")
    assert record.consumed() == Interval(b"a", successor(b"m"))


def test_consumed_descending_starts_at_last_key() -> None:
    record = ScanRecord("t", "i", b"a", None, desc=True, last_key=b"m")
    assert record.consumed() == Interval(b"m", None)


def test_consumed_exhausted_is_the_whole_range() -> None:
    record = ScanRecord("t", "i", b"a", b"z", desc=False, last_key=b"m", exhausted=True)
    assert record.consumed() == Interval(b"a", b"z")


@pytest.mark.parametrize(
    "build",
    [
        lambda r: r.eq("a", 0).gt("b", 5).lt("b", 3),
        lambda r: r.eq("a", 0).gt("b", 5).lt("b", 5),
        lambda r: r.gt("a", "z").lte("a", "a"),
    ],
    ids=["gt5-lt3", "gt5-lt5", "gt-z-lte-a"],
)
def test_empty_range_scanned_to_the_end_reads_nothing(
    build: Callable[[IndexRange], IndexRange],
) -> None:
    """A range whose bounds cross selects nothing; recording what it read must not fail.

    `collect()` on such a range scans no rows, marks the scan exhausted, and
    `DatabaseReader.read_set()` then calls `consumed()`.
    """
    lo, hi = build(q()).interval()
    assert not any(inside((lo, hi), key(0, POOL[y])) for y in RANKS)
    record = ScanRecord("t", "by_ab", lo, hi, desc=False, exhausted=True)
    consumed = record.consumed()
    assert consumed is None or consumed.is_empty
