"""keys.py: index-key bytes compare exactly as the Convex values they encode.

The reference comparator below is written from the Convex ordering rules alone:
missing < null < int64 < float64 < boolean < string < bytes < array < object; floats in
IEEE total order with -0 < 0 and NaN last; strings by UTF-8 bytes; arrays lexicographic;
objects lexicographic over their (key, value) pairs sorted by key.
"""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.keys import (
    MISSING,
    TOP,
    encode_tuple,
    encode_value,
    field_value,
    prefix_end,
    successor,
)
from reactive_store.values import INT64_MAX, INT64_MIN

# -- the reference order ---------------------------------------------------------------


def rank(v: Any) -> int:
    if v is MISSING:
        return 0
    if v is None:
        return 1
    if isinstance(v, bool):
        return 4
    if isinstance(v, int):
        return 2
    if isinstance(v, float):
        return 3
    if isinstance(v, str):
        return 5
    if isinstance(v, bytes):
        return 6
    if isinstance(v, list | tuple):
        return 7
    if isinstance(v, dict):
        return 8
    raise TypeError(v)


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def cmp_scalar(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def float_order(x: float) -> tuple[int, float, float]:
    if math.isnan(x):
        return (1, 0.0, 0.0)
    return (0, x, math.copysign(1.0, x))


def cmp_seq(xs: list[Any], ys: list[Any], item_cmp: Any) -> int:
    for x, y in zip(xs, ys, strict=False):
        c = item_cmp(x, y)
        if c:
            return c
    return cmp_scalar(len(xs), len(ys))


def cmp_pair(p: tuple[str, Any], q: tuple[str, Any]) -> int:
    return cmp_value(p[0], q[0]) or cmp_value(p[1], q[1])


def cmp_value(a: Any, b: Any) -> int:
    """-1, 0 or 1 as a is below, equal to or above b in the Convex order."""
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return cmp_scalar(ra, rb)
    if ra in (0, 1):
        return 0
    if ra == 3:
        return cmp_scalar(float_order(a), float_order(b))
    if ra == 5:
        return cmp_scalar(a.encode("utf-8"), b.encode("utf-8"))
    if ra == 7:
        return cmp_seq(list(a), list(b), cmp_value)
    if ra == 8:
        return cmp_seq(sorted(a.items()), sorted(b.items()), cmp_pair)
    return cmp_scalar(a, b)  # int, bool, bytes


def cmp_bytes(a: bytes, b: bytes) -> int:
    return cmp_scalar(a, b)


def enc(v: Any) -> bytes:
    out = bytearray()
    encode_value(v, out)
    return bytes(out)


# -- strategies ------------------------------------------------------------------------

tricky_chars = st.sampled_from(["\x00", "\x01", "\x7f", "\xff", "a", "b", "\u0100", "\U0001f600"])
tricky_bytes = st.sampled_from([0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF])

strings = st.text(max_size=6) | st.text(alphabet=tricky_chars, max_size=6)
byte_strings = st.binary(max_size=6) | st.lists(tricky_bytes, max_size=6).map(bytes)
int64s = (
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
    | st.integers(min_value=-3, max_value=3)
    | st.sampled_from([INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX, 255, 256, -256])
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 5e-324, -5e-324, 1.0, -1.0]
)
scalars = st.none() | st.booleans() | int64s | floats | strings | byte_strings
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(alphabet=tricky_chars, max_size=3), children, max_size=3),
    max_leaves=8,
)
# MISSING only appears as a whole field of a key tuple.
fields = values | st.just(MISSING)
tuples = st.lists(fields, min_size=0, max_size=3)

SETTINGS = settings(max_examples=300, deadline=None)


# -- the central property --------------------------------------------------------------


@SETTINGS
@given(values, values)
def test_value_order_matches_bytes_order(a: Any, b: Any) -> None:
    assert cmp_bytes(enc(a), enc(b)) == cmp_value(a, b)


@SETTINGS
@given(scalars, scalars)
def test_scalar_order_matches_bytes_order(a: Any, b: Any) -> None:
    assert cmp_bytes(enc(a), enc(b)) == cmp_value(a, b)


@SETTINGS
@given(tuples, tuples)
def test_tuple_order_matches_bytes_order(a: list[Any], b: list[Any]) -> None:
    assert cmp_bytes(encode_tuple(a), encode_tuple(b)) == cmp_seq(a, b, cmp_value)


@SETTINGS
@given(st.integers(1, 3).flatmap(lambda n: st.tuples(*[st.lists(fields, min_size=n,
                                                                  max_size=n)] * 2)))
