"""values.py: the Convex JSON encoding (wire and storage form), export_clean, document shape."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.errors import BadRequest, ValidationError
from reactive_store.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_FIELD_NAME_LENGTH,
    _encode_checked,
    check_document_shape,
    decode,
    encode,
    export_clean,
    field_name_problem,
    type_name,
)

# -- helpers ---------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Strict Convex equality: types must match, floats compare by bits (-0 != 0, NaN == NaN)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, float)
            and isinstance(b, float)
            and struct.pack("<d", a) == struct.pack("<d", b)
        )
    if isinstance(a, int) or isinstance(b, int):
        return type(a) is type(b) and a == b
    if isinstance(a, bytes | bytearray | memoryview):
        return type(b) is bytes and bytes(a) == b
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(same(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and a == b


def f64(raw: str) -> str:
    """The base64 of a float64 given by its big-endian hex bits."""
    return base64.b64encode(bytes.fromhex(raw)[::-1]).decode()


field_names = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12
).filter(lambda s: not s.startswith("$"))

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, -5e-324])
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
convex_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(field_names, children, max_size=4),
    max_leaves=20,
)


# -- int64 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "AAAAAAAAAAA="),
        (1, "AQAAAAAAAAA="),
        (-1, "//////////8="),
        (256, "AAEAAAAAAAA="),
        (INT64_MAX, "/////////38="),
        (INT64_MIN, "AAAAAAAAAIA="),
    ],
)
def test_int64_encodes_as_little_endian_base64(n: int, text: str) -> None:
    assert encode(n) == {"$integer": text}
    got = decode({"$integer": text})
    assert type(got) is int
    assert got == n


@pytest.mark.parametrize("n", [INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**100)])
def test_int_out_of_int64_range_is_refused(n: int) -> None:
    with pytest.raises(ValidationError, match=rf"^value: integer {n} does not fit in int64$"):
        encode(n)


def test_out_of_range_int_error_names_the_nested_path() -> None:
    with pytest.raises(ValidationError, match=r"^doc\.a\[1\]\.b: integer .* does not fit"):
        encode({"a": [1, {"b": 2**63}]}, "doc")


def test_bool_is_not_an_integer() -> None:
    assert encode(True) is True
    assert encode(False) is False
    assert decode(True) is True
    assert decode(False) is False


# -- float64 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (math.nan, "AAAAAAAA+H8="),
        (math.inf, "AAAAAAAA8H8="),
        (-math.inf, "AAAAAAAA8P8="),
        (-0.0, "AAAAAAAAAIA="),
    ],
)
def test_special_floats_use_exact_float_strings(x: float, text: str) -> None:
    assert encode(x) == {"$float": text}
    got = decode({"$float": text})
    assert same(got, x)


def test_special_float_strings_are_the_ieee_bits() -> None:
    assert f64("7ff8000000000000") == "AAAAAAAA+H8="
    assert f64("7ff0000000000000") == "AAAAAAAA8H8="
    assert f64("fff0000000000000") == "AAAAAAAA8P8="
    assert f64("8000000000000000") == "AAAAAAAAAIA="


@pytest.mark.parametrize("x", [0.0, 1.0, -1.5, 1e300, -1e-300, 5e-324, 2.0**53 + 2])
def test_finite_floats_stay_plain_json_numbers(x: float) -> None:
    got = encode(x)
    assert type(got) is float
    assert same(got, x)
    assert same(decode(got), x)


def test_positive_zero_is_a_plain_number() -> None:
    got = encode(0.0)
    assert got == 0.0
    assert math.copysign(1.0, got) == 1.0


@pytest.mark.parametrize("n", [0, 1, -7, 2**53, 2**70])
def test_json_numbers_decode_to_float(n: int) -> None:
    got = decode(n)
    assert type(got) is float
    assert got == float(n)


def test_json_number_inside_containers_decodes_to_float() -> None:
    got = decode({"a": [1, 2.5], "b": {"c": 3}})
    assert same(got, {"a": [1.0, 2.5], "b": {"c": 3.0}})


@pytest.mark.parametrize(
    "raw",
    [
        "0000000000000000",  # +0
        "3ff0000000000000",  # 1.0
        "bff8000000000000",  # -1.5
        "0000000000000001",  # smallest subnormal
        "7fefffffffffffff",  # largest finite
    ],
)
def test_float_wrapper_holding_a_finite_number_is_refused(raw: str) -> None:
    with pytest.raises(BadRequest, match=r"\$float may only hold NaN, Infinity or -0"):
        decode({"$float": f64(raw)})


def test_nan_with_payload_decodes_to_nan() -> None:
    assert math.isnan(decode({"$float": f64("7ff8000000000001")}))
    assert math.isnan(decode({"$float": f64("fff8000000000000")}))


# -- bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [(b"", ""), (b"\x00", "AA=="), (b"\x00\xff", "AP8="), (b"hello", "aGVsbG8=")],
)
def test_bytes_encode_as_base64(raw: bytes, text: str) -> None:
    assert encode(raw) == {"$bytes": text}
    got = decode({"$bytes": text})
    assert type(got) is bytes
    assert got == raw


def test_bytearray_and_memoryview_encode_as_bytes() -> None:
    assert encode(bytearray(b"\x01\x02")) == {"$bytes": "AQI="}
    assert encode(memoryview(b"\x01\x02")) == {"$bytes": "AQI="}


def test_bytes_decode_accepts_unpadded_and_urlsafe_base64() -> None:
    assert decode({"$bytes": "AP8"}) == b"\x00\xff"
    assert decode({"$bytes": "-_8="}) == b"\xfb\xff"


# -- containers ------------------------------------------------------------------------


def test_containers_encode_recursively() -> None:
    got = encode({"a": [1, 2.5, None, "s", b"\x01"], "b": {"c": True}})
    assert got == {
        "a": [{"$integer": "AQAAAAAAAAA="}, 2.5, None, "s", {"$bytes": "AQ=="}],
        "b": {"c": True},
    }


def test_tuple_encodes_as_array() -> None:
    assert encode((1, "x")) == [{"$integer": "AQAAAAAAAAA="}, "x"]


def test_empty_containers() -> None:
    assert encode([]) == []
    assert encode({}) == {}
    assert decode([]) == []
    assert decode({}) == {}


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("$a", r"field name '\$a' starts with '\$'"),
        ("é", r"field name 'é' has non-printable or non-ASCII characters"),
        ("a\nb", r"non-printable or non-ASCII"),
        ("tab\t", r"non-printable or non-ASCII"),
        ("del\x7f", r"non-printable or non-ASCII"),
        ("x" * (MAX_FIELD_NAME_LENGTH + 1), r"field name longer than 1024 characters"),
    ],
    ids=["dollar", "non-ascii", "newline", "tab", "del", "too-long"],
)
def test_encode_refuses_bad_field_names(key: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        encode({"ok": {key: 1}}, "doc")
    with pytest.raises(ValidationError, match=r"^doc\.ok: "):
        encode({"ok": {key: 1}}, "doc")


def test_encode_refuses_non_string_keys() -> None:
    with pytest.raises(ValidationError, match="object keys must be strings, got int"):
        encode({1: "x"})


def test_field_name_at_the_length_limit_is_fine() -> None:
    assert field_name_problem("x" * MAX_FIELD_NAME_LENGTH) is None
    assert field_name_problem("") is None
    assert field_name_problem("a b~_-") is None


@pytest.mark.parametrize("bad", [{1, 2}, object(), 1j, frozenset()])
def test_encode_refuses_non_convex_values(bad: Any) -> None:
    with pytest.raises(ValidationError, match=r"^value\.x: unsupported Python type .* is not a"):
        encode({"x": bad})


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("é", r"field name 'é' has non-printable or non-ASCII characters"),
        ("a\nb", r"non-printable or non-ASCII"),
        ("\x00", r"non-printable or non-ASCII"),
        ("x" * (MAX_FIELD_NAME_LENGTH + 1), r"field name longer than 1024 characters"),
    ],
    ids=["non-ascii", "newline", "nul", "too-long"],
)
def test_decode_refuses_field_names_convex_forbids(key: str, message: str) -> None:
    """Convex's jsonToConvex runs validateObjectField (length, '$', ASCII) on every key."""
    with pytest.raises(BadRequest, match=message):
        decode({key: 1})
    with pytest.raises(BadRequest, match=message):
        decode({"ok": [{key: 1}]})


