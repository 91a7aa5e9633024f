"""`ctx.db.query(table)`: index ranges, ordering, filters, and the ways to consume them.

Reading is recorded as it happens: every scan registers a `ScanRecord` whose consumed
interval grows only as rows are handed to the function, so `take(n)` and `first()` leave a
read set that ends at the last key returned.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reactive_store.engine.intervals import Interval
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
                   limit: int) -> list[tuple[bytes, Document]]: ...


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


def encode_cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_cursor(cursor: Any) -> bytes:
    if not isinstance(cursor, str):
        raise QueryError(f"paginate: cursor must be a string or None, got {cursor!r}")
    try:
        return base64.b64decode(cursor.encode(), altchars=b"-_", validate=True)
    except ValueError:
        raise QueryError(f"paginate: malformed cursor {cursor!r}") from None


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

    async def _iterate(
        self, lo: bytes, hi: bytes | None, limit: int | None = None
    ) -> AsyncIterator[tuple[bytes, Document]]:
        record = ScanRecord(self._table, self._index.name, lo, hi, self._desc)
        self._reader.record_scan(record)
        batch = limit if limit is not None and not self._filters else _FIRST_BATCH
        batch = max(1, min(batch, _MAX_BATCH))
        while True:
            rows = await self._reader.scan(self._table, self._index.name, lo, hi, self._desc,
                                           batch)
            for key, doc in rows:
                record.last_key = key
                if await self._matches(doc):
                    yield key, doc
            if len(rows) < batch:
                record.exhausted = True
                return
            last = rows[-1][0]
            if self._desc:
                hi = last
            else:
                lo = successor(last)
            batch = min(batch * 4, _MAX_BATCH)

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

    async def paginate(self, options: Any) -> dict[str, Any]:
        if not isinstance(options, dict) or "numItems" not in options:
            raise QueryError("paginate() takes {'numItems': n, 'cursor': str | None}")
        n = count_argument(options["numItems"], "paginate numItems")
        lo, hi = self._bounds()
        cursor = options.get("cursor")
        if cursor is not None:
            key = decode_cursor(cursor)
            if self._desc:
                hi = key if hi is None else min(hi, key)
            else:
                lo = max(lo, successor(key))
        end_cursor = options.get("endCursor")
        if end_cursor is not None:
            key = decode_cursor(end_cursor)
            if self._desc:
                lo = max(lo, key)
            else:
                hi = successor(key) if hi is None else min(hi, successor(key))
        page: list[Document] = []
        last_key: bytes | None = None
        done = True
        if n > 0 and (hi is None or lo < hi):
            async for key, doc in self._iterate(lo, hi, n):
                page.append(doc)
                last_key = key
                if len(page) >= n:
                    done = False
                    break
        elif n == 0:
            done = False
        if last_key is None:
            continue_cursor = cursor if isinstance(cursor, str) else encode_cursor(lo)
        else:
            continue_cursor = encode_cursor(last_key)
        return {"page": page, "isDone": done, "continueCursor": continue_cursor}
