"""The one tokenizer of text search: documents are indexed and queries are split by it alike.

A term is a maximal run of Unicode letters and digits (`str.isalnum`, so every script; an
underscore, an apostrophe and every other punctuation or space character separate terms),
after NFKC normalisation and Unicode case folding (`str.casefold`: "Straße" and "STRASSE"
are one term). There is no stemming and no stop-word list, so no language is assumed.
Terms longer than `MAX_TERM_CHARS` characters are cut to that length on both sides.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

MAX_TERM_CHARS = 32
MAX_QUERY_TERMS = 16  # Convex's limit on the terms of one search query

_TERM = re.compile(r"[^\W_]+")


def terms(text: str) -> list[str]:
    """Every term of `text`, in order, with repeats."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [t[:MAX_TERM_CHARS] for t in _TERM.findall(folded)]


@dataclass(frozen=True)
class Postings:
    """What one document contributes to a search index: its term counts and its length."""

    frequencies: dict[str, int]
    length: int

    @staticmethod
    def of(text: str) -> Postings:
        found = terms(text)
        return Postings(dict(Counter(found)), len(found))


@dataclass(frozen=True)
class QueryTerms:
    """The terms of a search query: every term matches exactly, the last also as a prefix."""

    exact: tuple[str, ...]
    prefix: str | None

    @staticmethod
    def of(text: str) -> QueryTerms:
        unique = list(dict.fromkeys(terms(text)))[:MAX_QUERY_TERMS]
        return QueryTerms(tuple(unique), unique[-1] if unique else None)

    def __bool__(self) -> bool:
        return bool(self.exact)
