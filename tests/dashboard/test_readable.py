"""Readable JSON: int64 vs float64 kept, bytes and special floats, clear parse errors."""

from __future__ import annotations

import math

import pytest

from reactive_store.dashboard.readable import parse, parse_object, preview, to_text
from reactive_store.errors import ConvexError


def test_every_type_round_trips_through_the_text() -> None:
    value = {"i": 5, "f": 5.0, "neg0": -0.0, "nan": math.nan, "inf": math.inf,
             "b": b"\x00\xff", "s": "é", "n": None, "t": True, "list": [1, 2.5]}
    text = to_text(value)
    assert '"i": 5,' in text and '"f": 5.0' in text and '"s": "é"' in text
    back = parse(text, "x")
    assert back["i"] == 5 and isinstance(back["i"], int)
    assert back["f"] == 5.0 and isinstance(back["f"], float)
    assert math.copysign(1.0, back["neg0"]) < 0 and math.isnan(back["nan"])
    assert back["inf"] == math.inf and back["b"] == b"\x00\xff" and back["list"] == [1, 2.5]


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1,}', "the doc is not valid JSON: Expecting property name enclosed in double "
                  "quotes (line 1, column 9)"),
    ("{\n  'a': 1\n}", "(line 2, column 3)"),
    ('{"a": NaN}', "NaN is not JSON"),
    ('{"a": {"$bytes": "%%%"}}', "the doc:"),
    (5, "the doc must be JSON text"),
])
def test_bad_text_says_what_and_where(text: object, message: str) -> None:
    with pytest.raises(ConvexError) as failed:
        parse(text, "the doc")
    assert message in str(failed.value)


def test_objects_only_where_an_object_is_needed() -> None:
    assert parse_object('{"a": 1}', "args") == {"a": 1}
    with pytest.raises(ConvexError, match="args must be a JSON object"):
        parse_object("[1]", "args")


def test_preview_is_one_short_line() -> None:
    assert preview("plain") == "plain" and preview({"a": [1, 2]}) == '{"a": [1, 2]}'
    long = preview("x" * 500)
    assert len(long) == 120 and long.endswith("…")
