"""Issue 12 item 3: values nested past the limit are refused cleanly, never a RecursionError.

Clients can send arguments nested as deep as JSON parsers allow (orjson: 1,024 levels) and a
function can build a Python value of any depth; every walk in values.py must stop at
MAX_NESTING_DEPTH (64, Convex's limit) with an error that names the limit.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from reactive_store.errors import BadRequest, ValidationError
from reactive_store.values import MAX_NESTING_DEPTH, decode, encode, export_clean

INTEGER_7 = {"$integer": "BwAAAAAAAAA="}


def nested_lists(depth: int, leaf: Any = 1.0) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def nested_objects(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def test_the_limit_is_convexs() -> None:
    assert MAX_NESTING_DEPTH == 64


@pytest.mark.parametrize("build", [nested_lists, nested_objects])
def test_decode_accepts_the_limit_and_refuses_one_more(build: Any) -> None:
    assert decode(build(MAX_NESTING_DEPTH)) == build(MAX_NESTING_DEPTH)
    with pytest.raises(BadRequest, match=f"deeper than {MAX_NESTING_DEPTH} levels"):
        decode(build(MAX_NESTING_DEPTH + 1))


@pytest.mark.parametrize("depth", [500, 1000, 100_000])
def test_decode_refuses_very_deep_values_without_recursing(depth: int) -> None:
    with pytest.raises(BadRequest, match="deeper than 64 levels"):
        decode(nested_lists(depth))
    with pytest.raises(BadRequest, match="deeper than 64 levels"):
        decode(nested_objects(depth))


def test_decode_of_json_as_clients_send_it() -> None:
    """What /api/mutation and the socket see: 500 levels parsed by orjson, then decoded."""
    text = '{"args": ' + "[" * 500 + "1" + "]" * 500 + "}"
    with pytest.raises(BadRequest, match="deeper than 64"):
        decode(orjson.loads(text))


def test_special_objects_are_leaves() -> None:
    value = nested_lists(MAX_NESTING_DEPTH, INTEGER_7)
    assert decode(value) == nested_lists(MAX_NESTING_DEPTH, 7)
    assert encode(nested_lists(MAX_NESTING_DEPTH, 7)) == value


@pytest.mark.parametrize("build", [nested_lists, nested_objects])
def test_encode_accepts_the_limit_and_refuses_one_more(build: Any) -> None:
    assert encode(build(MAX_NESTING_DEPTH)) == build(MAX_NESTING_DEPTH)
    with pytest.raises(ValidationError, match=f"deeper than {MAX_NESTING_DEPTH} levels") as caught:
        encode(build(MAX_NESTING_DEPTH + 1), "return value")
    assert caught.value.message.startswith("return value")


@pytest.mark.parametrize("depth", [500, 5000])
def test_encode_refuses_very_deep_values_without_recursing(depth: int) -> None:
    with pytest.raises(ValidationError, match="deeper than 64 levels"):
        encode(nested_lists(depth))
    with pytest.raises(ValidationError, match="deeper than 64 levels"):
        encode(nested_objects(depth, (1, 2)))  # a tuple takes the checked (slow) path


def test_export_clean_refuses_very_deep_values() -> None:
    assert export_clean(nested_lists(MAX_NESTING_DEPTH, 3)) == nested_lists(
        MAX_NESTING_DEPTH, "3")
    with pytest.raises(ValidationError, match="deeper than 64 levels"):
        export_clean(nested_objects(5000))