def test_same_length_tuple_order_matches_bytes_order(pair: tuple[list[Any], list[Any]]) -> None:
    a, b = pair
    assert cmp_bytes(encode_tuple(a), encode_tuple(b)) == cmp_seq(a, b, cmp_value)


@SETTINGS
@given(strings, strings)
def test_strings_order_by_utf8_bytes(a: str, b: str) -> None:
    assert cmp_bytes(enc(a), enc(b)) == cmp_scalar(a.encode(), b.encode())


@SETTINGS
@given(byte_strings, byte_strings, values)
def test_bytes_order_holds_when_followed_by_more_fields(a: bytes, b: bytes, rest: Any) -> None:
    assert cmp_bytes(encode_tuple([a, rest]), encode_tuple([b, rest])) == cmp_scalar(a, b)


@SETTINGS
@given(values, values)
def test_equal_keys_exactly_for_equal_values(a: Any, b: Any) -> None:
    assert (enc(a) == enc(b)) == (cmp_value(a, b) == 0)


# -- a hand-sorted list of tricky values -----------------------------------------------

SORTED = [
    MISSING,
    None,
    INT64_MIN,
    -256,
    -1,
    0,
    1,
    255,
    256,
    INT64_MAX,
    -math.inf,
    -1e300,
    -1.5,
    -5e-324,
    -0.0,
    0.0,
    5e-324,
    1.5,
    1e300,
    math.inf,
    math.nan,
    False,
    True,
    "",
    "\x00",
    "\x00\x00",
    "\x00\x01",
    "\x01",
    "a",
    "a\x00",
    "a\x00b",
    "ab",
    "b",
    "\x7f",
    "\x80",
    "\xff",
    "\u0100",
    "\uffff",
    "\U0001f600",
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x00\xff",
    b"\x01",
    b"a",
    b"a\x00",
    b"ab",
    b"\xfe",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
    [],
    [None],
    [0],
    [0, 0],
    [1],
    [""],
    ["a"],
    ["a", None],
    ["a", 1],
    ["a\x00"],
    ["a\x00", 1],
    ["b"],
    [b""],
    [[]],
    [[], None],
    [[None]],
    [{}],
    {},
    {"": None},
    {"a": None},
    {"a": None, "b": 1},
    {"a": 1},
    {"a": "x"},
    {"a": "x", "b": None},
    {"a\x00": None},
    {"b": 0},
]


def test_hand_sorted_values_are_sorted_in_reference_and_bytes() -> None:
    for lower, upper in itertools.pairwise(SORTED):
        assert cmp_value(lower, upper) == -1, (lower, upper)
        assert enc(lower) < enc(upper), (lower, upper)
    keys = [enc(v) for v in SORTED]
    assert sorted(keys) == keys
    assert len(set(keys)) == len(keys)


def test_nan_payloads_and_signs_collapse_to_one_key() -> None:
    quiet = struct.unpack(">d", bytes.fromhex("7ff8000000000000"))[0]
    payload = struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0]
    negative = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]
    assert enc(quiet) == enc(payload) == enc(negative) == enc(math.nan)
    assert enc(math.nan) > enc(math.inf)


def test_bool_is_not_int_and_int_is_not_float() -> None:
    assert enc(True) != enc(1)
    assert enc(1) != enc(1.0)
    assert enc(1) < enc(0.5) < enc(False)


def test_tags_are_below_ff_and_top_is_ff() -> None:
    assert TOP == b"\xff"
    for v in SORTED:
        assert enc(v)[0] < 0xFF


def test_unsupported_types_are_refused() -> None:
    for bad in [{1}, object(), 1j]:
        with pytest.raises(TypeError, match="cannot encode"):
            enc(bad)


# -- out-of-range integers -------------------------------------------------------------


@pytest.mark.parametrize("n", [INT64_MAX + 1, INT64_MIN - 1, 2**64])
def test_out_of_range_int_is_refused_not_wrapped(n: int) -> None:
    """An int outside int64 must not silently alias an int64's key.

    `q.eq("balance", 2**63)` passes the raw int through `Database._coerce` when the
    field's validator refuses it, so a wrapped key would make the range match the
    documents whose balance is -2**63.
    """
    with pytest.raises((TypeError, ValueError, OverflowError, struct.error)):
        encode_tuple([n])


# -- prefixes --------------------------------------------------------------------------
# keys.py: a string or bytes encoding is a prefix of another only when the longer one
# continues with 0xFF (an escaped NUL: "a" < "a\x00"); every other encoding is prefix-free.


