"""ids.py: Convex-format ids encode their table number; legacy ids still decode; malformed
ids raise ValueError naming the id and what is wrong."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store import ids as ids_module
from reactive_store.ids import (
    TABLE_NAMES,
    convex_form,
    legacy_form,
    new_id,
    table_number_of,
    table_of,
)
from tests.id_formats import CONVEX_ALPHABET, convex_id, decode_convex_id, legacy_id, raw_id


def invalid(doc_id: object, reason: str) -> AbstractContextManager[Any]:
    return pytest.raises(ValueError, match=re.escape(f"invalid id {doc_id!r}: {reason}"))


def stability_internal_id() -> bytes:
    out = [251]
    for _ in range(15):
        out.append(out[-1] * 251 % 256)
    return bytes(out)


def test_convex_published_stability_vector() -> None:
    # Convex's own test: table 1017, internal id 251, 251^2, ... (mod 256).
    expected = "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"
    assert convex_id(1017, stability_internal_id()) == expected  # the test's encoder
    assert table_number_of(expected) == 1017


@pytest.mark.parametrize("number", [1, 127, 128, 10000, 10001, 16383, 16384, 2**21,
                                    2**28, 2**32 - 1])
def test_new_ids_are_convex_ids(number: int) -> None:
    for _ in range(20):
        doc_id = new_id(number)
        assert decode_convex_id(doc_id)[0] == number  # independent decoder
        assert table_number_of(doc_id) == number


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=2**32 - 1), st.binary(min_size=16, max_size=16))
def test_any_convex_id_decodes(number: int, internal: bytes) -> None:
    assert table_number_of(convex_id(number, internal)) == number


@pytest.mark.parametrize(("number", "length"), [(1, 31), (127, 31), (128, 32), (10001, 32),
                                                (16384, 34), (2**21, 36), (2**28, 37)])
def test_id_length_grows_with_the_varint(number: int, length: int) -> None:
    assert len(new_id(number)) == length


def test_ids_are_random() -> None:
    assert len({new_id(10001) for _ in range(200)}) == 200


@pytest.mark.parametrize("number", [0, -1, 2**32])
def test_new_id_refuses_table_numbers_outside_u32(number: int) -> None:
    with pytest.raises(ValueError, match=f"table number {number} is not in 1..4294967295"):
        new_id(number)


# -- legacy ids --------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 5, 127, 128, 3000, 16383])
def test_legacy_ids_still_decode(number: int) -> None:
    for _ in range(20):
        old = legacy_id(number)
        assert len(old) in (28, 29)
        assert table_number_of(old) == number


def test_legacy_checksum_is_checked() -> None:
    good = legacy_id(7)
    bad = good[:-1] + CONVEX_ALPHABET[(CONVEX_ALPHABET.index(good[-1]) + 1) % 32]
    with invalid(bad, "checksum mismatch"):
        table_number_of(bad)


def test_legacy_bad_padding() -> None:
    good = legacy_id(5)  # 28 characters carry 17 bytes: the first 4 bits are padding
    bad = "z" + good[1:]
    with invalid(bad, "bad padding"):
        table_number_of(bad)


def test_legacy_wrong_number_of_random_bytes() -> None:
    bad = legacy_id(300, bytes(13))  # 2 + 13 + 2 bytes: 28 characters, not 29
    with invalid(bad, "bad length 28 for a table number of 2 bytes"):
        table_number_of(bad)


# -- malformed ids ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 5, b"abc"])
def test_not_an_id_string(bad: object) -> None:
    with invalid(bad, "not an id string"):
        table_number_of(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "short", "a" * 19, "a" * 33, "a" * 35, "a" * 38,
                                 "a" * 100])
def test_bad_length(bad: str) -> None:
    with invalid(bad, f"bad length {len(bad)} (an id has 31, 32, 34, 36 or 37 characters)"):
        table_number_of(bad)


# int() would read several of these as base-32 digits, a sign, a separator or white space
# (a Unicode digit too): the decoding must refuse them all the same.
@pytest.mark.parametrize("char", ["i", "l", "o", "u", "A", "Z", "V", "-", "+", "_", " ", "\t",
                                  "é", "=", "\u0663"])
def test_bad_characters(char: str) -> None:
    good = new_id(10001)
    bad = good[:10] + char + good[11:]
    with invalid(bad, f"unexpected character {char!r}"):
        table_number_of(bad)


def test_uppercase_is_not_accepted() -> None:
    good = new_id(10001)
    with invalid(good.upper(), "unexpected character"):
        table_number_of(good.upper())


def test_every_single_character_change_is_caught() -> None:
    good = new_id(10007)
    for position in range(len(good)):
        other = CONVEX_ALPHABET[(CONVEX_ALPHABET.index(good[position]) + 1) % 32]
        bad = good[:position] + other + good[position + 1:]
        with pytest.raises(ValueError, match=re.escape(f"invalid id {bad!r}: ")):
            table_number_of(bad)


def test_checksum_mismatch() -> None:
    body = b"\x91\x4e" + bytes(range(16))  # table 10001
    good, bad = raw_id(body), raw_id(body, spoil_footer=True)
    assert table_number_of(good) == 10001
    with invalid(bad, "checksum mismatch"):
        table_number_of(bad)


def test_bad_padding() -> None:
    # 31 characters carry 19 bytes and 3 trailing zero bits: set one of them.
    good = new_id(5)
    bad = good[:-1] + CONVEX_ALPHABET[CONVEX_ALPHABET.index(good[-1]) | 1]
    with invalid(bad, "bad padding"):
        table_number_of(bad)


def test_zero_table_number() -> None:
    bad = convex_id(0, bytes(range(16)))
    with invalid(bad, "table number 0"):
        table_number_of(bad)


def test_truncated_varint() -> None:
    bad = raw_id(b"\xff" * 5 + bytes(14))  # all five first bytes continue
    with invalid(bad, "truncated table number varint"):
        table_number_of(bad)


def test_table_number_beyond_u32() -> None:
    bad = raw_id(b"\xff\xff\xff\xff\x7f" + bytes(16))  # 35 bits
    with invalid(bad, "table number too large"):
        table_number_of(bad)


def test_varint_longer_than_the_length_allows() -> None:
    bad = raw_id(b"\x91\x4e" + bytes(15))  # 31 characters: 19 bytes, a 2-byte varint
    with invalid(bad, "bad length 31 for a table number of 2 bytes"):
        table_number_of(bad)


# -- table_of --------------------------------------------------------------------------


@pytest.fixture
def tables() -> Iterator[None]:
    token = TABLE_NAMES.set({10001: "users", 10002: "posts", 3: "legacy"})
    yield
    TABLE_NAMES.reset(token)


def test_table_of_is_none_outside_a_deployment() -> None:
    assert table_of(new_id(10001)) is None


def test_table_of(tables: None) -> None:
    assert table_of(new_id(10001)) == "users"
    assert table_of(new_id(10002)) == "posts"
    assert table_of(new_id(3)) == "legacy"
    assert table_of(legacy_id(3)) == "legacy"
    stray = new_id(10003)
    with invalid(stray, "no table numbered 10003"):
        table_of(stray)
    with invalid("nope", "bad length 4"):
        table_of("nope")


def test_legacy_zero_table_number() -> None:
    bad = legacy_id(0)
    with invalid(bad, "table number 0"):
        table_number_of(bad)


# -- legacy ids in Convex's format (snapshots) --------------------------------------------


@pytest.mark.parametrize("number", [1, 5, 127, 128, 3000])
def test_convex_form_of_a_legacy_id_keeps_its_table_and_reverses(number: int) -> None:
    old = legacy_id(number)
    converted = convex_form(old)
    assert decode_convex_id(converted)[0] == number  # a Convex id, by the tests' decoder
    assert table_number_of(converted) == number
    assert legacy_form(converted) == old


def test_convex_form_leaves_convex_ids_and_refuses_non_ids() -> None:
    doc_id = new_id(10001)
    assert convex_form(doc_id) == doc_id
    with invalid("0" * 27 + "1", "checksum mismatch"):
        convex_form("0" * 27 + "1")


@pytest.mark.parametrize("text", ["short", "a" * 31, convex_id(10001, bytes(16))])
def test_legacy_form_is_none_for_everything_else(text: str) -> None:
    assert legacy_form(text) is None


def test_new_ids_never_look_like_converted_legacy_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """new_id draws again when its random bytes would end with the legacy check of the rest
    (1 in 65,025), so an import never mistakes a new id for a converted legacy one."""
    marker_bytes = _legacy_internal(10001)
    draws = iter([marker_bytes, bytes(range(16))])
    monkeypatch.setattr(ids_module, "_random_bytes", lambda n: next(draws))
    made = new_id(10001)
    assert decode_convex_id(made) == (10001, bytes(range(16)))
    assert legacy_form(made) is None


def _legacy_internal(number: int) -> bytes:
    """16 internal bytes that make a converted legacy id in table `number`."""
    return decode_convex_id(convex_form(legacy_id(number)))[1]


def test_fresh_ids_do_not_repeat_across_a_fork() -> None:
    """Random bytes are read ahead; a forked child must not hand out its parent's."""
    new_id(10001)  # the parent has bytes read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        os.close(read)
        os.write(write, " ".join(new_id(10001) for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_id(10001) for _ in range(50)}
    assert len(child) == 50 and not child & parent


def test_ids_from_many_threads_are_all_distinct() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_id(10001) for _ in range(2000)], range(8)))
    made = [i for batch in batches for i in batch]
    assert len(set(made)) == len(made)