def test_decode_refuses_dollar_field_among_others() -> None:
    with pytest.raises(BadRequest, match=r"field name '\$integer' starts with '\$'"):
        decode({"$integer": "AQAAAAAAAAA=", "x": 1})
    with pytest.raises(BadRequest, match=r"field name '\$x' starts with '\$'"):
        decode({"a": {"b": 1, "$x": 2}})


@pytest.mark.parametrize("key", ["$set", "$map"])
def test_decode_refuses_set_and_map(key: str) -> None:
    with pytest.raises(BadRequest, match=rf"\{key} values are no longer supported"):
        decode({key: []})


def test_decode_refuses_unknown_special_values() -> None:
    with pytest.raises(BadRequest, match=r"unknown special value '\$date'"):
        decode({"$date": "2020"})


@pytest.mark.parametrize("special", ["$integer", "$float", "$bytes"])
@pytest.mark.parametrize("text", ["!!!!", "AQ*A", "A", "é"])
def test_decode_refuses_bad_base64(special: str, text: str) -> None:
    with pytest.raises(BadRequest, match=rf"\{special} is not valid base64"):
        decode({special: text})


@pytest.mark.parametrize("special", ["$integer", "$float", "$bytes"])
@pytest.mark.parametrize("inner", [5, None, ["AA=="], {"a": "AA=="}])
def test_decode_refuses_non_string_payloads(special: str, inner: Any) -> None:
    with pytest.raises(BadRequest, match=rf"\{special} must be a base64 string"):
        decode({special: inner})


