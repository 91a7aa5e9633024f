"""objects.py: TypedDicts, dataclasses and pydantic models as objects, and back to instances."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

import pytest
import typing_extensions
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, RootModel, field_validator
from pydantic.alias_generators import to_camel

from reactive_store import Id
from reactive_store.annotations.mapping import shape_of
from reactive_store.errors import AnnotationError, ValidationError
from reactive_store.validators import Validator, v


def same(hint: Any, expected: Validator) -> None:
    assert shape_of(hint).validator.to_json() == expected.to_json()


# -- TypedDict ---------------------------------------------------------------------------------

class Attachment(TypedDict):
    name: str
    size: int
    note: NotRequired[str]  # with `from __future__ import annotations`, as users write it


class Partial(TypedDict, total=False):
    a: int
    b: Required[Annotated[str, "kept"]]


class Extended(Attachment):
    owner: Id["users"]  # noqa: F821, UP037  (linters read the table as a forward reference)


def test_typeddict_fields_and_their_optionality() -> None:
    same(Attachment, v.object({"name": v.string(), "size": v.int64(),
                               "note": v.optional(v.string())}))
    same(Partial, v.object({"a": v.optional(v.int64()), "b": v.string()}))
    same(Extended, v.object({"name": v.string(), "size": v.int64(),
                             "note": v.optional(v.string()), "owner": v.id("users")}))


def test_typeddicts_stay_dicts() -> None:
    assert shape_of(Attachment).load is None


class Line(typing_extensions.TypedDict):
    """pydantic accepts only these inside models before Python 3.12."""

    text: str
    number: NotRequired[int]


def test_typing_extensions_typeddicts_too() -> None:
    same(Line, v.object({"text": v.string(), "number": v.optional(v.int64())}))


# -- dataclasses -------------------------------------------------------------------------------

@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)
    cache: dict[str, Any] = dataclasses.field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("x must not be negative")


def test_dataclass_fields_with_defaults_are_optional() -> None:
    same(Point, v.object({"x": v.float64(), "y": v.optional(v.float64()),
                          "tags": v.optional(v.array(v.string()))}))


def test_dataclasses_arrive_as_instances() -> None:
    shape = shape_of(Point)
    assert shape.load is not None
    assert shape.load({"x": 1.0}, "args.p") == Point(1.0)
    assert shape.load({"x": 1.0, "y": 2.0, "tags": ["a"]}, "args.p") == Point(1.0, 2.0, ["a"])
    with pytest.raises(ValidationError, match=re.escape(
            "args.p: tests.annotations.test_objects.Point: x must not be negative")):
        shape.load({"x": -1.0}, "args.p")


@dataclasses.dataclass
class WithInitVar:
    a: int
    secret: dataclasses.InitVar[str]


def test_initvar_is_an_error() -> None:
    with pytest.raises(AnnotationError, match="InitVar field 'secret' has no place"):
        shape_of(WithInitVar)


# -- pydantic ----------------------------------------------------------------------------------

class NewOrder(BaseModel):
    title: str = Field(min_length=3)
    priority: Literal["low", "high"] = "low"
    lines: list[Line] = []
    point: Point | None = None

    @field_validator("title")
    @classmethod
    def no_shouting(cls, value: str) -> str:
        if value.isupper():
            raise ValueError("no shouting")
        return value


class CamelCase(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    session_id: Id["chat_sessions"]  # noqa: F821, UP037
    created_at: float


def test_pydantic_model_fields() -> None:
    same(NewOrder, v.object({
        "title": v.string(),
        "priority": v.optional(v.union(v.literal("low"), v.literal("high"))),
        "lines": v.optional(v.array(shape_of(Line).validator)),
        "point": v.optional(v.union(shape_of(Point).validator, v.null())),
    }))


def test_pydantic_aliases_are_the_wire_names() -> None:
    same(CamelCase, v.object({"sessionId": v.id("chat_sessions"), "createdAt": v.float64()}))
    loaded = shape_of(CamelCase).load({"sessionId": "s", "createdAt": 1.0}, "a")  # type: ignore[misc]
    assert loaded == CamelCase(session_id="s", created_at=1.0)


def test_pydantic_models_arrive_validated_by_pydantic() -> None:
    load = shape_of(NewOrder).load
    assert load is not None
    order = load({"title": "Ship", "point": {"x": 2.0}}, "args.order")
    assert order == NewOrder(title="Ship", point=Point(2.0))
    assert isinstance(order.point, Point)
    with pytest.raises(ValidationError) as info:
        load({"title": "ab"}, "args.order")
    assert info.value.message == "args.order.title: String should have at least 3 characters"
    with pytest.raises(ValidationError, match=re.escape(
            "args.order.title: Value error, no shouting")):
        load({"title": "SHIP"}, "args.order")
    with pytest.raises(ValidationError, match=re.escape("args.order.point: Value error, x must "
                                                        "not be negative")):
        load({"title": "Ship", "point": {"x": -1.0}}, "args.order")


class Tags(RootModel[list[str]]):
    pass


def test_root_models_are_their_root() -> None:
    same(Tags, v.array(v.string()))
    assert shape_of(Tags).load(["a"], "x") == Tags(["a"])  # type: ignore[misc]


class Choices(BaseModel):
    a: int = Field(validation_alias=AliasChoices("a", "alpha"))


class TwoNames(BaseModel):
    a: int = Field(validation_alias="inA", serialization_alias="outA")


class Bad(BaseModel):
    when: Any
    other: set[int]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Choices, "field 'a' of tests.annotations.test_objects.Choices: only a plain string "
                  "alias can name a field on the wire"),
        (TwoNames, "field 'a' of tests.annotations.test_objects.TwoNames: it is read as 'inA' "
                   "but written as 'outA'; give it one alias"),
        (Bad, "field 'other' of tests.annotations.test_objects.Bad: set[int] has no validator"),
    ],
)
def test_model_errors_name_the_field(model: type, message: str) -> None:
    with pytest.raises(AnnotationError) as info:
        shape_of(model)
    assert info.value.message.startswith(message)


def test_unresolvable_class_hints_are_errors() -> None:
    class Later(TypedDict):
        item: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(AnnotationError, match="Later: its type hints cannot be resolved "
                                              r"\(NameError"):
        shape_of(Later)


def test_field_names_must_be_valid_convex_names() -> None:
    Weird = TypedDict("Weird", {"$bad": int})
    with pytest.raises(AnnotationError, match=re.escape("Weird: v.object(): field name '$bad' "
                                                        "starts with '$'")):
        shape_of(Weird)
