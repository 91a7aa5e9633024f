"""engine/pagination.py alone: cursor and journal encodings, the page budget, the split."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_store.engine import pagination
from reactive_store.engine.pagination import (
    Cursor,
    InvalidCursor,
    PageBudget,
    PageJournal,
    PageOptions,
    decode_cursor,
    decode_journal,
    encode_journal,
    fingerprint,
    split_position,
)
from reactive_store.errors import QueryError
from reactive_store.limits import Limits

QUERY = fingerprint("index", "items", "by_rank", b"", b"-", "asc")


@given(st.one_of(st.none(), st.binary(max_size=64)))
def test_cursor_round_trips(key: bytes | None) -> None:
    cursor = Cursor(QUERY, key)
    text = cursor.encode()
    assert decode_cursor(text, QUERY) == cursor
    assert decode_journal(encode_journal(text)) == text


def test_fingerprint_separates_its_parts() -> None:
    assert fingerprint("ab", "c") != fingerprint("a", "bc")
    assert fingerprint(b"x") == fingerprint("x") and len(QUERY) == 8


def test_a_cursor_of_another_query_is_invalid_cursor() -> None:
    other = fingerprint("index", "items", "by_rank", b"", b"-", "desc")
    with pytest.raises(InvalidCursor) as raised:
        decode_cursor(Cursor(other, b"k").encode(), QUERY, "end cursor")
    assert raised.value.data == {"isConvexSystemError": True, "paginationError": "InvalidCursor"}
    assert "end cursor was made by another" in raised.value.message


@pytest.mark.parametrize("text", [
    "", "%%%", base64.urlsafe_b64encode(b"\x02" + QUERY + b"E").decode(),
    base64.urlsafe_b64encode(b"\x01" + QUERY + b"X").decode(),
    base64.urlsafe_b64encode(b"\x01" + QUERY + b"Eextra").decode(),
    base64.urlsafe_b64encode(b"\x01" + QUERY).decode(),
])
def test_malformed_cursors_are_refused(text: str) -> None:
    with pytest.raises(QueryError, match="malformed cursor"):
        decode_cursor(text, QUERY)


def test_journal_encoding() -> None:
    assert encode_journal(None) is None and decode_journal(None) is None
    with pytest.raises(QueryError, match="malformed query journal"):
        decode_journal("cursor-without-prefix")


def test_page_journal_allows_one_paginated_query() -> None:
    journal = PageJournal(encode_journal("c1"))
    assert journal.previous_end == "c1" and journal.journal() is None
    journal.start()
    journal.record("c2")
    assert journal.journal() == encode_journal("c2")
    with pytest.raises(QueryError, match="multiple paginated queries"):
        journal.start()


def options(**more: object) -> PageOptions:
    return PageOptions.parse({"numItems": 5, "cursor": None, **more}, Limits())


def test_budget_hard_limits_only_without_an_end_cursor() -> None:
    budget = PageBudget(options(maximumRowsRead=2), Limits(), bounded=False)
    assert budget.rows_left() == 2 and not budget.exhausted()
    budget.read(10)
    budget.read(10)
    assert budget.rows_left() == 0 and budget.exhausted() and budget.status(2) == "SplitRequired"
    bounded = PageBudget(options(maximumRowsRead=2, maximumBytesRead=5), Limits(), True)
    for _ in range(3):
        bounded.read(10)
    assert bounded.rows_left() is None and not bounded.exhausted()
    assert bounded.status(3) == "SplitRecommended"


def test_budget_bytes_and_soft_limits() -> None:
    budget = PageBudget(options(maximumBytesRead=100), Limits(), bounded=False)
    budget.read(60)
    assert not budget.exhausted() and budget.status(1) is None
    budget.read(30)
    assert budget.status(2) == "SplitRecommended"  # past 3/4 of 100 bytes
    budget.read(10)
    assert budget.exhausted() and budget.status(3) == "SplitRequired"
    small = Limits(documents_scanned=8)
    plain = PageBudget(options(), small, bounded=False)
    for _ in range(7):
        plain.read(1)
    assert plain.status(7) == "SplitRecommended"  # past 3/4 of the transaction's rows


def test_long_pages_recommend_a_split() -> None:
    budget = PageBudget(options(), Limits(), bounded=True)
    assert budget.status(pagination.SOFT_MAX_PAGE_LEN) is None
    assert budget.status(pagination.SOFT_MAX_PAGE_LEN + 1) == "SplitRecommended"


def test_split_position_is_the_middle_of_more_than_two_rows() -> None:
    assert split_position([]) is None and split_position([b"a", b"b"]) is None
    assert split_position([b"a", b"b", b"c"]) == b"b"
    assert split_position([b"a", b"b", b"c", b"d"]) == b"c"
