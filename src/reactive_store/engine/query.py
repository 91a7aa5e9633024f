"""`ctx.db.query(table)`: index ranges, ordering, filters, and the ways to consume them.

Reading is recorded as it happens: every scan registers a `ScanRecord` whose consumed
interval grows only as rows are handed to the function, so `take(n)` and `first()` leave a
read set that ends at the last key returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reactive_store.engine.intervals import Interval
from reactive_store.engine.pagination import (
    Cursor,
    PageBudget,
    fingerprint,
    split_position,
)
from reactive_store.engine.search import SearchFilter, SearchQuery, SearchReader
from reactive_store.engine.stream import DocumentStream, count_argument
from reactive_store.errors import QueryError
from reactive_store.keys import TOP, encode_tuple, encode_value, prefix_end, successor
from reactive_store.schema import BY_CREATION_TIME, BY_ID, Index, TableDefinition, all_indexes
from reactive_store.types import Document, Value

_FIRST_BATCH = 16
_MAX_BATCH = 1024


@dataclass
class ScanRecord:
    """One index range a function scanned and how far into it the function consumed.

    `last_key` is the last key handed to the function; `exhausted` turns True once the
    scan reached the end of its range, after which the whole range counts as read.
    """

    table: str
    index: str
    lo: bytes
    hi: bytes | None
    desc: bool
    last_key: bytes | None = None
    exhausted: bool = False

    def consumed(self) -> Interval | None:
        if self.hi is not None and self.hi <= self.lo:
            return None  # an empty range (e.g. gt(5).lt(3)) reads nothing
        if self.exhausted:
            return Interval(self.lo, self.hi)
        if self.last_key is None:
            return None
        if self.desc:
            return Interval(self.last_key, self.hi)
        return Interval(self.lo, successor(self.last_key))


class IndexReader(SearchReader, Protocol):
    """What a Query needs from its transaction: tables, range values, and recorded scans
    (and what a search needs, for `with_search_index`)."""

    def table_definition(self, table: str, system: bool = False) -> TableDefinition: ...

    def coerce(self, table: str, field: str, value: Value) -> Value: ...

    def record_scan(self, record: ScanRecord) -> None: ...

    async def scan(self, table: str, index: str, lo: bytes, hi: bytes | None, desc: bool,
                   limit: int) -> list[tuple[bytes, Document, int]]:
        """Up to `limit` rows of [lo, hi) in order: (key, document, stored size)."""
        ...


class IndexRange:
    """The `q` of `with_index(name, lambda q: ...)`: equalities on a prefix, then one range."""

    def __init__(self, index: Index, coerce: Callable[[str, Value], Value]) -> None:
        self._index = index
        self._coerce = coerce
        self._eq: list[Value] = []
        self._lower: tuple[Value, bool] | None = None
        self._upper: tuple[Value, bool] | None = None
        self._range_field: str | None = None

    def _next_field(self, field: str, op: str) -> None:
        fields = self._index.key_fields
        if self._range_field is not None:
            if field != self._range_field or op == "eq":
                raise QueryError(
                    f"index {self._index.name!r}: {op}({field!r}) after a range on "
                    f"{self._range_field!r}; only one range, on the field after the equalities"
                )
            return
        position = len(self._eq)
        if position >= len(fields) or fields[position] != field:
            expected = fields[position] if position < len(fields) else "nothing more"
            raise QueryError(
                f"index {self._index.name!r} over {list(fields)}: {op}({field!r}) "
                f"must name the next field in order, {expected!r}"
            )

    def eq(self, field: str, value: Value) -> IndexRange:
        self._next_field(field, "eq")
        self._eq.append(self._coerce(field, value))
        return self

    def _bound(self, field: str, value: Value, op: str, lower: bool, inclusive: bool) -> IndexRange:
        self._next_field(field, op)
        if (self._lower if lower else self._upper) is not None:
            raise QueryError(f"index {self._index.name!r}: two {'lower' if lower else 'upper'} "
                             f"bounds on {field!r}")
        self._range_field = field
        bound = (self._coerce(field, value), inclusive)
        if lower:
            self._lower = bound
        else:
            self._upper = bound
        return self

    def gt(self, field: str, value: Value) -> IndexRange:
        return self._bound(field, value, "gt", True, False)

    def gte(self, field: str, value: Value) -> IndexRange:
        return self._bound(field, value, "gte", True, True)

    def lt(self, field: str, value: Value) -> IndexRange:
        return self._bound(field, value, "lt", False, False)

    def lte(self, field: str, value: Value) -> IndexRange:
        return self._bound(field, value, "lte", False, True)

    def interval(self) -> tuple[bytes, bytes | None]:
        """The byte range [lo, hi) of keys this range selects (hi None = unbounded)."""
        try:
            return self._interval()
        except (TypeError, ValueError) as exc:
            raise QueryError(f"index {self._index.name!r}: {exc}") from None

    def _interval(self) -> tuple[bytes, bytes | None]:
        prefix = encode_tuple(self._eq)
        lo = prefix
        hi: bytes | None = prefix_end(prefix) if prefix else None
        if self._lower is not None:
            value, inclusive = self._lower
            out = bytearray(prefix)
            encode_value(value, out)
            lo = bytes(out) if inclusive else bytes(out) + TOP
        if self._upper is not None:
            value, inclusive = self._upper
            out = bytearray(prefix)
            encode_value(value, out)
            hi = bytes(out) + TOP if inclusive else bytes(out)
        return lo, hi


class Query(DocumentStream):
    """A lazy query over one table; nothing is read until it is consumed."""

    def __init__(self, reader: IndexReader, table: str, system: bool = False) -> None:
        super().__init__(table)
        self._reader = reader
        self._definition = reader.table_definition(table, system)
        self._index = all_indexes(self._definition)[BY_CREATION_TIME]
        self._range: IndexRange | None = None
        self._desc = False
        self._index_chosen = False

    def with_index(
        self, name: str, build: Callable[[IndexRange], IndexRange] | None = None
    ) -> Query:
        if self._index_chosen:
            raise QueryError("with_index() may be called once per query")
        if name == BY_ID:
            raise QueryError("the by_id index is read with ctx.db.get(id)")
        indexes = all_indexes(self._definition)
        if name not in indexes:
            raise QueryError(
                f"table {self._table!r} has no index {name!r}; it has {sorted(indexes)}"
            )
        self._index_chosen = True
        self._index = indexes[name]
        if build is not None:
            q = IndexRange(self._index, lambda f, v: self._reader.coerce(self._table, f, v))
            result = build(q)
            if not isinstance(result, IndexRange):
                raise QueryError("with_index(): the range function must return its q")
            self._range = result
        return self

    def with_search_index(
        self, name: str, build: Callable[[SearchFilter], SearchFilter]
    ) -> SearchQuery:
        """A full-text search: `lambda q: q.search(field, text).eq(filter_field, value)`."""
        if self._index_chosen or self._range is not None or self._desc or self._filters:
            raise QueryError("with_search_index() must come first, right after query()")
        return SearchQuery(self._reader, self._table, self._definition, name, build)

    def order(self, direction: str) -> Query:
        if direction not in ("asc", "desc"):
            raise QueryError(f"order() takes 'asc' or 'desc', got {direction!r}")
        self._desc = direction == "desc"
        return self

    def _bounds(self) -> tuple[bytes, bytes | None]:
        return (b"", None) if self._range is None else self._range.interval()

    async def _rows(self, lo: bytes, hi: bytes | None, batch: int,
                    budget: PageBudget | None = None) -> AsyncIterator[tuple[bytes, Document]]:
        """Every row of [lo, hi) in order, filters not applied, fetched in growing batches.

        The read set grows only as rows are handed out; a page's `budget` may end the scan
        early (before the row that would pass a hard limit), leaving it unread.
        """
        record = ScanRecord(self._table, self._index.name, lo, hi, self._desc)
        self._reader.record_scan(record)
        batch = max(1, min(batch, _MAX_BATCH))
        while True:
            left = None if budget is None else budget.rows_left()
            size = batch if left is None else max(1, min(batch, left))
            if budget is not None and budget.exhausted():
                return
            rows = await self._reader.scan(self._table, self._index.name, lo, hi, self._desc,
                                           size)
            for key, doc, nbytes in rows:
                if budget is not None:
                    if budget.exhausted():
                        return
                    budget.read(nbytes)
                record.last_key = key
                yield key, doc
            if len(rows) < size:
                record.exhausted = True
                return
            last = rows[-1][0]
            if self._desc:
                hi = last
            else:
                lo = successor(last)
            batch = min(batch * 4, _MAX_BATCH)

    async def _iterate(
        self, lo: bytes, hi: bytes | None, limit: int | None = None
    ) -> AsyncIterator[tuple[bytes, Document]]:
        batch = limit if limit is not None and not self._filters else _FIRST_BATCH
        async for key, doc in self._rows(lo, hi, batch):
            if await self._matches(doc):
                yield key, doc

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._documents()

    async def _documents(self) -> AsyncIterator[Document]:
        lo, hi = self._bounds()
        async for _, doc in self._iterate(lo, hi):
            yield doc

    async def take(self, n: int) -> list[Document]:
        n = count_argument(n, "take")
        if n == 0:
            return []
        lo, hi = self._bounds()
        out: list[Document] = []
        async for _, doc in self._iterate(lo, hi, n):
            out.append(doc)
            if len(out) >= n:
                break
        return out

    def fingerprint(self) -> bytes:
        """What makes this query's order of results: a cursor is valid only for it."""
        lo, hi = self._bounds()
        return fingerprint("index", self._table, self._index.name, lo,
                           b"-" if hi is None else b"+" + hi, "desc" if self._desc else "asc")

    async def paginate(self, options: Any, *, stable: bool = True) -> dict[str, Any]:
        """A page after `cursor`: `numItems` documents, or, with an end cursor (the
        `endCursor` option, else the one this subscription's journal recorded), every
        document up to it whatever their number. `stable=False` neither reads nor records
        the journal: every run of a subscription reads `numItems` again (for a view that
        shows one page at a time, where the first page should always be the first n)."""
        pages = self._reader.pages
        query = self.fingerprint()
        opts, start, end = pages.open(options, self._reader.usage.limits, query, stable)
        budget = PageBudget(opts, self._reader.usage.limits, bounded=end is not None)
        page, positions, exhausted = await self._read_page(start, end, opts.num_items, budget)
        if end is not None:
            next_cursor = end
        elif exhausted or not positions:
            next_cursor = Cursor(query, None)
        else:
            next_cursor = Cursor(query, positions[-1])
        continue_cursor = next_cursor.encode()
        if stable:
            pages.record(continue_cursor)
        split = split_position(positions)
        return {"page": page, "isDone": next_cursor.at_end, "continueCursor": continue_cursor,
                "splitCursor": None if split is None else Cursor(query, split).encode(),
                "pageStatus": budget.status(len(page))}

    def _page_range(self, start: Cursor | None, end: Cursor | None
                    ) -> tuple[bytes, bytes | None]:
        """The query's range narrowed to (start, end]; after a key means below it in desc."""
        lo, hi = self._bounds()
        if start is not None and start.key is not None:
            if self._desc:
                hi = start.key if hi is None else min(hi, start.key)
            else:
                lo = max(lo, successor(start.key))
        if end is not None and end.key is not None:
            if self._desc:
                lo = max(lo, end.key)
            else:
                hi = successor(end.key) if hi is None else min(hi, successor(end.key))
        return lo, hi

    async def _read_page(self, start: Cursor | None, end: Cursor | None, n: int,
                         budget: PageBudget) -> tuple[list[Document], list[bytes], bool]:
        """The page's documents, the key of every row read (filtered out or not), and
        whether the range was read to its end."""
        page: list[Document] = []
        positions: list[bytes] = []
        if start is not None and start.at_end:
            return page, positions, True
        lo, hi = self._page_range(start, end)
        if hi is not None and hi <= lo:
            return page, positions, True
        batch = n if end is None and not self._filters else _FIRST_BATCH
        async for key, doc in self._rows(lo, hi, batch, budget):
            positions.append(key)
            if await self._matches(doc):
                page.append(doc)
                if end is None and len(page) >= n:
                    return page, positions, False
        return page, positions, not budget.hit_limit
