"""markers.py: Id and Doc at runtime, Shape display names, and instances back to plain values."""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
from pydantic import BaseModel, Field, computed_field

from reactive_store import Doc, Id
from reactive_store.annotations.markers import DocOf, IdOf, is_pydantic_model, show, to_plain


@pytest.mark.parametrize("table", ["messages", Literal["messages"]])
def test_id_is_an_annotated_string(table: Any) -> None:
    hint = Id[table]
    assert get_origin(hint) is Annotated
    assert get_args(hint) == (str, IdOf("messages"))


@pytest.mark.parametrize("table", ["messages", Literal["messages"]])
def test_doc_is_an_annotated_dict(table: Any) -> None:
    hint = Doc[table]
    assert get_args(hint) == (dict[str, Any], DocOf("messages"))


@pytest.mark.parametrize("bad", ["", 5, Literal["a", "b"], str, None])
def test_id_and_doc_need_one_table_name(bad: Any) -> None:
    with pytest.raises(TypeError, match=re.escape(
            'Id[...] takes one table name, as in Id["messages"], got')):
        Id[bad]
    with pytest.raises(TypeError, match=re.escape("Doc[...] takes one table name")):
        Doc[bad]


def test_show_names_types_as_written() -> None:
    import datetime

    class Local:
        pass

    assert show(int) == "int"
    assert show(datetime.datetime) == "datetime.datetime"
    assert show(list[int]) == "list[int]"
    assert show(dict[str, Any]) == "dict[str, Any]"
    assert show(Local).endswith("Local")
    Local.__module__ = "_reactive_store_app_7.functions.chat"
    assert show(Local) == "test_show_names_types_as_written.<locals>.Local"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    when: float
    color: Color


class Outer(BaseModel):
    session_id: str = Field(alias="sessionId")
    inner: Inner
    tags: tuple[str, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shout(self) -> str:
        return self.session_id.upper()


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label: str = dataclasses.field(default="", init=False)


def test_to_plain_turns_models_into_wire_values() -> None:
    value = {"outer": Outer(sessionId="s1", inner=Inner(when=1, color=Color.BLUE),
                            tags=("a", "b")),
             "points": [Point(1.0, 2.0)], "color": Color.RED, "pair": (1, 2), "n": None}
    assert to_plain(value) == {
        # pydantic fields under their alias, computed fields left out, tuples as lists
        "outer": {"sessionId": "s1", "inner": {"when": 1.0, "color": "blue"},
                  "tags": ["a", "b"]},
        "points": [{"x": 1.0, "y": 2.0}],  # init=False fields are not the object's fields
        "color": "red", "pair": [1, 2], "n": None,
    }


def test_to_plain_leaves_plain_values_and_unknown_objects_alone() -> None:
    plain = {"a": [1, 2.5, "s", b"x", True, None, {"b": []}]}
    assert to_plain(plain) == plain
    odd = object()
    assert to_plain(odd) is odd  # the validator or encoder names it


def test_is_pydantic_model() -> None:
    assert is_pydantic_model(Outer)
    assert not is_pydantic_model(Point)
    assert not is_pydantic_model(Outer(sessionId="s", inner=Inner(when=1, color=Color.RED)))
