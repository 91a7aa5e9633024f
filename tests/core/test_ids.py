"""ids.py: document ids encode their table number; malformed ids raise ValueError naming them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.ids import (
    _ALPHABET,
    _RANDOM_BYTES,
    TABLE_NAMES,
    _b32,
    _fletcher16,
    _varint,
    new_id,
    table_number_of,
    table_of,
)


def make_id(body: bytes) -> str:
    """An id string for an arbitrary body (with a correct checksum)."""
    return _b32(body + _fletcher16(body))


def invalid(doc_id: object, reason: str) -> AbstractContextManager[Any]:
    return pytest.raises(ValueError, match=re.escape(f"invalid id {doc_id!r}: {reason}"))


@pytest.mark.parametrize("number", [0, 1, 127, 128, 255, 16383, 16384, 100000, 2**31, 2**40])
def test_table_number_round_trip(number: int) -> None:
    for _ in range(20):
        doc_id = new_id(number)
        assert table_number_of(doc_id) == number
        assert set(doc_id) <= set(_ALPHABET)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**56))
def test_table_number_round_trip_property(number: int) -> None:
    assert table_number_of(new_id(number)) == number


@pytest.mark.parametrize(
    ("number", "length"), [(0, 28), (127, 28), (128, 29), (16384, 31), (100000, 31)]
)
def test_id_length_grows_with_the_varint(number: int, length: int) -> None:
    assert len(new_id(number)) == length


def test_ids_are_random() -> None:
    ids = {new_id(3) for _ in range(200)}
    assert len(ids) == 200


def test_alphabet_is_crockford_like_lowercase() -> None:
    assert len(_ALPHABET) == 32
    assert not set("ilou") & set(_ALPHABET)
    assert "".join(sorted(_ALPHABET)) == _ALPHABET


def test_varint() -> None:
    assert _varint(0) == b"\x00"
    assert _varint(127) == b"\x7f"
    assert _varint(128) == b"\x80\x01"
    assert _varint(300) == b"\xac\x02"


# -- malformed ids ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 5, b"abc", "", "short", "a" * 19, "a" * 41])
def test_not_an_id_string(bad: object) -> None:
    with invalid(bad, "not an id string"):
        table_number_of(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("char", ["i", "l", "o", "u", "A", "-", "_", " ", "é"])
def test_bad_characters(char: str) -> None:
    good = new_id(5)
    bad = good[:10] + char + good[11:]
    with invalid(bad, f"unexpected character {char!r}"):
        table_number_of(bad)


def test_uppercase_is_not_accepted() -> None:
    good = new_id(5)
    with pytest.raises(ValueError, match=re.escape(repr(good.upper()))):
        table_number_of(good.upper())


def test_wrong_checksum() -> None:
    good = new_id(7)
    for position in range(1, len(good)):
        char = good[position]
        other = _ALPHABET[(_ALPHABET.index(char) + 1) % 32]
        bad = good[:position] + other + good[position + 1 :]
        with pytest.raises(ValueError, match=re.escape(f"invalid id {bad!r}: ")):
            table_number_of(bad)


def test_single_character_change_is_caught_as_checksum_mismatch() -> None:
    good = new_id(7)
    last = good[-1]
    bad = good[:-1] + _ALPHABET[(_ALPHABET.index(last) + 1) % 32]
    with invalid(bad, "checksum mismatch"):
        table_number_of(bad)


def test_bad_padding() -> None:
    good = new_id(0)  # 28 characters carry 17 bytes: the first 4 bits are padding
    bad = "z" + good[1:]
    with invalid(bad, "bad padding"):
        table_number_of(bad)


@pytest.mark.parametrize("cut", [1, 2, 5, 8])
def test_truncated_ids(cut: int) -> None:
    good = new_id(42)
    bad = good[:-cut]
    with pytest.raises(ValueError, match=re.escape(f"invalid id {bad!r}: ")):
        table_number_of(bad)


@pytest.mark.parametrize("extra", ["0", "00", "a", "zz"])
def test_extended_ids(extra: str) -> None:
    bad = new_id(42) + extra
    with pytest.raises(ValueError, match=re.escape(f"invalid id {bad!r}: ")):
        table_number_of(bad)


def test_varint_that_never_ends() -> None:
    bad = make_id(b"\x80" * 18)
    with invalid(bad, "truncated"):
        table_number_of(bad)


@pytest.mark.parametrize("random_bytes", [_RANDOM_BYTES - 1, _RANDOM_BYTES + 1])
def test_wrong_number_of_random_bytes(random_bytes: int) -> None:
    bad = make_id(_varint(3) + b"\x11" * random_bytes)
    with invalid(bad, "wrong length"):
        table_number_of(bad)


def test_hand_built_id_decodes() -> None:
    assert table_number_of(make_id(_varint(300) + b"\x42" * _RANDOM_BYTES)) == 300


# -- table_of --------------------------------------------------------------------------


@pytest.fixture
def tables() -> Iterator[None]:
    token = TABLE_NAMES.set({1: "users", 2: "posts"})
    yield
    TABLE_NAMES.reset(token)


def test_table_of_is_none_outside_a_deployment() -> None:
    assert table_of(new_id(1)) is None


def test_table_of(tables: None) -> None:
    assert table_of(new_id(1)) == "users"
    assert table_of(new_id(2)) == "posts"
    stray = new_id(3)
    with invalid(stray, "no table numbered 3"):
        table_of(stray)
    with invalid("nope", "not an id string"):
        table_of("nope")
