"""Paginated queries: cursors bound to one query, the query journal, and a page's limits.

A cursor is opaque to clients. It carries a fingerprint of the query that made it (table,
index, range and order, or a search's terms and filters) and a position: just after one
index key, or the end of the query's results. A cursor handed to another query is refused
with `InvalidCursor`, which the official clients recognise and answer by starting over.

A query's journal records what one run decided that the next run of the same
subscription must repeat: the end cursor of the page `paginate` returned. A re-run then
reads exactly `(cursor, end cursor]`, whatever its size, so adjacent pages never overlap
or leave a gap however documents come and go (as Convex's `QueryJournal` does).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from reactive_store.errors import ConvexError, QueryError
from reactive_store.limits import Limits

_VERSION = b"\x01"
_AFTER = b"A"
_END = b"E"
_FINGERPRINT_BYTES = 8
_JOURNAL_PREFIX = "page1:"
SOFT_MAX_PAGE_LEN = 6144  # a page longer than this is worth splitting (Convex: 3/4 of 8192)


class InvalidCursor(ConvexError):
    """A cursor (or journal end cursor) that another query made, or one no query made.

    Its data is what the official clients look for to reset a paginated query.
    """

    def __init__(self, detail: str) -> None:
        super().__init__({"isConvexSystemError": True, "paginationError": "InvalidCursor"})
        self.message = (f"InvalidCursor: Tried to run a query starting from a cursor, but it "
                        f"looks like this cursor is from a different query ({detail}).")
        self.args = (self.message,)


def fingerprint(*parts: bytes | str) -> bytes:
    """A short hash of what defines a query's order of results."""
    digest = hashlib.blake2b(digest_size=_FINGERPRINT_BYTES)
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(4, "big"))
        digest.update(raw)
    return digest.digest()


@dataclass(frozen=True)
class Cursor:
    """A position in one query's results: after `key`, or the end when `key` is None."""

    query: bytes  # the fingerprint of the query that made it
    key: bytes | None

    @property
    def at_end(self) -> bool:
        return self.key is None

    def encode(self) -> str:
        tail = _END if self.key is None else _AFTER + self.key
        return base64.urlsafe_b64encode(_VERSION + self.query + tail).decode()


def decode_cursor(text: Any, query: bytes, what: str = "cursor") -> Cursor:
    """A cursor of the query fingerprinted `query`, or an error naming what is wrong."""
    if not isinstance(text, str):
        raise QueryError(f"paginate: {what} must be a string or None, got {text!r}")
    try:
        raw = base64.b64decode(text.encode(), altchars=b"-_", validate=True)
    except ValueError:
        raw = b""
    head = 1 + _FINGERPRINT_BYTES
    if len(raw) <= head or raw[:1] != _VERSION or raw[head:head + 1] not in (_AFTER, _END):
        raise QueryError(f"paginate: malformed {what} {text!r}: not a cursor that paginate "
                         "returned")
    if raw[1:head] != query:
        raise InvalidCursor(f"the {what} was made by another table, index, range or order")
    kind, key = raw[head:head + 1], raw[head + 1:]
    if kind == _END:
        if key:
            raise QueryError(f"paginate: malformed {what} {text!r}")
        return Cursor(query, None)
    return Cursor(query, key)


def encode_journal(end_cursor: str | None) -> str | None:
    """The journal a run leaves: its page's end cursor, or None when it did not paginate."""
    return None if end_cursor is None else _JOURNAL_PREFIX + end_cursor


def decode_journal(journal: str | None) -> str | None:
    """The end cursor a journal recorded (None for the empty journal)."""
    if journal is None:
        return None
    if not isinstance(journal, str) or not journal.startswith(_JOURNAL_PREFIX):
        raise QueryError(f"malformed query journal {journal!r}: it must be one this server "
                         "returned with the query's result")
    return journal[len(_JOURNAL_PREFIX):]


