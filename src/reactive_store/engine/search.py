"""`with_search_index`: full-text search queries, ranked by BM25, consumed like any query.

A search ranks at most 1,024 documents (Convex's limit) in one SQL statement, then hands
them out best first; `take`, `first`, `unique`, `collect`, `paginate` and `async for`
work as on index queries, `filter` narrows what is handed out. Its read set is recorded
in the index's synthetic keyspace (see `search_index`): one point per exact term and one
range for the last term's prefix, under its filter values, plus the `by_id` point of each
document it examined, so a write to a returned document's other fields re-runs it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson

from reactive_store.engine.intervals import Interval
from reactive_store.engine.pagination import (
    SOFT_MAX_PAGE_LEN,
    Cursor,
    PageJournal,
    fingerprint,
    split_position,
)
from reactive_store.engine.search_index import (
    read_mask,
    search_keyspace,
    side_table,
    term_key,
    term_prefix_interval,
)
from reactive_store.engine.stream import DocumentStream, count_argument
from reactive_store.errors import QueryError
from reactive_store.keys import encode_tuple
from reactive_store.limits import Usage
from reactive_store.schema import SearchIndex, TableDefinition
from reactive_store.storage import Transaction
from reactive_store.storage.search import MAX_RESULTS, Ranked, rank
from reactive_store.storage.tokenizer import QueryTerms
from reactive_store.types import Document, Value

_FIRST_BATCH = 16


class SearchReader(Protocol):
    """What a search needs from its transaction (`engine.reads.TransactionReads` has it)."""

    tx: Transaction
    usage: Usage
    pages: PageJournal

    def coerce(self, table: str, field: str, value: Value) -> Value: ...

    def record_interval(self, table: str, index: str, interval: Interval) -> None: ...

    async def documents(self, table: str, doc_ids: list[str]) -> dict[str, Document]: ...

    def record_get(self, table: str, doc_id: str) -> None: ...


class SearchFilter:
    """The `q` of `with_search_index(name, lambda q: q.search(field, text).eq(...))`."""

    def __init__(self, index: SearchIndex, coerce: Callable[[str, Value], Value]) -> None:
        self._index = index
        self._coerce = coerce
        self.text: str | None = None
        self.values: dict[int, bytes] = {}

    def search(self, field: str, text: str) -> SearchFilter:
        name = self._index.name
        if self.text is not None:
            raise QueryError(f"search index {name!r}: search() may be called once")
        if field != self._index.search_field:
            raise QueryError(f"search index {name!r} searches the field "
                             f"{self._index.search_field!r}, not {field!r}")
        if not isinstance(text, str):
            raise QueryError(f"search index {name!r}: search() takes a string, got {text!r}")
        self.text = text
        return self

    def eq(self, field: str, value: Value) -> SearchFilter:
        fields = self._index.filter_fields
        if field not in fields:
            raise QueryError(f"search index {self._index.name!r}: {field!r} is not one of its "
                             f"filter fields {list(fields)}")
        position = fields.index(field)
        if position in self.values:
            raise QueryError(f"search index {self._index.name!r}: two eq() on {field!r}")
        try:
            self.values[position] = encode_tuple([self._coerce(field, value)])
        except (TypeError, ValueError) as exc:
            raise QueryError(f"search index {self._index.name!r}: eq({field!r}): {exc}") from None
        return self


def _hit_key(hit: Ranked) -> bytes:
    """A hit's position in result order, as a cursor carries it."""
    return orjson.dumps([hit.score, hit.doc_id])


def _position(cursor: Cursor) -> tuple[float, str]:
    """The (score, id) a cursor of this search points after."""
    try:
        score, doc_id = orjson.loads(cursor.key or b"")
        if isinstance(score, int | float) and isinstance(doc_id, str):
            return float(score), doc_id
    except (ValueError, TypeError):
        pass
    raise QueryError("paginate: malformed cursor: not a position in search results")


def _after(hit: Ranked, position: tuple[float, str]) -> bool:
    """True when `hit` comes after `position` in result order (score desc, then id)."""
    return (-hit.score, hit.doc_id) > (-position[0], position[1])


