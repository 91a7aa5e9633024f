"""mapping.py: every kind of hint maps to the `v.*` validator it means, and the rest is an
error that names the type."""

from __future__ import annotations

import collections.abc
import datetime
import enum
import re
import typing
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import pytest
from pydantic import BaseModel

from reactive_store import Doc, Id
from reactive_store.annotations.mapping import shape_of
from reactive_store.errors import AnnotationError, ValidationError
from reactive_store.validators import DOCUMENTS, Validator, v

UserId = NewType("UserId", str)


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


ADDRESS = re.compile(" at 0x[0-9a-f]+")  # test ids must not differ between processes


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (str, v.string()),
        (int, v.int64()),
        (float, v.float64()),
        (bool, v.boolean()),
        (bytes, v.bytes()),
        (None, v.null()),
        (type(None), v.null()),
        (Any, v.any()),
        (list[int], v.array(v.int64())),
        (typing.List[str], v.array(v.string())),  # noqa: UP006
        (collections.abc.Sequence[float], v.array(v.float64())),
        (list, v.array(v.any())),
        (dict[str, int], v.record(v.string(), v.int64())),
        (collections.abc.Mapping[str, bool], v.record(v.string(), v.boolean())),
        (dict, v.record(v.string(), v.any())),
        (dict[Id["users"], float], v.record(v.id("users"), v.float64())),  # noqa: F821
        (dict[Literal["a", "b"], str],
         v.record(v.union(v.literal("a"), v.literal("b")), v.string())),
        (Literal["low"], v.literal("low")),
        (Literal["low", "high"], v.union(v.literal("low"), v.literal("high"))),
        (Literal[1, True, None], v.union(v.literal(1), v.literal(True), v.null())),
        (int | None, v.union(v.int64(), v.null())),
        (Optional[str], v.union(v.string(), v.null())),  # noqa: UP045
        (Union[int, float, str], v.union(v.int64(), v.float64(), v.string())),  # noqa: UP007
        (Id["chat_sessions"], v.id("chat_sessions")),
        (Id[Literal["chat_sessions"]], v.id("chat_sessions")),
        (Doc["chat_sessions"], v.doc("chat_sessions")),
        (list[Id["t"]] | None, v.union(v.array(v.id("t")), v.null())),  # noqa: F821
        (UserId, v.string()),
        (Annotated[int, "a note"], v.int64()),
        (Annotated[Any, v.float64()], v.float64()),
        (Annotated[dict[str, Any] | None, v.object({"a": v.string()})],  # unhashable metadata
         v.object({"a": v.string()})),
        (Size, v.union(v.literal(1), v.literal(2))),
        (Mood, v.union(v.literal("happy"), v.literal("sad"))),
    ],
    ids=lambda x: x.describe() if isinstance(x, Validator) else ADDRESS.sub("", repr(x)),
)
def test_hint_maps_to_the_v_validator(hint: Any, expected: Validator) -> None:
    shape = shape_of(hint)
    assert shape.validator.to_json() == expected.to_json()
    assert shape.validator.describe() == expected.describe()


def test_int_and_float_behave_as_int64_and_float64() -> None:
    assert shape_of(float).validator.validate(3, "x") == 3.0  # an int where a float64 is
    with pytest.raises(ValidationError, match=re.escape("x: expected int64, got float64 3.5")):
        shape_of(int).validator.validate(3.5, "x")
    with pytest.raises(ValidationError, match="x: expected int64, got boolean"):
        shape_of(int).validator.validate(True, "x")


def test_plain_hints_need_no_conversion() -> None:
    for hint in (str, list[dict[str, int]], Id["t"], int | None, Literal["a"]):
        assert shape_of(hint).load is None


def test_enums_arrive_as_members() -> None:
    shape = shape_of(list[Mood])
    assert shape.load is not None
    assert shape.load(["sad", "happy"], "args.x") == [Mood.SAD, Mood.HAPPY]
    assert shape_of(Size).load(2, "x") is Size.LARGE  # type: ignore[misc]


class Point(BaseModel):
    x: float


class Named(TypedDict):
    name: str
    point: NotRequired[Point]


def test_a_union_loads_the_member_that_accepted_the_value() -> None:
    shape = shape_of(Point | str | None)
    assert shape.load is not None
    assert shape.load({"x": 1.0}, "a") == Point(x=1.0)
    assert shape.load("text", "a") == "text"
    assert shape.load(None, "a") is None


def test_containers_load_what_they_hold() -> None:
    shape = shape_of(dict[str, list[Named]])
    assert shape.load is not None
    loaded = shape.load({"k": [{"name": "a", "point": {"x": 2.0}}, {"name": "b"}]}, "a")
    assert loaded == {"k": [{"name": "a", "point": Point(x=2.0)}, {"name": "b"}]}


def test_doc_checks_system_fields_and_the_table_schema() -> None:
    from reactive_store.ids import new_id

    validator = shape_of(Doc["notes"]).validator
    doc_id = new_id(3)
    doc = {"_id": doc_id, "_creationTime": 5, "body": "hi"}
    assert validator.validate(doc, "r") == {"_id": doc_id, "_creationTime": 5.0, "body": "hi"}
    with pytest.raises(ValidationError, match="r: missing system field '_id'"):
        validator.validate({"body": "hi"}, "r")
    token = DOCUMENTS.set({"notes": v.object({"body": v.string()})})
    try:
        assert validator.compiled({**doc, "_creationTime": 5}) == {
            "_id": doc_id, "_creationTime": 5.0, "body": "hi"}
        with pytest.raises(ValidationError, match=re.escape("r.body: expected string, got int64")):
            validator.validate({**doc, "body": 5}, "r")
        with pytest.raises(ValidationError, match="r: unexpected field 'extra'"):
            validator.validate({**doc, "extra": 1}, "r")
    finally:
        DOCUMENTS.reset(token)


class Node(TypedDict):
    value: int
    children: list[Node]


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (datetime.datetime, "datetime.datetime has no validator; supported: str, int, float"),
        (set[int], "set[int] has no validator"),
        (tuple[int, str], "tuple[int, str] has no validator"),
        (object, "object has no validator"),
        (list[complex], "complex has no validator"),
        (dict[int, str], "dict[int, str]: keys must be str, Id['table'] or string Literals, "
                         "got int"),
        (NotRequired[int], "NotRequired[int] is only meaningful on a field of a TypedDict"),
        (Id, "Id needs a table: Id['messages']"),
        (Doc, "Doc needs a table"),
        (Node, "field 'children' of tests.annotations.test_mapping.Node: "
               "tests.annotations.test_mapping.Node contains itself; validators cannot "
               "describe recursive types (type the recursive field as Any)"),
        ("Missing", "the forward reference 'Missing' could not be resolved"),
        (typing.ForwardRef("Missing"), "the forward reference ForwardRef('Missing')"),
        (Literal[1.5, float("inf")], "v.literal() takes a string, number or boolean, got inf"),
        (Literal[Mood.SAD], "literal <Mood.SAD: 'sad'> is not a string, number, boolean or None"),
        (enum.Enum("Empty", {}), "has no members"),
    ],
    ids=repr,
)
def test_unmappable_hints_are_errors_naming_the_type(hint: Any, message: str) -> None:
    with pytest.raises(AnnotationError) as info:
        shape_of(hint)
    assert message in info.value.message
    assert isinstance(info.value, TypeError)  # what a decorator given bad input raises
