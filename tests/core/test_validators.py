"""validators.py: every v.* validator's accepts, rejects, messages, normalisation and to_json."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.errors import ValidationError
from reactive_store.ids import TABLE_NAMES, new_id
from reactive_store.validators import ArgsSpec, Validator, _Invalid, is_optional, v
from reactive_store.values import decode

ALL_SAMPLES: dict[str, Any] = {
    "null": None,
    "true": True,
    "false": False,
    "int": 7,
    "int0": 0,
    "float": 1.5,
    "nan": math.nan,
    "str": "s",
    "emptystr": "",
    "bytes": b"\x00",
    "bytearray": bytearray(b"x"),
    "list": [1],
    "tuple": (1,),
    "dict": {"a": 1},
}


def accepted(validator: Validator) -> set[str]:
    ok = set()
    for name, value in ALL_SAMPLES.items():
        try:
            validator.validate(value, "x")
        except ValidationError:
            continue
        ok.add(name)
    return ok


def fails(validator: Validator, value: Any, path: str = "args.x") -> str:
    with pytest.raises(ValidationError) as info:
        validator.validate(value, path)
    return str(info.value)


# -- which samples each simple validator accepts ---------------------------------------


@pytest.mark.parametrize(
    ("validator", "expected"),
    [
        (v.string(), {"str", "emptystr"}),
        (v.float64(), {"int", "int0", "float", "nan"}),
        (v.number(), {"int", "int0", "float", "nan"}),
        (v.int64(), {"int", "int0"}),
        (v.boolean(), {"true", "false"}),
        (v.null(), {"null"}),
        (v.bytes(), {"bytes", "bytearray"}),
        (v.any(), set(ALL_SAMPLES)),
        (v.array(v.any()), {"list", "tuple"}),
        (v.object({}), set()),
        (v.record(v.string(), v.any()), {"dict"}),
        (v.literal("s"), {"str"}),
        (v.literal(7), {"int"}),
        (v.literal(True), {"true"}),
        (v.literal(False), {"false"}),
        (v.literal(1.5), {"float"}),
        (v.union(v.string(), v.null()), {"str", "emptystr", "null"}),
        (v.optional(v.int64()), {"int", "int0"}),
    ],
)
def test_accepts_exactly(validator: Validator, expected: set[str]) -> None:
    assert accepted(validator) == expected


def test_object_accepts_only_matching_dicts() -> None:
    obj = v.object({"a": v.int64()})
    assert obj.validate({"a": 1}, "x") == {"a": 1}
    assert accepted(obj) == {"dict"}


# -- messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (v.int64(), 1.5, "args.balance: expected int64, got float64 1.5"),
        (v.int64(), True, "args.balance: expected int64, got boolean"),
        (v.int64(), None, "args.balance: expected int64, got null"),
        (v.int64(), "1", "args.balance: expected int64, got string '1'"),
        (v.float64(), "x", "args.balance: expected float64, got string 'x'"),
        (v.float64(), False, "args.balance: expected float64, got boolean"),
        (v.string(), 3, "args.balance: expected string, got int64 3"),
        (v.string(), b"\x01", "args.balance: expected string, got bytes b'\\x01'"),
        (v.boolean(), 0, "args.balance: expected boolean, got int64 0"),
        (v.null(), 0.0, "args.balance: expected null, got float64 0.0"),
        (v.bytes(), "AQ==", "args.balance: expected bytes, got string 'AQ=='"),
        (v.array(v.any()), {}, "args.balance: expected array of any, got object {}"),
        (v.object({"a": v.string()}), [], "args.balance: expected object {a}, got array []"),
        (v.literal("a"), "b", "args.balance: expected literal 'a', got string 'b'"),
        (
            v.union(v.string(), v.int64()),
            1.5,
            "args.balance: expected string | int64, got float64 1.5",
        ),
        (
            v.record(v.string(), v.int64()),
            [],
            "args.balance: expected record of string to int64, got array []",
        ),
        (v.id("users"), 5, "args.balance: expected id of table 'users', got int64 5"),
        (v.optional(v.int64()), "x", "args.balance: expected int64, got string 'x'"),
    ],
)
def test_error_names_path_expected_and_actual_type(
    validator: Validator, value: Any, message: str
) -> None:
    assert fails(validator, value, "args.balance") == message


def test_long_values_are_previewed_not_dumped() -> None:
    message = fails(v.int64(), "x" * 500)
    assert message.startswith("args.x: expected int64, got string 'xxx")
    assert message.endswith("...")
    assert len(message) < 120


def test_nested_paths() -> None:
    validator = v.object({"items": v.array(v.object({"n": v.int64()}))})
    message = fails(validator, {"items": [{"n": 1}, {"n": "two"}]}, "args")
    assert message == "args.items[1].n: expected int64, got string 'two'"


# -- numbers ---------------------------------------------------------------------------


def test_int_accepted_by_float64_becomes_float() -> None:
    got = v.float64().validate(3, "x")
    assert type(got) is float
    assert got == 3.0
    assert type(v.float64().validate(-(2**53), "x")) is float


def test_int_beyond_2_53_is_not_silently_rounded_to_float() -> None:
    assert v.float64().validate(2**53, "x") == 2.0**53
    assert fails(v.float64(), 2**53 + 1) == f"args.x: expected float64, got int64 {2**53 + 1}"


def test_float_is_kept_as_is_by_float64() -> None:
    for x in [1.5, -0.0, math.inf, -math.inf]:
        got = v.float64().validate(x, "x")
        assert got is x
    assert math.isnan(v.float64().validate(math.nan, "x"))


def test_bool_is_rejected_by_int64_and_float64() -> None:
    assert fails(v.int64(), True) == "args.x: expected int64, got boolean"
    assert fails(v.float64(), True) == "args.x: expected float64, got boolean"


def test_int64_range() -> None:
    assert v.int64().validate(2**63 - 1, "x") == 2**63 - 1
    assert v.int64().validate(-(2**63), "x") == -(2**63)
    assert fails(v.int64(), 2**63) == f"args.x: expected int64, got int64 {2**63}"
    assert fails(v.int64(), -(2**63) - 1).startswith("args.x: expected int64")


def test_float_with_integer_value_is_not_an_int64() -> None:
    assert fails(v.int64(), 1.0) == "args.x: expected int64, got float64 1.0"


def test_int_inside_containers_is_normalised() -> None:
    got = v.object({"xs": v.array(v.float64()), "r": v.record(v.string(), v.number())}).validate(
        {"xs": [1, 2.5], "r": {"k": 4}}, "x"
    )
    assert got == {"xs": [1.0, 2.5], "r": {"k": 4.0}}
    assert type(got["xs"][0]) is float
    assert type(got["r"]["k"]) is float


# -- literal ---------------------------------------------------------------------------


def test_literal_checks_type_as_well_as_value() -> None:
    assert fails(v.literal(1), 1.0) == "args.x: expected literal 1, got float64 1.0"
    assert fails(v.literal(1), True) == "args.x: expected literal 1, got boolean"
    assert fails(v.literal(1.0), 1) == "args.x: expected literal 1.0, got int64 1"
    assert fails(v.literal(True), 1) == "args.x: expected literal True, got int64 1"
    assert v.literal("").validate("", "x") == ""


@pytest.mark.parametrize("bad", [None, b"x", [1], {"a": 1}, math.nan, math.inf, -math.inf])
def test_literal_refuses_non_literal_values(bad: Any) -> None:
    with pytest.raises(TypeError, match=re.escape("v.literal() takes a string, number or boolean")):
        v.literal(bad)


# -- optional --------------------------------------------------------------------------


def test_optional_allows_absence_in_objects_but_not_null() -> None:
    obj = v.object({"a": v.string(), "b": v.optional(v.string())})
    assert obj.validate({"a": "x"}, "args") == {"a": "x"}
    assert obj.validate({"a": "x", "b": "y"}, "args") == {"a": "x", "b": "y"}
    assert fails(obj, {"a": "x", "b": None}, "args") == "args.b: expected string, got null"


def test_optional_flags() -> None:
    assert is_optional(v.optional(v.any()))
    assert not is_optional(v.any())
    assert v.optional(v.int64()).describe() == "optional int64"


def test_optional_of_union_with_null() -> None:
    obj = v.object({"b": v.optional(v.union(v.string(), v.null()))})
    assert obj.validate({}, "x") == {}
    assert obj.validate({"b": None}, "x") == {"b": None}


# -- union -----------------------------------------------------------------------------


def test_union_returns_first_matching_members_normalisation() -> None:
    got = v.union(v.int64(), v.float64()).validate(3, "x")
    assert type(got) is int
    got = v.union(v.float64(), v.int64()).validate(3, "x")
    assert type(got) is float


def test_union_of_objects_picks_the_matching_shape() -> None:
    shape = v.union(
        v.object({"kind": v.literal("a"), "n": v.int64()}),
        v.object({"kind": v.literal("b"), "s": v.string()}),
    )
    assert shape.validate({"kind": "b", "s": "x"}, "x") == {"kind": "b", "s": "x"}
    message = fails(shape, {"kind": "c"})
    assert message == (
        "args.x: expected object {kind, n} | object {kind, s}, got object {'kind': 'c'}"
    )


def test_union_needs_members() -> None:
    with pytest.raises(TypeError, match=re.escape("v.union() needs at least one member")):
        v.union()


# -- object ----------------------------------------------------------------------------


def test_object_missing_field() -> None:
    obj = v.object({"name": v.string(), "age": v.int64()})
    assert (
        fails(obj, {"name": "x"}, "args") == "args: missing required field 'age' (int64)"
    )


def test_object_extra_field() -> None:
    obj = v.object({"name": v.string()})
    assert fails(obj, {"name": "x", "nope": 1}, "args") == "args: unexpected field 'nope'"


def test_object_output_follows_declared_fields_and_drops_nothing_given() -> None:
    obj = v.object({"a": v.int64(), "b": v.float64()})
    got = obj.validate({"b": 1, "a": 2}, "x")
    assert got == {"a": 2, "b": 1.0}


@pytest.mark.parametrize("name", ["$a", "é", "a\n", "x" * 1025])
def test_object_refuses_bad_field_names_at_definition(name: str) -> None:
    with pytest.raises(TypeError, match=re.escape("v.object(): field name")):
        v.object({name: v.any()})


def test_object_refuses_non_validators() -> None:
    with pytest.raises(TypeError, match=re.escape("v.object() expects validators, got 'x'")):
        v.object({"a": "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="expects a dict of field name -> validator"):
        v.object([("a", v.any())])  # type: ignore[arg-type]


# -- record ----------------------------------------------------------------------------


def test_record_checks_keys_and_values() -> None:
    rec = v.record(v.string(), v.int64())
    assert rec.validate({"a": 1, "b": 2}, "x") == {"a": 1, "b": 2}
    assert rec.validate({}, "x") == {}
    assert fails(rec, {"a": "no"}, "args.r") == "args.r.a: expected int64, got string 'no'"


def test_record_key_validator() -> None:
    rec = v.record(v.union(v.literal("a"), v.literal("b")), v.any())
    assert rec.validate({"a": 1}, "x") == {"a": 1}
    assert (
        fails(rec, {"c": 1}, "args.r")
        == "args.r key 'c': expected literal 'a' | literal 'b', got string 'c'"
    )


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("$x", "field name '$x' starts with '$'"),
        ("é", "field name 'é' has non-printable or non-ASCII characters"),
        (1, "object keys must be strings, got int"),
    ],
)
def test_record_refuses_keys_that_are_not_field_names(key: Any, problem: str) -> None:
    rec = v.record(v.any(), v.any())
    assert fails(rec, {key: 1}, "args.r") == f"args.r: {problem}"


def test_record_needs_validators() -> None:
    with pytest.raises(TypeError, match=re.escape("v.record() expects validators")):
        v.record(str, v.any())  # type: ignore[arg-type]


# -- array -----------------------------------------------------------------------------


def test_array_validates_items_and_returns_a_list() -> None:
    arr = v.array(v.int64())
    assert arr.validate((1, 2), "x") == [1, 2]
    assert arr.validate([], "x") == []
    assert fails(arr, [1, "2"], "args.xs") == "args.xs[1]: expected int64, got string '2'"


def test_array_needs_a_validator() -> None:
    with pytest.raises(TypeError, match=re.escape("v.array() expects validators, got 5")):
        v.array(5)  # type: ignore[arg-type]


# -- id --------------------------------------------------------------------------------


@pytest.fixture
def tables() -> Iterator[None]:
    token = TABLE_NAMES.set({1: "users", 2: "posts"})
    yield
    TABLE_NAMES.reset(token)


def test_id_accepts_any_string_when_no_deployment_is_known() -> None:
    assert v.id("users").validate("anything", "x") == "anything"


def test_id_checks_its_table(tables: None) -> None:
    user, post = new_id(1), new_id(2)
    assert v.id("users").validate(user, "x") == user
    assert (
        fails(v.id("users"), post, "args.u")
        == "args.u: expected an id of table 'users', got an id of table 'posts'"
    )


def test_id_malformed_or_unknown_table(tables: None) -> None:
    message = fails(v.id("users"), "not-an-id", "args.u")
    assert message.startswith("args.u: invalid id 'not-an-id'")
    stray = new_id(9)
    message = fails(v.id("users"), stray, "args.u")
    assert message == f"args.u: invalid id {stray!r}: no table numbered 9"


# -- ArgsSpec --------------------------------------------------------------------------


def test_args_spec() -> None:
    spec = ArgsSpec(v.object({"n": v.float64()}))
    assert spec.validate({"n": 1}) == {"n": 1.0}
    with pytest.raises(ValidationError, match=r"^args: expected an object, got array$"):
        spec.validate([1])
    with pytest.raises(ValidationError, match=r"^args: unexpected field 'm'$"):
        spec.validate({"n": 1, "m": 2})
    unvalidated = ArgsSpec(None)
    assert unvalidated.validate({"anything": [1]}) == {"anything": [1]}
    with pytest.raises(ValidationError, match=r"^args: expected an object, got null$"):
        unvalidated.validate(None)


# -- to_json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validator", "json_form"),
    [
        (v.string(), {"type": "string"}),
        (v.float64(), {"type": "number"}),
        (v.number(), {"type": "number"}),
        (v.int64(), {"type": "bigint"}),
        (v.boolean(), {"type": "boolean"}),
        (v.null(), {"type": "null"}),
        (v.bytes(), {"type": "bytes"}),
        (v.any(), {"type": "any"}),
        (v.id("users"), {"type": "id", "tableName": "users"}),
        (v.literal("a"), {"type": "literal", "value": "a"}),
        (v.literal(False), {"type": "literal", "value": False}),
        (v.literal(2.5), {"type": "literal", "value": 2.5}),
        (v.literal(1), {"type": "literal", "value": {"$integer": "AQAAAAAAAAA="}}),
        (v.literal(-1), {"type": "literal", "value": {"$integer": "//////////8="}}),
        (v.array(v.string()), {"type": "array", "value": {"type": "string"}}),
        (v.optional(v.string()), {"type": "string"}),
        (
            v.union(v.string(), v.null()),
            {"type": "union", "value": [{"type": "string"}, {"type": "null"}]},
        ),
        (
            v.object({"a": v.string(), "b": v.optional(v.int64())}),
            {
                "type": "object",
                "value": {
                    "a": {"fieldType": {"type": "string"}, "optional": False},
                    "b": {"fieldType": {"type": "bigint"}, "optional": True},
                },
            },
        ),
        (
            v.record(v.string(), v.float64()),
            {"type": "record", "keys": {"type": "string"}, "values": {"type": "number"}},
        ),
    ],
)
def test_to_json_shapes(validator: Validator, json_form: dict[str, Any]) -> None:
    assert validator.to_json() == json_form
    assert json.loads(json.dumps(validator.to_json())) == json_form


def stored_form(validator: Validator) -> Any:
    """How schema push stores and compares a validator (storage/ddl.py: json.dumps/loads, ==)."""
    return json.loads(json.dumps(validator.to_json(), sort_keys=True))


@pytest.mark.parametrize(
    ("first", "second"),
    [(v.literal(1), v.literal(1.0)), (v.literal(1), v.literal(True)),
     (v.literal(0), v.literal(False))],
    ids=["int-vs-float", "int-vs-bool", "zero-vs-false"],
)
def test_to_json_tells_different_literals_apart(first: Validator, second: Validator) -> None:
    """Literals of different types are different validators and must have different JSON.

    Schema push decides whether a table's validator changed by comparing these forms; if
    `v.literal(1.0)` -> `v.literal(1)` looks unchanged, stored documents holding 1.0 are not
    re-validated and no longer match the schema. Convex writes a literal's value with
    convexToJson, e.g. `{"$integer": "AQAAAAAAAAA="}` for an int64 1.
    """
    first.validate(first.literal, "x")  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        first.validate(second.literal, "x")  # type: ignore[attr-defined]
    assert stored_form(first) != stored_form(second)


def test_describe() -> None:
    assert v.object({"a": v.any(), "b": v.any()}).describe() == "object {a, b}"
    assert v.array(v.union(v.int64(), v.null())).describe() == "array of int64 | null"
    assert v.record(v.string(), v.bytes()).describe() == "record of string to bytes"
    assert v.id("t").describe() == "id of table 't'"


# -- the compiled checks and `diagnose` agree ------------------------------------------------

_LEAVES = st.one_of(
    st.sampled_from([v.string(), v.float64(), v.int64(), v.boolean(), v.null(), v.bytes(),
                     v.any(), v.id("users"), v.doc("users")]),
    st.one_of(st.text(max_size=3), st.integers(-3, 3), st.booleans(),
              st.floats(-2, 2, allow_nan=False)).map(v.literal),
)


def _composites(children: st.SearchStrategy[Validator]) -> st.SearchStrategy[Validator]:
    fields = st.dictionaries(st.sampled_from(["a", "b", "c"]),
                             st.tuples(children, st.booleans()), max_size=3)
    return st.one_of(
        children.map(v.array),
        fields.map(lambda f: v.object({k: v.optional(x) if opt else x
                                       for k, (x, opt) in f.items()})),
        children.map(lambda x: v.record(v.string(), x)),
        st.lists(children, min_size=1, max_size=3).map(lambda m: v.union(*m)),
    )


VALIDATORS = st.recursive(_LEAVES, _composites, max_leaves=8)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64),
                    st.floats(allow_nan=False), st.text(max_size=3), st.binary(max_size=2),
                    st.sampled_from(["a", "b", 1, 0, 1.0, True, "users"]))
VALUES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=3), st.tuples(children),
    st.dictionaries(st.sampled_from(["a", "b", "c", "$x", "d"]), children, max_size=3)),
    max_leaves=10)


def _matching(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values built to match a validator (so that acceptance is exercised too)."""
    kind = spec["type"]
    if kind == "object":
        return st.fixed_dictionaries(
            {k: _matching(f["fieldType"]) for k, f in spec["value"].items()
             if not f["optional"]},
            optional={k: _matching(f["fieldType"]) for k, f in spec["value"].items()
                      if f["optional"]})
    if kind == "array":
        return st.lists(_matching(spec["value"]), max_size=3)
    if kind == "record":
        return st.dictionaries(st.sampled_from(["a", "b"]), _matching(spec["values"]),
                               max_size=2)
    if kind == "union":
        return st.one_of(*(_matching(m) for m in spec["value"]))
    if kind == "literal":
        return st.just(decode(spec["value"]))
    if kind == "doc":
        return st.fixed_dictionaries({"_id": st.just(new_id(3)),
                                      "_creationTime": _matching({"type": "number"})},
                                     optional={"a": SCALARS, "_x": SCALARS})
    return {"string": st.text(max_size=3), "number": st.one_of(st.floats(allow_nan=False),
                                                               st.integers(-5, 5)),
            "bigint": st.integers(-2**63, 2**63 - 1), "boolean": st.booleans(),
            "null": st.none(), "bytes": st.binary(max_size=2), "any": SCALARS,
            "id": st.just(new_id(3))}[kind]


@given(st.data())
@settings(max_examples=400, deadline=None)
def test_compiled_checks_agree_with_diagnose(data: st.DataObject) -> None:
    validator = data.draw(VALIDATORS)
    value = data.draw(st.one_of(VALUES, _matching(validator.to_json())))
    try:
        fast, fast_ok = validator.compiled(value), True
    except _Invalid:
        fast, fast_ok = None, False
    try:
        slow, slow_ok = validator.diagnose(value, "x"), True
    except ValidationError:
        slow, slow_ok = None, False
    assert fast_ok == slow_ok, (validator.describe(), value)
    assert repr(fast) == repr(slow)
    if not fast_ok:
        with pytest.raises(ValidationError):
            validator.validate(value, "x")