def check_prefix_rule(a: Any, b: Any) -> None:
    ka, kb = enc(a), enc(b)
    if ka == kb:
        return
    for short, long, short_value in ((ka, kb, a), (kb, ka, b)):
        if long.startswith(short):
            assert isinstance(short_value, str | bytes), (a, b, ka, kb)
            assert long[len(short)] == 0xFF, (a, b, ka, kb)


@SETTINGS
@given(values, values)
def test_only_string_and_bytes_encodings_prefix_others_and_only_before_ff(a: Any, b: Any) -> None:
    check_prefix_rule(a, b)


@SETTINGS
@given(values, values)
def test_non_string_encodings_are_prefix_free(a: Any, b: Any) -> None:
    ka, kb = enc(a), enc(b)
    if ka != kb and not isinstance(a, str | bytes) and not isinstance(b, str | bytes):
        assert not kb.startswith(ka)
        assert not ka.startswith(kb)


@SETTINGS
@given(st.one_of(st.tuples(strings, strings.filter(bool)),
                 st.tuples(byte_strings, byte_strings.filter(bool))))
def test_string_prefixes_only_before_an_escaped_nul(pair: tuple[Any, Any]) -> None:
    """A string/bytes value against a longer one that starts with it."""
    head, tail = pair
    short, long = enc(head), enc(head + tail)
    assert long.startswith(short) == tail.startswith("\x00" if isinstance(tail, str) else b"\x00")
    check_prefix_rule(head, head + tail)


@pytest.mark.parametrize(
    ("shorter", "longer"), [("a", "a\x00"), ("", "\x00"), (b"", b"\x00"), (b"x", b"x\x00\x01")]
)
def test_escaped_nul_continues_with_ff(shorter: Any, longer: Any) -> None:
    short, long = enc(shorter), enc(longer)
    assert long.startswith(short)
    assert long[len(short)] == 0xFF
    assert short < long


@pytest.mark.parametrize(
    ("shorter", "longer"), [(["a"], ["a\x00"]), ({"k": "a"}, {"k": "a\x00"}), ([b""], [b"\x00"])]
)
def test_containers_end_strings_before_the_escape(shorter: Any, longer: Any) -> None:
    assert not enc(longer).startswith(enc(shorter))
    assert enc(shorter) < enc(longer)


@SETTINGS
@given(tuples, fields, values)
def test_a_tuple_prefix_is_followed_by_a_byte_below_ff(
    prefix: list[Any], field: Any, more: Any
) -> None:
    """What `prefix_end` relies on: after whole elements, the next element starts below 0xFF."""
    key = encode_tuple([*prefix, field, more])
    assert key[len(encode_tuple(prefix))] < 0xFF


@SETTINGS
@given(tuples, tuples)
def test_prefix_range_holds_exactly_the_tuples_that_extend_the_prefix(
    prefix: list[Any], other: list[Any]
) -> None:
    lo = encode_tuple(prefix)
    hi = prefix_end(lo)
    extended = prefix + other
    assert lo <= encode_tuple(extended) < hi
    inside = lo <= encode_tuple(other) < hi
    starts_with = len(other) >= len(prefix) and all(
        cmp_value(x, y) == 0 for x, y in zip(prefix, other, strict=False)
    )
    assert inside == starts_with


@SETTINGS
@given(tuples, tuples)
def test_successor_is_the_next_key(a: list[Any], b: list[Any]) -> None:
    ka, kb = encode_tuple(a), encode_tuple(b)
    assert ka < successor(ka)
    # nothing lies strictly between a key and its successor
    assert not (ka < kb < successor(ka))


# -- field_value -----------------------------------------------------------------------


def test_field_value_follows_dotted_paths() -> None:
    doc = {"a": {"b": {"c": 1}, "n": None}, "x": [1, 2], "s": "str"}
    assert field_value(doc, "a.b.c") == 1
    assert field_value(doc, "a.b") == {"c": 1}
    assert field_value(doc, "a.n") is None
    assert field_value(doc, "x") == [1, 2]
    assert field_value(doc, "nope") is MISSING
    assert field_value(doc, "a.nope") is MISSING
    assert field_value(doc, "a.b.c.d") is MISSING
    assert field_value(doc, "x.0") is MISSING  # arrays are not indexed by dotted paths
    assert field_value(doc, "s.len") is MISSING


def test_missing_sorts_below_null_in_an_index() -> None:
    with_null = encode_tuple([field_value({"a": None}, "a"), 1.0, "id"])
    without = encode_tuple([field_value({}, "a"), 1.0, "id"])
    assert without < with_null
    assert repr(MISSING) == "MISSING"
