"""timestamps.py: u64 timestamps as 8 little-endian bytes in standard base64."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.errors import BadRequest
from reactive_store.sync.protocol import decode_ts, encode_ts


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0, "AAAAAAAAAAA="),
        (1, "AQAAAAAAAAA="),
        (256, "AAEAAAAAAAA="),
        (2**64 - 1, "//////////8="),
        (2**63, "AAAAAAAAAIA="),
    ],
)
def test_known_encodings(ts: int, text: str) -> None:
    assert encode_ts(ts) == text
    assert decode_ts(text) == ts


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_round_trip(ts: int) -> None:
    text = encode_ts(ts)
    assert len(text) == 12
    assert decode_ts(text) == ts


def test_realistic_nanosecond_timestamp() -> None:
    ts = 1_732_345_678_123_456_789
    assert decode_ts(encode_ts(ts)) == ts


@pytest.mark.parametrize("bad", [None, 0, 1.5, b"AAAAAAAAAAA=", ["AAAAAAAAAAA="]])
def test_non_strings_are_refused(bad: Any) -> None:
    with pytest.raises(BadRequest, match="timestamp must be a base64 string") as info:
        decode_ts(bad)
    assert info.value.code == "InvalidTimestamp"


@pytest.mark.parametrize(
    "bad", ["!!!!!!!!!!!=", "AAAAAAAAAAA", "AAAAAAAAAA==A", "AAAA AAAAAA=", "é", "-_AAAAAAAAA="]
)
def test_invalid_base64_is_refused(bad: str) -> None:
    with pytest.raises(BadRequest, match="is not valid base64") as info:
        decode_ts(bad)
    assert info.value.code == "InvalidTimestamp"
    assert repr(bad) in info.value.message


@pytest.mark.parametrize("n", [0, 1, 4, 7, 9, 16])
def test_wrong_length_is_refused(n: int) -> None:
    text = base64.b64encode(b"\x01" * n).decode()
    with pytest.raises(BadRequest, match="must encode 8 bytes") as info:
        decode_ts(text)
    assert info.value.code == "InvalidTimestamp"