class PageJournal:
    """Pagination across the runs of one function call: the end cursor the previous run of
    the same subscription recorded (`previous_end`) and the one this run records.

    Invariant: one paginated query per run (as Convex), so the journal has one end cursor.
    """

    def __init__(self, journal: str | None = None) -> None:
        self._journal = journal
        self.recorded_end: str | None = None
        self._started = False

    @property
    def previous_end(self) -> str | None:
        return decode_journal(self._journal)

    def start(self) -> None:
        if self._started:
            raise QueryError("This query or mutation function ran multiple paginated queries. "
                             "Only a single paginated query is supported in each function.")
        self._started = True

    def open(self, options: Any, limits: Limits, query: bytes, stable: bool
             ) -> tuple[PageOptions, Cursor | None, Cursor | None]:
        """Begin this run's page of `query`: its checked options, and where it starts and
        ends (cursors from another query refused)."""
        self.start()
        opts = PageOptions.parse(options, limits)
        start = None if opts.cursor is None else decode_cursor(opts.cursor, query)
        end_text = self.end_cursor(opts.end_cursor, stable)
        end = None if end_text is None else decode_cursor(end_text, query, "end cursor")
        if opts.num_items < 1 and end is None:
            raise QueryError("paginate: numItems must be at least 1")
        return opts, start, end

    def end_cursor(self, explicit: str | None, stable: bool) -> str | None:
        """Where the page ends: the caller's `endCursor`, else, for a stable page, the end
        the previous run recorded (None: the page is `numItems` long)."""
        if explicit is not None or not stable:
            return explicit
        return self.previous_end

    def record(self, end_cursor: str) -> None:
        self.recorded_end = end_cursor

    def journal(self) -> str | None:
        return encode_journal(self.recorded_end)


@dataclass(frozen=True)
class PageOptions:
    """`paginate()`'s options, checked."""

    num_items: int
    cursor: str | None
    end_cursor: str | None
    max_rows: int | None
    max_bytes: int | None

    @classmethod
    def parse(cls, options: Any, limits: Limits) -> PageOptions:
        if not isinstance(options, dict) or "numItems" not in options:
            raise QueryError("paginate() takes {'numItems': n, 'cursor': str | None}")
        n = _count(options["numItems"], "numItems")
        if n > limits.documents_scanned:
            raise QueryError(f"paginate: numItems {n} is more than one query may read "
                             f"({limits.documents_scanned})")
        rows = _limit(options.get("maximumRowsRead"), "maximumRowsRead")
        nbytes = _limit(options.get("maximumBytesRead"), "maximumBytesRead")
        end = options.get("endCursor")
        return cls(n, options.get("cursor"), end, rows, nbytes)


def _count(n: Any, name: str) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise QueryError(f"paginate {name}: expected a non-negative integer, got {n!r}")
    return n


def _limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    n = _count(value, name)
    if n == 0:
        raise QueryError(f"paginate: {name} must be greater than 0")
    return n


class PageBudget:
    """What a page has read so far, against the caller's limits and the transaction's.

    Hard limits (`maximumRowsRead`, `maximumBytesRead`) stop a page that has no end cursor
    early: it is then `SplitRequired`. Reading past three quarters of a limit, or returning
    more than SOFT_MAX_PAGE_LEN documents, makes it `SplitRecommended`.
    """

    def __init__(self, options: PageOptions, limits: Limits, bounded: bool) -> None:
        self.enforce = not bounded  # a page up to an end cursor must read all of it
        self.max_rows = options.max_rows
        self.max_bytes = options.max_bytes
        self.soft_rows = min(options.max_rows or limits.documents_scanned,
                             limits.documents_scanned) * 3 // 4
        self.soft_bytes = min(options.max_bytes or limits.bytes_read, limits.bytes_read) * 3 // 4
        self.rows = 0
        self.bytes = 0
        self.hit_limit = False

    def rows_left(self) -> int | None:
        """How many more rows this page may read (None: no hard row limit)."""
        if not self.enforce or self.max_rows is None:
            return None
        return max(0, self.max_rows - self.rows)

    def exhausted(self) -> bool:
        """True (and remembered) once a hard limit is reached; checked before each row."""
        if self.enforce and ((self.max_rows is not None and self.rows >= self.max_rows)
                             or (self.max_bytes is not None and self.bytes >= self.max_bytes)):
            self.hit_limit = True
        return self.hit_limit

    def read(self, nbytes: int) -> None:
        self.rows += 1
        self.bytes += nbytes

    def status(self, page_len: int) -> str | None:
        if self.hit_limit:
            return "SplitRequired"
        if self.rows > self.soft_rows or self.bytes > self.soft_bytes:
            return "SplitRecommended"
        if page_len > SOFT_MAX_PAGE_LEN:
            return "SplitRecommended"
        return None


def split_position(positions: list[bytes]) -> bytes | None:
    """Where to split a page whose rows were read at `positions`: the middle one, when the
    page has more than two rows (a split must leave both halves something)."""
    return positions[len(positions) // 2] if len(positions) > 2 else None