@pytest.mark.parametrize("special", ["$integer", "$float"])
@pytest.mark.parametrize("n", [0, 1, 7, 9, 16])
def test_decode_refuses_wrong_payload_length(special: str, n: int) -> None:
    text = base64.b64encode(b"\x00" * n).decode()
    with pytest.raises(BadRequest, match=rf"\{special} must hold 8 bytes, got {n}"):
        decode({special: text})


def test_decode_refuses_non_json_values() -> None:
    with pytest.raises(BadRequest, match="bytes is not a JSON value"):
        decode(b"raw")
    with pytest.raises(BadRequest, match="tuple is not a JSON value"):
        decode({"a": (1,)})


def test_type_name() -> None:
    assert [type_name(x) for x in [None, True, 1, 1.0, "", b"", [], (), {}]] == [
        "null", "boolean", "int64", "float64", "string", "bytes", "array", "array", "object",
    ]
    assert type_name({1}) == "unsupported Python type set"


# -- round trip (property) -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(convex_values)
def test_round_trip_through_json_text(value: Any) -> None:
    encoded = encode(value)
    text = orjson.dumps(encoded)
    assert same(decode(orjson.loads(text)), value)


@settings(max_examples=300, deadline=None)
@given(convex_values)
def test_fast_encoder_agrees_with_the_checked_one(value: Any) -> None:
    assert same_json(encode(value), _encode_checked(value, "value"))


