"""The one tokenizer: Unicode word boundaries, case folding, punctuation, long terms, and
query terms (deduplicated, at most 16, the last one also a prefix)."""

from __future__ import annotations

from reactive_store.storage.tokenizer import (
    MAX_QUERY_TERMS,
    MAX_TERM_CHARS,
    Postings,
    QueryTerms,
    terms,
)


def test_terms_fold_case_and_split_on_punctuation() -> None:
    assert terms("Deploy FAILED: retry? (x2)") == ["deploy", "failed", "retry", "x2"]
    assert terms("work_order don't e-mail a.b/c") == ["work", "order", "don", "t", "e", "mail",
                                                       "a", "b", "c"]
    assert terms("STRASSE straße Straße") == ["strasse"] * 3  # casefold, not lower()
    full_width = "\uff26\uff55\uff4c\uff4c"
    assert terms("\ufb01le " + full_width) == ["file", "full"]  # NFKC: ligatures, full width
    assert terms("ñandú Ελλάδα 東京") == ["ñandú", "ελλάδα", "東京"]  # every script
    assert terms("  \t\n... ") == []


def test_long_terms_are_cut_on_both_sides() -> None:
    long = "a" * (MAX_TERM_CHARS + 10)
    assert terms(long) == ["a" * MAX_TERM_CHARS]
    assert QueryTerms.of(long).exact == ("a" * MAX_TERM_CHARS,)


def test_postings_count_terms_and_length() -> None:
    p = Postings.of("to be or not to be")
    assert p.frequencies == {"to": 2, "be": 2, "or": 1, "not": 1}
    assert p.length == 6


def test_query_terms() -> None:
    q = QueryTerms.of("Deploy failed deploy FAIL")
    assert q.exact == ("deploy", "failed", "fail") and q.prefix == "fail"
    assert not QueryTerms.of("!!") and QueryTerms.of("!!").prefix is None
    many = QueryTerms.of(" ".join(f"w{i}" for i in range(40)))
    assert len(many.exact) == MAX_QUERY_TERMS and many.prefix == f"w{MAX_QUERY_TERMS - 1}"