class SearchQuery(DocumentStream):
    """A lazy search over one table's search index; nothing is read until it is consumed."""

    def __init__(self, reader: SearchReader, table: str, definition: TableDefinition,
                 name: str, build: Callable[[SearchFilter], SearchFilter]) -> None:
        if name not in definition.search_indexes:
            raise QueryError(f"table {table!r} has no search index {name!r}; it has "
                             f"{sorted(definition.search_indexes)}")
        super().__init__(table)
        self._reader = reader
        self._index = definition.search_indexes[name]
        q = build(SearchFilter(self._index, lambda f, v: reader.coerce(table, f, v)))
        if not isinstance(q, SearchFilter) or q.text is None:
            raise QueryError(f"with_search_index({name!r}): the function must call "
                             "q.search(field, text) and return its q")
        self._text = q.text
        self._terms = QueryTerms.of(q.text)
        self._values = q.values

    def order(self, direction: str) -> SearchQuery:
        raise QueryError("search results come in relevance order: order() cannot be used "
                         "with with_search_index()")

    def _record_reads(self) -> None:
        fields = len(self._index.filter_fields)
        mask = read_mask(fields, set(self._values))
        keyspace = search_keyspace(self._index.name, mask)
        prefix = b"".join(self._values[i] for i in mask)
        for term in self._terms.exact:
            point = Interval.point(term_key(prefix, term))
            self._reader.record_interval(self._table, keyspace, point)
        if self._terms.prefix is not None:
            self._reader.record_interval(self._table, keyspace,
                                         term_prefix_interval(prefix, self._terms.prefix))

    async def _ranked(self, limit: int) -> list[Ranked]:
        self._record_reads()
        self._reader.usage.range_read()
        side = side_table(self._reader.tx, self._table, self._index.name)
        return await rank(self._reader.tx, side, self._terms, self._values,
                          min(limit, MAX_RESULTS))

    async def _iterate(self, hits: list[Ranked]) -> AsyncIterator[tuple[Ranked, Document]]:
        """The documents of `hits` that pass the filters, in order, fetched in batches."""
        start, batch = 0, _FIRST_BATCH
        while start < len(hits):
            chunk = hits[start:start + batch]
            docs = await self._reader.documents(self._table, [h.doc_id for h in chunk])
            for hit in chunk:
                # Only what is examined is read: a page of 3 out of a fetched chunk of 16
                # does not re-run when the 4th document changes.
                self._reader.record_get(self._table, hit.doc_id)
                doc = docs.get(hit.doc_id)
                if doc is not None and await self._matches(doc):
                    yield hit, doc
            start, batch = start + len(chunk), min(batch * 4, MAX_RESULTS)

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._documents()

    async def _documents(self) -> AsyncIterator[Document]:
        async for _, doc in self._iterate(await self._ranked(MAX_RESULTS)):
            yield doc

    async def take(self, n: int) -> list[Document]:
        n = count_argument(n, "take")
        if n == 0:
            return []
        hits = await self._ranked(MAX_RESULTS if self._filters else n)
        out: list[Document] = []
        async for _, doc in self._iterate(hits):
            out.append(doc)
            if len(out) >= n:
                break
        return out

    def fingerprint(self) -> bytes:
        """What makes this search's order of results: a cursor is valid only for it."""
        values = b"".join(b"%d=" % i + v for i, v in sorted(self._values.items()))
        return fingerprint("search", self._table, self._index.name, self._text, values)

    async def paginate(self, options: Any, *, stable: bool = True) -> dict[str, Any]:
        """A page of results after `cursor`: `numItems` of them, or every one up to the end
        cursor (`endCursor`, else, when `stable`, the one this subscription's journal
        recorded); as `Query.paginate`."""
        pages = self._reader.pages
        query = self.fingerprint()
        opts, start, end = pages.open(options, self._reader.usage.limits, query, stable)
        hits = [] if start is not None and start.at_end else await self._ranked(MAX_RESULTS)
        if start is not None and start.key is not None:
            after = _position(start)
            hits = [h for h in hits if _after(h, after)]
        if end is not None and end.key is not None:
            until = _position(end)
            hits = [h for h in hits if not _after(h, until)]
        page: list[Document] = []
        positions: list[bytes] = []
        next_cursor = end or Cursor(query, None)
        async for hit, doc in self._iterate(hits):
            page.append(doc)
            positions.append(_hit_key(hit))
            if end is None and len(page) >= opts.num_items:
                next_cursor = Cursor(query, positions[-1])
                break
        continue_cursor = next_cursor.encode()
        if stable:
            pages.record(continue_cursor)
        split = split_position(positions)
        return {"page": page, "isDone": next_cursor.at_end, "continueCursor": continue_cursor,
                "splitCursor": None if split is None else Cursor(query, split).encode(),
                "pageStatus": "SplitRecommended" if len(page) > SOFT_MAX_PAGE_LEN else None}