def same_json(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_fast_and_checked_encoders_on_awkward_inputs() -> None:
    class Sub(dict):  # type: ignore[type-arg]
        pass

    for value in [Sub(a=1), (1, [2.0]), {"a": (b"x",)}, {"x": bytearray(b"\x01")}, [-0.0, 1]]:
        assert same_json(encode(value), _encode_checked(value, "value"))


@settings(max_examples=300, deadline=None)
@given(convex_values)
def test_encoding_is_plain_json(value: Any) -> None:
    """The encoded form holds only JSON types, and no float that JSON cannot carry."""

    def check(x: Any) -> None:
        if isinstance(x, float):
            assert math.isfinite(x)
            assert not (x == 0 and math.copysign(1.0, x) < 0)
        elif isinstance(x, list):
            for item in x:
                check(item)
        elif isinstance(x, dict):
            for key, item in x.items():
                assert isinstance(key, str)
                check(item)
        else:
            assert x is None or isinstance(x, bool | str)
            assert not isinstance(x, int) or isinstance(x, bool)

    check(encode(value))


# -- export_clean ----------------------------------------------------------------------


def test_export_clean_is_the_lossy_json_format() -> None:
    value = {
        "i": 12,
        "neg": -(2**63),
        "f": 1.5,
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "b": b"\x00\xff",
        "arr": [1, None, True, "s"],
        "t": (2,),
        "o": {"x": {"y": 3}},
    }
    assert export_clean(value) == {
        "i": "12",
        "neg": "-9223372036854775808",
        "f": 1.5,
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "b": "AP8=",
        "arr": ["1", None, True, "s"],
        "t": ["2"],
        "o": {"x": {"y": "3"}},
    }


def test_export_clean_keeps_negative_zero_a_number() -> None:
    got = export_clean(-0.0)
    assert type(got) is float
    assert math.copysign(1.0, got) == -1.0


def test_export_clean_refuses_non_values() -> None:
    with pytest.raises(ValidationError, match="unsupported Python type set is not a Convex value"):
        export_clean({"a": {1}})


@settings(max_examples=200, deadline=None)
@given(convex_values)
def test_export_clean_output_is_json(value: Any) -> None:
    clean = export_clean(value)
    # Strict JSON: the standard library refuses NaN and infinities (orjson would write null),
    # and the text reads back to the same structure.
    text = json.dumps(clean, allow_nan=False)
    assert json.loads(text) == clean


# -- check_document_shape --------------------------------------------------------------


def shape(value: Any, depth: int = 16, array: int = 8192, fields: int = 1024) -> int:
    return check_document_shape(value, max_depth=depth, max_array=array, max_fields=fields)


def test_shape_counts_fields_at_every_level() -> None:
    assert shape({}) == 0
    assert shape({"a": 1, "b": 2}) == 2
    assert shape({"a": {"b": 1, "c": [{"d": 1}, {"e": 1, "f": 2}]}}) == 6
    assert shape([1, 2, 3]) == 0
    assert shape("scalar") == 0


def test_shape_depth_limit_is_inclusive() -> None:
    nested: Any = {"leaf": 1}
    for _ in range(3):
        nested = {"n": nested}
    # nested has 4 levels of objects
    assert shape(nested, depth=4) == 4
    with pytest.raises(
        ValidationError, match=r"^document\.n\.n\.n: nesting deeper than 3 levels$"
    ):
        shape(nested, depth=3)


def test_shape_depth_counts_arrays_too() -> None:
    assert shape([[[1]]], depth=3) == 0
    with pytest.raises(ValidationError, match=r"^document\[0\]\[0\]: nesting deeper than 2"):
        shape([[[1]]], depth=2)


def test_shape_scalars_do_not_count_as_a_level() -> None:
    assert shape({"a": 1}, depth=1) == 1


def test_shape_array_limit_is_inclusive() -> None:
    assert shape({"xs": [0] * 5}, array=5) == 1
    with pytest.raises(
        ValidationError, match=r"^document\.xs: array of 6 elements, more than 5$"
    ):
        shape({"xs": [0] * 6}, array=5)


def test_shape_field_limit_is_total_and_inclusive() -> None:
    doc = {"a": {"x": 1, "y": 2}, "b": {"z": 3}}  # 5 fields in all
    assert shape(doc, fields=5) == 5
    with pytest.raises(ValidationError, match=r"^document: more than 4 fields$"):
        shape(doc, fields=4)


def test_shape_path_argument_prefixes_messages() -> None:
    with pytest.raises(ValidationError, match=r"^args\.xs: array of 3"):
        check_document_shape(
            {"xs": [1, 2, 3]}, max_depth=5, max_array=2, max_fields=9, path="args"
        )


def _measure(value: Any, depth: int = 1) -> tuple[int, int, int]:
    """(fields, deepest container level, longest array) of a value, by plain recursion."""
    if isinstance(value, dict):
        parts = [_measure(v, depth + 1) for v in value.values()]
        return (len(value) + sum(p[0] for p in parts), max([depth, *(p[1] for p in parts)]),
                max([0, *(p[2] for p in parts)]))
    if isinstance(value, list):
        parts = [_measure(v, depth + 1) for v in value]
        return (sum(p[0] for p in parts), max([depth, *(p[1] for p in parts)]),
                max([len(value), *(p[2] for p in parts)]))
    return 0, 0, 0


@settings(max_examples=300)
@given(convex_values, st.integers(1, 5), st.integers(0, 4), st.integers(0, 12))
def test_shape_accepts_exactly_what_is_within_every_limit(
    value: Any, depth: int, array: int, fields: int
) -> None:
    """Valid documents take a fast walk and invalid ones the walk that names the problem:
    both must agree with the limits, whichever is hit."""
    count, deepest, longest = _measure(value)
    if deepest <= depth and longest <= array and count <= fields:
        assert shape(value, depth, array, fields) == count
    else:
        with pytest.raises(ValidationError):
            shape(value, depth, array, fields)


def test_shape_of_nesting_deeper_than_python_recurses_is_still_counted() -> None:
    nested: Any = {"leaf": 1}
    for _ in range(3000):
        nested = [nested]
    assert shape(nested, depth=5000) == 1
    with pytest.raises(ValidationError, match="nesting deeper than 2999 levels"):
        shape(nested, depth=2999)
